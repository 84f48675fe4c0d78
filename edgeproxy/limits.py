"""CloudFront's request size limits (reference 1 and 5)."""

from __future__ import annotations

MAX_URL_LENGTH = 8192  # bytes of the URL; more → 413
MAX_REQUEST_HEAD = 20480  # bytes of request line + headers; more → 413
