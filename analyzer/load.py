"""Read whatever the user handed to `analyze` and decide what it is, treating it as hostile.

The input is recognised by its bytes, never by its file name: a zstd frame is a bundle, a ZIP archive
must hold exactly one bundle (read in memory, never extracted), anything else must be UTF-8 (or
BOM-marked UTF-16) text. Every read is capped, so memory stays bounded whatever the input is.
"""

from __future__ import annotations

import hashlib
import io
import sys
from typing import Any, BinaryIO, NamedTuple

from vllm_bug.errors import UnreadableInput, UnsafeInput
from vllm_bug.formats.magic import ZIP_MAGICS, ZSTD_MAGIC, sniff
from vllm_bug.schema.bundle import read_file_capped, read_stream_capped

MAX_INPUT_BYTES = 32 << 20  # the largest file or stdin accepted at all
MAX_ZIP_MEMBERS = 64
MAX_ZIP_TOTAL_UNCOMPRESSED = 256 << 20  # declared sizes; a bomb usually announces itself here
MAX_ZIP_MEMBER_BYTES = 32 << 20  # a bundle member, read with this cap whatever the header says
MAX_ZIP_RATIO = 200  # declared uncompressed / compressed, for any member we might read

_BUNDLE_FORMAT_MARK = '"vllm-bug-bundle"'


class LoadedInput(NamedTuple):
    kind: str  # "bundle" | "text"
    sha256: str  # of the raw input bytes as given
    doc: dict[str, Any] | None
    text: str | None
    name: str
    warnings: tuple[str, ...] = ()  # what the user should know about how the input was read


def load_input(path: str, stdin: BinaryIO | None = None) -> LoadedInput:
    """Read PATH ('-' for standard input) and return a validated bundle or decoded text.

    Raises UnreadableInput (exit 3) or UnsafeInput (exit 4) with a one-line message.
    """
    if path == "-":
        stream = stdin if stdin is not None else sys.stdin.buffer
        name = "<stdin>"
        data = _read_capped(stream, name)
    else:
        name = path
        data = _read_file(path)
    return classify_bytes(data, name)


def load_data(data: bytes, name: str) -> LoadedInput:
    """An input handed over in memory (the Python API, one report of a JSON Lines file), read like a file:
    the same size cap, recognised by its bytes. NAME stands for it in messages."""
    return classify_bytes(_read_capped(io.BytesIO(data), name), name)


def classify_bytes(data: bytes, name: str) -> LoadedInput:
    digest = hashlib.sha256(data).hexdigest()
    if not data.strip():
        raise UnreadableInput(f"{name}: input is empty")
    if data.startswith(ZSTD_MAGIC):
        return LoadedInput("bundle", digest, _decode_bundle(data), None, name)
    if data.startswith(ZIP_MAGICS):
        return LoadedInput("bundle", digest, _bundle_from_zip(data, name), None, name)
    _refuse_claimed_type(data, name)
    text = decode_text(data, name)
    doc = _json_bundle(text, name)
    if doc is not None:
        return LoadedInput("bundle", digest, doc, None, name)
    embedded, problem = _embedded_bundle(text)
    if embedded is not None:
        return LoadedInput("bundle", digest, embedded, text, name)
    warnings = (f"{name}: {problem}; analysing the report as text",) if problem else ()
    return LoadedInput("text", digest, None, text, name, warnings)


# -- reading ---------------------------------------------------------------------------------
def _read_file(path: str) -> bytes:
    return read_file_capped(path, MAX_INPUT_BYTES, what="a bundle or a text file")


def _read_capped(stream: BinaryIO, name: str) -> bytes:
    return read_stream_capped(stream, name, MAX_INPUT_BYTES)


# -- bundles ---------------------------------------------------------------------------------
def _decode_bundle(data: bytes) -> dict[str, Any]:
    from vllm_bug.schema.bundle import decode

    return decode(data)


def _bundle_from_zip(data: bytes, name: str) -> dict[str, Any]:
    import zipfile

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        members = archive.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError, EOFError, OSError) as exc:
        raise UnreadableInput(f"{name}: not a readable ZIP archive ({exc})") from None
    if len(members) > MAX_ZIP_MEMBERS:
        raise UnsafeInput(f"{name}: ZIP has {len(members)} members, over the limit of {MAX_ZIP_MEMBERS}: refused")
    declared = sum(max(m.file_size, 0) for m in members)
    if declared > MAX_ZIP_TOTAL_UNCOMPRESSED:
        raise UnsafeInput(f"{name}: ZIP would expand to {declared} bytes: refused as a possible zip bomb")
    for member in members:
        _check_zip_member(member, name)
    candidates = [m for m in members if not m.is_dir() and _looks_like_bundle_name(m.filename)]
    if not candidates:
        raise UnreadableInput(f"{name}: ZIP holds no vllm-bug bundle (*.zst)")
    if len(candidates) > 1:
        listed = ", ".join(m.filename for m in candidates[:5])
        raise UnreadableInput(
            f"{name}: ZIP holds {len(candidates)} bundles ({listed}); unzip it and analyze one at a time"
        )
    member = candidates[0]
    raw = _read_zip_member(archive, member, name)
    if raw.startswith(ZSTD_MAGIC):
        return _decode_bundle(raw)
    text = decode_text(raw, f"{name}:{member.filename}")
    doc = _json_bundle(text, f"{name}:{member.filename}")
    if doc is None:
        raise UnreadableInput(f"{name}: member {member.filename} is not a vllm-bug bundle")
    return doc


