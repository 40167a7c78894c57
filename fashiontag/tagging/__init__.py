"""Catalog-scale tagging: sources → ``tag_stream`` → exactly-once sink, locally or on Ray Data.

Modules: :mod:`~fashiontag.tagging.sources` (directory, list, CSV, files),
:mod:`~fashiontag.tagging.sink` (resumable JSONL / Parquet), :mod:`~fashiontag.tagging.runner`
(local engine), :mod:`~fashiontag.tagging.ray_runner` (Ray Data engine),
:mod:`~fashiontag.tagging.stats` and :mod:`~fashiontag.tagging.progress`. Import-light: nothing
here imports the gRPC client or Ray until a run starts.
"""
