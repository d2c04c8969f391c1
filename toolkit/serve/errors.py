"""Each protocol's own error body, chosen by the path refused: KServe's Open Inference Protocol
(/v2...) answers `{"error": "..."}`, text-embeddings-inference (/predict, /info)
`{"error": "...", "error_type": "..."}` with its own statuses, spamkit's routes
`{"detail": "..."}`. The HTTP layer refuses before any route, always as spamkit's."""

from __future__ import annotations

KSERVE, TEI, SPAMKIT = "kserve", "tei", "spamkit"
TEI_PATHS = ("/predict", "/info")
# The Open Inference Protocol answers a request it cannot run "typically 400".
KSERVE_STATUS = {422: 400}
# text-embeddings-inference's statuses: 429 for a full queue, 424 for a failing model.
TEI_STATUS = {503: 429, 500: 424}
TEI_TYPES = {429: "Overloaded", 424: "Backend", 504: "Backend"}  # any other: Validation
# What a body that is not a JSON object should have been, by protocol.
EXPECTED = {KSERVE: '{"inputs": [{"name": "input-0", "datatype": "BYTES", ...}]}',
            TEI: '{"inputs": "text"} or {"inputs": [["text"], ...]}',
            SPAMKIT: '{"texts": [...]}'}


def protocol_of(path: str) -> str:
    """KSERVE, TEI or SPAMKIT: whose conventions a request to `path` is answered by."""
    if path == "/v2" or path.startswith("/v2/"):
        return KSERVE
    return TEI if path in TEI_PATHS else SPAMKIT


def error_body(path: str, status: int, message: str) -> tuple[int, dict]:
    """The status and JSON body refusing a request to `path` with `status` and `message`.

    Args:
        path: the request's path, which picks the protocol.
        status: spamkit's status for the refusal (e.g. 503 for a full queue).
        message: one line saying why.

    Returns:
        The status the protocol uses for it, and the body in the protocol's shape."""
    protocol = protocol_of(path)
    if protocol == KSERVE:
        return KSERVE_STATUS.get(status, status), {"error": message}
    if protocol == TEI:
        status = TEI_STATUS.get(status, status)
        return status, {"error": message, "error_type": TEI_TYPES.get(status, "Validation")}
    return status, {"detail": message}