def _looks_like_bundle_name(filename: str) -> bool:
    lower = filename.lower()
    return lower.endswith(".zst") or lower.endswith(".zstd") or lower.endswith(".json")


def _check_zip_member(member, name: str) -> None:
    filename = member.filename
    if member.flag_bits & 0x1:
        raise UnsafeInput(f"{name}: ZIP member {filename!r} is encrypted: refused")
    parts = filename.replace("\\", "/").split("/")
    if filename.startswith(("/", "\\")) or ".." in parts or (len(filename) > 1 and filename[1] == ":"):
        raise UnsafeInput(f"{name}: ZIP member {filename!r} has an unsafe path: refused")
    if "\x00" in filename:
        raise UnsafeInput(f"{name}: ZIP member name contains a NUL byte: refused")
    if member.file_size > MAX_ZIP_MEMBER_BYTES and _looks_like_bundle_name(filename):
        raise UnsafeInput(f"{name}: ZIP member {filename!r} is {member.file_size} bytes, over the limit: refused")
    if (
        member.compress_size
        and member.file_size / member.compress_size > MAX_ZIP_RATIO
        and member.file_size > (1 << 20)
    ):
        raise UnsafeInput(
            f"{name}: ZIP member {filename!r} expands {member.file_size // member.compress_size}x: "
            "refused as a possible zip bomb"
        )


def _read_zip_member(archive, member, name: str) -> bytes:
    import zipfile

    try:
        with archive.open(member) as fh:
            raw = fh.read(MAX_ZIP_MEMBER_BYTES + 1)
    except (zipfile.BadZipFile, NotImplementedError, RuntimeError, ValueError, EOFError, OSError) as exc:
        raise UnreadableInput(f"{name}: cannot read ZIP member {member.filename!r} ({exc})") from None
    except Exception as exc:  # zlib/bz2/lzma errors surface as their own types
        raise UnreadableInput(f"{name}: corrupt ZIP member {member.filename!r} ({type(exc).__name__})") from None
    if len(raw) > MAX_ZIP_MEMBER_BYTES:
        raise UnsafeInput(f"{name}: ZIP member {member.filename!r} expands past {MAX_ZIP_MEMBER_BYTES} bytes: refused")
    return raw


def _json_bundle(text: str, name: str) -> dict[str, Any] | None:
    """An uncompressed bundle document (e.g. saved from `vllm-bug show`), else None."""
    if not text.lstrip().startswith("{") or _BUNDLE_FORMAT_MARK not in text[:65536]:
        return None
    from vllm_bug.schema.bundle import parse_json, validate

    doc = parse_json(text.encode("utf-8"))
    validate(doc)
    return doc


def _embedded_bundle(text: str) -> tuple[dict[str, Any] | None, str | None]:
    """The bundle carried inside a pasted Markdown report: (document, None), (None, why it is unusable)
    when the report carries a damaged one, or (None, None) when it carries none."""
    from vllm_bug.analyzer.embed import extract_embedded_bundle

    try:
        raw = extract_embedded_bundle(text)
    except UnsafeInput:
        raise
    except UnreadableInput as exc:
        return None, str(exc)
    except Exception as exc:  # a damaged embed: the report's text is still worth analysing
        return None, f"the embedded bundle could not be read ({type(exc).__name__})"
    if not raw:
        return None, None
    try:
        return _decode_bundle(raw), None
    except UnsafeInput:
        raise
    except UnreadableInput as exc:
        return None, f"the embedded bundle is not usable ({exc})"


# -- text ------------------------------------------------------------------------------------
def _refuse_claimed_type(data: bytes, name: str) -> None:
    lower = name.lower()
    if lower.endswith((".zst", ".zstd")):
        raise UnreadableInput(f"{name}: not a zstd-compressed bundle (bad magic bytes)")
    if lower.endswith(".zip"):
        raise UnreadableInput(f"{name}: not a ZIP archive (bad magic bytes)")
    file_type = sniff(data)
    if file_type is not None:
        what = f"{file_type.what} (decompress it first)" if file_type.compressed else file_type.what
        raise UnreadableInput(f"{name}: input is {what}, not a bundle or text")


def decode_text(data: bytes, name: str) -> str:
    """Strict UTF-8 (BOM allowed), or UTF-16 when a BOM says so; refuse binary data."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        try:
            text = data.decode("utf-16")
        except UnicodeDecodeError as exc:
            raise UnreadableInput(f"{name}: invalid UTF-16 text at byte {exc.start}") from None
    else:
        body = data[3:] if data.startswith(b"\xef\xbb\xbf") else data
        nul = body.find(b"\x00", 0, 1 << 16)
        if nul != -1:
            raise UnreadableInput(f"{name}: binary data (NUL byte at offset {nul}), not a bundle or text")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError as exc:
            offset = exc.start + (len(data) - len(body))
            raise UnreadableInput(
                f"{name}: not valid UTF-8 text (bad byte at offset {offset}); re-save it as UTF-8"
            ) from None
    if _mostly_control_characters(text):
        raise UnreadableInput(f"{name}: binary data, not a bundle or text")
    return text


def _mostly_control_characters(text: str) -> bool:
    sample = text[:8192]
    bad = sum(1 for ch in sample if ord(ch) < 32 and ch not in "\t\n\r\x1b\x0c\x08")
    return bad > max(8, len(sample) // 20)
