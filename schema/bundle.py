"""The one module that reads, writes and validates bundles, for both halves.

A bundle is one JSON document in one zstd frame (with a content checksum), wrapped in a versioned
envelope::

    {"format": "vllm-bug-bundle", "schema_version": 1,
     "tool": {"name": "vllm-bug", "version": "..."}, "created_utc": "...Z", "payload": {...}}

A cluster bundle is schema_version 2: the same envelope plus "nodes", one entry per node with that
node's own payload (schema/cluster.py). Single-node bundles stay version 1, which older readers take.

Encoding validates first, so an invalid bundle is never written (the files themselves are written by
vllm_bug.commands.output). Reading treats the bytes as hostile:
the compressed size, the decompressed size and the zstd window are capped while decompressing (the
frame header's declared size is never trusted), trailing data is refused, and the document is
validated against the shipped schema before anyone looks at it.
"""

from __future__ import annotations

import json
import os
import stat
from datetime import datetime, timezone
from functools import cache
from typing import Any

from vllm_bug._version import __version__
from vllm_bug.errors import UnreadableInput, UnsafeInput, VllmBugError
from vllm_bug.formats.lazyre import lazy_compile
from vllm_bug.formats.magic import ZSTD_MAGIC
from vllm_bug.formats.package_files import package_folder

FORMAT_NAME = "vllm-bug-bundle"
SCHEMA_VERSION = 1  # one node; what collect writes
CLUSTER_SCHEMA_VERSION = 2  # adds the nodes section: collect --ray and merge write it
SUPPORTED_SCHEMA_VERSIONS = (1, 2)

MAX_COMPRESSED_BYTES = 32 << 20
MAX_DECOMPRESSED_BYTES = 64 << 20
MAX_WINDOW_BYTES = 1 << 25
COMPRESSION_LEVEL = 19
MAX_NESTING = 32  # arrays and objects; real bundles are 6 deep
# What parsing may build, checked on the JSON text before it is parsed: a real bundle holds about a
# thousand values per node (a cluster bundle holds every node's payload), its longest string (the
# log) is under 2 MiB.
MAX_JSON_VALUES = 1_500_000
MAX_JSON_STRING_BYTES = 8 << 20
_FEED_CHUNK = 256  # compressed bytes fed per step: bounds how far one step can overshoot the cap


class BundleInvalid(UnreadableInput):
    """The document does not match the bundle schema."""


def is_zstd(data: bytes) -> bool:
    return data[:4] == ZSTD_MAGIC


