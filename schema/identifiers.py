"""The one way a unique hardware identifier (a GPU UUID, a serial number) is hashed before it is recorded.

The collector hashes, the analyzer compares: both sides must agree on the digest, so it lives here.
"""

from __future__ import annotations

import hashlib


def identifier_hash(value: str) -> str:
    """First 16 hex digits of sha256: stable across sources, never the identifier itself."""
    return hashlib.sha256(value.strip().encode("utf-8", "replace")).hexdigest()[:16]
