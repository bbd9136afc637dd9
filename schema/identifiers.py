"""The one way a unique hardware identifier (a GPU UUID, a serial number) is hashed before it is recorded.

The collector hashes, the analyzer compares: both sides must agree on the digest, so it lives here.
"""

from __future__ import annotations

import hashlib
import re

# A whole GPU or MIG device UUID, as nvidia-smi -L and NVML print it.
GPU_UUID = re.compile(r"\b(?i:GPU|MIG)-[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b")


def identifier_hash(value: str) -> str:
    """First 16 hex digits of sha256: stable across sources, never the identifier itself."""
    return hashlib.sha256(value.strip().encode("utf-8", "replace")).hexdigest()[:16]


def hash_gpu_uuids(text: str) -> str:
    """`text` with every whole GPU or MIG UUID replaced by its hash, its kind kept in front:
    `GPU-8932f937-...` becomes `GPU-<hashed:...>`, the digest the GPU's own uuid_hash has."""
    if "-" not in text:
        return text
    return GPU_UUID.sub(lambda m: f"{m.group(0)[:4]}<hashed:{identifier_hash(m.group(0))}>", text)
