"""Model-independent ONNX helpers: PyTorch → ONNX with a parity check, and the metadata an
exported file carries about itself. Below ``model/`` and ``export/``, which both use them."""
