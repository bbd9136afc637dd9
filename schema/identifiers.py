"""The one way a unique hardware identifier (a GPU UUID, a serial number) is hashed before it is recorded.

The collector hashes, the analyzer compares: both sides must agree on the digest, so it lives here.
"""

from __future__ import annotations

import hashlib
import re

from vllm_bug.formats.lazyre import lazy_compile

# A whole GPU or MIG device UUID, as nvidia-smi -L and NVML print it (the prefix in any case). The prefix's
# letters come as character classes first, so the regex engine skips fast to where one can start; a
# lookbehind after them asks for a word start, and _KINDS rules out mixes such as GIG-.
_HEX = "[0-9a-fA-F]"
GPU_UUID = lazy_compile(rf"[GgMm][PpIi][UuGg](?<!\w...)-{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}\b")
_KINDS = ("GPU", "MIG")


def identifier_hash(value: str) -> str:
    """First 16 hex digits of sha256: stable across sources, never the identifier itself."""
    return hashlib.sha256(value.strip().encode("utf-8", "replace")).hexdigest()[:16]


def hash_gpu_uuids(text: str) -> str:
    """`text` with every whole GPU or MIG UUID replaced by its hash, its kind kept in front:
    `GPU-8932f937-...` becomes `GPU-<hashed:...>`, the digest the GPU's own uuid_hash has."""
    return GPU_UUID.sub(_hashed_uuid, text) if "-" in text else text


def _hashed_uuid(m: re.Match[str]) -> str:
    uuid = m.group(0)
    return f"{uuid[:4]}<hashed:{identifier_hash(uuid)}>" if uuid[:3].upper() in _KINDS else uuid
