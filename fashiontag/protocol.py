"""Names on the wire between client, Triton models and the exported graph: defined once, here.

Import-light on purpose: the client, the Triton python models, the repository generator and the
exporter all import it.
"""

ENSEMBLE_MODEL = "fashiontag"  # encoded image bytes in → probabilities (+ ATTRIBUTES_JSON) out
PREPROCESS_MODEL = "fashiontag_preprocess"
ATTRIBUTES_MODEL = "fashiontag_attributes"  # uint8 pixels in → probabilities out
POSTPROCESS_MODEL = "fashiontag_postprocess"  # probabilities in → attribute sets as JSON out

IMAGE = "IMAGE"  # BYTES [batch, 1]: encoded JPEG/PNG/...
PIXELS = "PIXELS"  # UINT8 [batch, size, size, 3]: letterboxed RGB tile
PROBABILITIES = "PROBABILITIES"  # FP32 [batch, total_values]: per-attribute softmax, concatenated
TAXONOMY_ID = "TAXONOMY_ID"  # INT32 [batch, 1]: Taxonomy.id of the model version that answered
ATTRIBUTES_JSON = "ATTRIBUTES_JSON"  # BYTES [batch, 1]: the decoded attribute set, UTF-8 JSON
FEATURES = "FEATURES"  # FP32 [batch, 1280]: pooled backbone features (training only)

TAXONOMY_PARAMETER = "taxonomy"  # model config parameter holding the taxonomy JSON
TAXONOMY_FINGERPRINT_PARAMETER = "taxonomy_fingerprint"
TAXONOMY_MODEL_PARAMETER = "taxonomy_model"  # ensemble → the model whose config has the taxonomy
TAXONOMY_HISTORY_PARAMETER = "taxonomies"  # JSON list: taxonomies of every version on disk
PREPROCESS_PARAMETER = "preprocess"
LIMITS_PARAMETER = "limits"  # preprocess model config parameter holding the DecodeLimits JSON

#: Header that unlocks the model-repository (load/unload) API when the operator enabled model
#: control; its value is the admin key given to the launcher. Triton prefixes the gRPC metadata
#: key with "triton-grpc-protocol-"; HTTP uses the bare name.
ADMIN_KEY_HEADER = "fashiontag-admin-key"
GRPC_ADMIN_KEY_HEADER = f"triton-grpc-protocol-{ADMIN_KEY_HEADER}"


def admin_headers(admin_key: str | None) -> dict[str, str]:
    """gRPC metadata that unlocks model control on a server started with ``admin_key``."""
    return {GRPC_ADMIN_KEY_HEADER: admin_key} if admin_key else {}

#: How Triton words a request its queue policy shed (queue full; queued past the timeout): load
#: shedding the client backs off from and retries, unlike a failure.
SHED_MESSAGES = ("exceeds maximum queue size", "request timeout expired")


def is_shed(message: str) -> bool:
    """Whether an error message says the queue policy shed the request (see SHED_MESSAGES)."""
    lowered = message.lower()
    return any(m in lowered for m in SHED_MESSAGES)
