"""The client's defaults, defined once: ``TagClient``/``AsyncTagClient`` (via ``ClientOptions``),
the catalog runner (``TagSettings``) and ``fashiontag tag`` all read them from here.

Import-free on purpose, so the command line can show them in ``--help`` cheaply.
"""

from __future__ import annotations

__all__ = ["DECODE_MODES", "DEFAULT_DECODE", "DEFAULT_TIMEOUT_S"]

#: Where JPEG/PNG decoding happens: "server" sends encoded bytes to the ensemble, "client"
#: decodes + letterboxes here and sends uint8 tiles straight to the attribute model.
DECODE_MODES = ("server", "client")

#: Decoding in the client cost less CPU per image than in the server in every catalog measured
#: (benchmarks/tagging_throughput.py, docs: catalog tagging): it saves the python-backend
#: preprocess hop and, for big photos, sends a 150 KB tile instead of a multi-MB JPEG. Both give
#: identical probabilities (tested); "server" suits a client much weaker than the server.
DEFAULT_DECODE = "client"

#: Seconds per request. Each model's queue sheds a request queued for 15 s
#: (``ServingSettings.queue_timeout_us``) and the ensemble has two queued stages (preprocess,
#: attributes): 60 s lies beyond the server's own worst case, so under overload the server's
#: retryable "request timeout expired" arrives before the client gives up on an answer.
DEFAULT_TIMEOUT_S = 60.0
