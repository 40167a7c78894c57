"""Few-shot attributes: a few dozen labelled images → a new served attribute in about a minute.

``data`` (labelled sets) → ``features`` (augmented views, cached) → ``heads`` (prototype /
logistic / linear, cross-validated) → ``report`` (refusals, confusion) → ``add`` (export +
version + hot reload via ``reload``); ``suggest`` ranks unlabelled images for a person to label
next. Heavy imports (torch, onnx) stay inside the modules that need them.
"""
