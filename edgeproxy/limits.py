"""CloudFront's request size limits (reference 1 and 5) and the bounds on viewer connections."""

from __future__ import annotations

MAX_URL_LENGTH = 8192  # bytes of the URL; more → 413
MAX_REQUEST_HEAD = 20480  # bytes of request line + headers; more → 413

# Viewer connections (defaults of ViewerServer; CloudFront's own values are not published).
HEADER_TIMEOUT_S = 10.0  # request line + headers must arrive within this; else closed
IDLE_TIMEOUT_S = 60.0  # keep-alive connection with no request; also between body reads
MAX_CONNECTIONS = 10_000  # concurrent viewer connections; more are closed at once
MAX_PIPELINED = 32  # parsed requests waiting for their turn before reading pauses
# A WebSocket whose origin sends nothing this long is closed: CloudFront's WebSocket idle
# quota, not adjustable (service quotas, "Origin response timeout (idle timeout)": 10 min).
TUNNEL_IDLE_TIMEOUT_S = 600.0
# After an answer to a viewer that may still be sending (a refusal, a body not read): the
# connection is half-closed and its input dropped this long at most before it closes (as
# nginx's lingering_time), so the viewer reads the answer instead of a reset.
LINGER_S = 30.0