def utc_now_iso() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def make_envelope(
    payload: dict[str, Any], created_utc: str | None = None, nodes: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A single-node bundle (schema_version 1), or with `nodes` (schema/cluster.py) a cluster bundle (2)."""
    doc = {
        "format": FORMAT_NAME,
        "schema_version": SCHEMA_VERSION if nodes is None else CLUSTER_SCHEMA_VERSION,
        "tool": {"name": "vllm-bug", "version": __version__},
        "created_utc": created_utc or utc_now_iso(),
        "payload": payload,
    }
    if nodes is not None:
        doc["nodes"] = nodes
    return doc


@cache
def load_schema(version: int = SCHEMA_VERSION) -> dict[str, Any]:
    text = package_folder("vllm_bug.schema").joinpath(f"bundle-v{version}.schema.json").read_text("utf-8")
    return json.loads(text)


@cache
def _validator(version: int):
    from jsonschema import Draft202012Validator
    from referencing import Registry, Resource

    schemas = [load_schema(v) for v in SUPPORTED_SCHEMA_VERSIONS]  # a newer schema refers to an older one's parts
    registry = Registry().with_resources([(s["$id"], Resource.from_contents(s)) for s in schemas])
    return Draft202012Validator(load_schema(version), registry=registry)


@cache
def _quick_check(version: int):
    from vllm_bug.schema.fastcheck import compile_check

    return compile_check(load_schema(version), [load_schema(v) for v in SUPPORTED_SCHEMA_VERSIONS])


def validation_errors(doc: Any, version: int = SCHEMA_VERSION) -> list[str]:
    """All schema violations, each as 'json.path: message' (empty when valid).

    A document the quick checker accepts is valid without importing jsonschema (slow to import);
    anything else, and every message, comes from jsonschema.
    """
    quick = _quick_check(version)
    if quick is not None and quick(doc):
        return []
    from jsonschema.exceptions import best_match

    errors = list(_validator(version).iter_errors(doc))
    if not errors:
        return []
    first = best_match(errors)
    rest = [e for e in errors if e is not first]
    return [_describe(first)] + [_describe(e) for e in rest]


def _describe(error) -> str:
    message = error.message
    if len(message) > 200:
        message = message[:200] + "..."
    return f"{error.json_path}: {message}"


def validate(doc: Any) -> None:
    """Raise BundleInvalid (exit 3) unless doc is a valid bundle of a version this tool reads."""
    if not isinstance(doc, dict):
        raise BundleInvalid("not a vllm-bug bundle: the document is not a JSON object")
    if doc.get("format") != FORMAT_NAME:
        raise BundleInvalid("not a vllm-bug bundle: missing or wrong 'format' field")
    version = doc.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise BundleInvalid("not a vllm-bug bundle: 'schema_version' is not an integer")
    if version > max(SUPPORTED_SCHEMA_VERSIONS):
        raise BundleInvalid(
            f"bundle uses schema_version {version}, newer than this vllm-bug reads "
            f"(up to {max(SUPPORTED_SCHEMA_VERSIONS)}): upgrade vllm-bug"
        )
    if version not in SUPPORTED_SCHEMA_VERSIONS:
        raise BundleInvalid(f"bundle schema_version {version} is not supported")
    errors = validation_errors(doc, version)
    if errors:
        more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
        raise BundleInvalid(f"bundle fails its schema: {errors[0]}{more}")


def encode(doc: dict[str, Any]) -> bytes:
    """Validate, serialise and compress a bundle document."""
    import zstandard

    validate(doc)
    raw = json.dumps(doc, ensure_ascii=False, separators=(",", ":"), sort_keys=False).encode("utf-8")
    if len(raw) > MAX_DECOMPRESSED_BYTES:
        raise VllmBugError(f"bundle would be {len(raw)} bytes, over the {MAX_DECOMPRESSED_BYTES}-byte limit")
    cctx = zstandard.ZstdCompressor(level=COMPRESSION_LEVEL, write_checksum=True, write_content_size=True)
    return cctx.compress(raw)


def decompress_capped(data: bytes, max_bytes: int = MAX_DECOMPRESSED_BYTES) -> bytes:
    """Decompress exactly one zstd frame, refusing bombs, big windows, truncation and trailing data."""
    import zstandard

    if len(data) > MAX_COMPRESSED_BYTES:
        raise UnsafeInput(f"compressed input is {len(data)} bytes, over the {MAX_COMPRESSED_BYTES}-byte limit")
    if not is_zstd(data):
        raise UnreadableInput("not a zstd-compressed bundle (bad magic bytes)")
    dobj = zstandard.ZstdDecompressor(max_window_size=MAX_WINDOW_BYTES).decompressobj()
    parts: list[bytes] = []
    total = 0
    offset = 0
    try:
        while offset < len(data) and not dobj.eof:
            chunk = dobj.decompress(data[offset : offset + _FEED_CHUNK])
            offset += _FEED_CHUNK
            total += len(chunk)
            if total > max_bytes:
                raise UnsafeInput(
                    f"bundle expands past the {max_bytes}-byte limit: refused as a possible decompression bomb"
                )
            parts.append(chunk)
    except zstandard.ZstdError as exc:
        text = str(exc)
        if "memory" in text.lower() or "window" in text.lower():
            raise UnsafeInput(f"zstd frame needs a window larger than {MAX_WINDOW_BYTES} bytes: refused") from None
        raise UnreadableInput(f"corrupt zstd data: {text}") from None
    if not dobj.eof:
        raise UnreadableInput("truncated bundle: the zstd frame does not end")
    trailing = len(dobj.unused_data) + max(0, len(data) - offset)
    if trailing:
        raise UnreadableInput(f"bundle has {trailing} bytes of trailing data after its zstd frame")
    return b"".join(parts)


def parse_json(raw: bytes) -> Any:
    check_json_size(raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableInput(f"bundle is not valid UTF-8 (byte {exc.start})") from None
    try:
        doc = json.loads(text)
    except RecursionError:
        raise UnsafeInput("bundle JSON is nested too deeply: refused") from None
    except ValueError as exc:
        raise UnreadableInput(f"bundle is not valid JSON: {exc}") from None
    if "\\ud" in text or "\\uD" in text:  # only a \uD800-\uDFFF escape can put a lone surrogate in a str
        doc = _without_lone_surrogates(doc)
    return doc


_JSON_STRING = lazy_compile(rb'"[^"]*"')
_SCAN_CHUNK = 256 << 10
_INNERMOST_PAIR = lazy_compile(rb"\[\]|\{\}")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENING_RUN = lazy_compile(rb"[\[{]{%d}" % (MAX_NESTING + 1))  # that many openings in a row nest that deep


def check_json_size(raw: bytes) -> None:
    """Refuse (UnsafeInput, exit 4) JSON text whose parsing would build more than a bundle ever holds:
    over MAX_JSON_VALUES values (which also bounds every array and object), a string over
    MAX_JSON_STRING_BYTES, or nesting deeper than MAX_NESTING. Linear in the text, read in chunks so
    that what it builds stays small; it never parses the text.

    Text that is not JSON at all is left for the parser to describe.
    """
    plain = raw.replace(b"\\\\", b"__").replace(b'\\"', b"__") if b"\\" in raw else raw  # no escaped quote is left
    values, longest, brackets = 1, 0, []
    inside, open_length = False, 0  # whether a string is open where a chunk starts, and its length so far
    for start in range(0, len(plain), _SCAN_CHUNK):
        chunk = plain[start : start + _SCAN_CHUNK]
        ends_inside = inside ^ (chunk.count(b'"') % 2 == 1)
        framed = (b'"' if inside else b"") + chunk + (b'"' if ends_inside else b"")  # whole strings only
        structure = _JSON_STRING.sub(b'""', framed)  # every string emptied: what is left is structure
        values += sum(structure.count(ch) for ch in (b",", b":", b"[", b"{"))
        if values > MAX_JSON_VALUES:
            raise UnsafeInput(f"bundle JSON holds more values than the limit of {MAX_JSON_VALUES:,}: refused")
        brackets.append(structure.translate(None, _NOT_BRACKETS))
        lengths = [len(part) for part in framed.split(b'"')[1::2]]
        if lengths:
            lengths[0] += open_length if inside else 0
            longest = max(longest, *lengths)
            open_length = lengths[-1] if ends_inside else 0
        inside = ends_inside
    if longest > MAX_JSON_STRING_BYTES:
        raise UnsafeInput(
            f"bundle JSON holds a string of {longest:,} bytes, over the limit of {MAX_JSON_STRING_BYTES:,}: refused"
        )
    nesting = b"".join(brackets)
    if _OPENING_RUN.search(nesting) or _nesting_exceeds(nesting, MAX_NESTING):
        raise UnsafeInput(f"bundle JSON is nested more than {MAX_NESTING} levels deep: refused")


def _nesting_exceeds(brackets: bytes, limit: int) -> bool:
    """Whether balanced brackets nest deeper than `limit`: each round removes the innermost pairs."""
    for _ in range(limit):
        if not brackets:
            return False
        shorter = _INNERMOST_PAIR.sub(b"", brackets)
        if len(shorter) == len(brackets):
            return False  # unbalanced: not JSON, which the parser will say
        brackets = shorter
    return bool(brackets) and len(_INNERMOST_PAIR.sub(b"", brackets)) < len(brackets)


_LONE_SURROGATE = lazy_compile("[\ud800-\udfff]")


def _without_lone_surrogates(value: Any) -> Any:
    """Lone UTF-16 surrogates (from a \\uD83D cut off its pair) become U+FFFD: no UTF-8 can carry them."""
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_without_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {_without_lone_surrogates(k): _without_lone_surrogates(v) for k, v in value.items()}
    return value


def decode(data: bytes) -> dict[str, Any]:
    """Bytes of a .zst bundle -> validated document."""
    doc = parse_json(decompress_capped(data))
    validate(doc)
    return doc


def read_file_capped(path: str | os.PathLike, limit: int, *, what: str = "a file", streams: bool = True) -> bytes:
    """The bytes of PATH, refused past LIMIT; one-line UnreadableInput/UnsafeInput naming the path otherwise.

    WHAT names the expected input in the message for a directory. With STREAMS, pipes and character
    devices are read too (their size is only known once read); without, only regular files are.
    """
    p = os.fspath(path)
    try:
        st = os.stat(p)
    except OSError as exc:
        raise _unreadable(p, exc, what) from None
    if stat.S_ISDIR(st.st_mode):
        raise UnreadableInput(f"{p} is a directory; give {what}")
    is_stream = stat.S_ISFIFO(st.st_mode) or stat.S_ISCHR(st.st_mode)
    if not (stat.S_ISREG(st.st_mode) or (streams and is_stream)):
        raise UnreadableInput(f"{p}: not a regular file")
    if stat.S_ISREG(st.st_mode) and st.st_size > limit:
        raise UnsafeInput(f"{p} is {st.st_size} bytes, over the {_size_words(limit)} limit: refused")
    try:
        with open(p, "rb") as fh:
            return read_stream_capped(fh, p, limit)
    except OSError as exc:
        raise _unreadable(p, exc, what) from None


def read_stream_capped(stream: Any, name: str, limit: int) -> bytes:
    """All of a binary stream, read in chunks and refused once it passes LIMIT bytes."""
    chunks: list[bytes] = []
    total = 0
    while total <= limit:
        chunk = stream.read(min(1 << 20, limit + 1 - total))
        if not chunk:
            break
        if isinstance(chunk, str):  # a text stream slipped through; its bytes are what we keep
            chunk = chunk.encode("utf-8", "surrogateescape")
        chunks.append(chunk)
        total += len(chunk)
    if total > limit:
        raise UnsafeInput(f"{name} is over the {_size_words(limit)} limit: refused")
    return b"".join(chunks)


def _unreadable(path: str, exc: OSError, what: str) -> UnreadableInput:
    if isinstance(exc, FileNotFoundError):
        return UnreadableInput(f"{path}: no such file")
    if isinstance(exc, PermissionError):
        return UnreadableInput(f"{path}: permission denied")
    if isinstance(exc, IsADirectoryError):
        return UnreadableInput(f"{path} is a directory; give {what}")
    return UnreadableInput(f"{path}: cannot read ({exc.strerror or exc})")


def _size_words(limit: int) -> str:
    return f"{limit >> 20} MiB" if limit and limit % (1 << 20) == 0 else f"{limit}-byte"


def read_bundle(path: str | os.PathLike) -> dict[str, Any]:
    return decode(read_file_capped(path, MAX_COMPRESSED_BYTES, what="a bundle"))
