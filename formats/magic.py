"""File types recognised by their first bytes (their magic numbers), never by a file name."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class FileType:
    kind: str  # 'zstd', 'zip', 'gzip', ..., 'png'
    compressed: bool  # one compressed stream (or a zip), to decompress first; not an archive, image or program
    what: str  # how to name it in a sentence: 'gzip-compressed data', 'a PNG image'


def _compressed(kind: str) -> FileType:
    return FileType(kind, True, f"{kind}-compressed data")


ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06", b"PK\x07\x08")  # a member, an empty archive, a spanned one

# longest magic first wherever one magic starts another
MAGICS: tuple[tuple[bytes, FileType], ...] = (
    (ZSTD_MAGIC, _compressed("zstd")),
    *((magic, FileType("zip", True, "a ZIP archive")) for magic in ZIP_MAGICS),
    (b"\x1f\x8b", _compressed("gzip")),
    (b"BZh", _compressed("bzip2")),
    (b"\xfd7zXZ\x00", _compressed("xz")),
    (b"7z\xbc\xaf\x27\x1c", FileType("7z", False, "a 7z archive")),
    (b"Rar!", FileType("rar", False, "a RAR archive")),
    (b"\x7fELF", FileType("elf", False, "an executable")),
    (b"%PDF", FileType("pdf", False, "a PDF document")),
    (b"\x89PNG", FileType("png", False, "a PNG image")),
    (b"\xff\xd8\xff", FileType("jpeg", False, "a JPEG image")),
)
MAX_MAGIC_BYTES = max(len(magic) for magic, _ in MAGICS)


def sniff(data: bytes) -> FileType | None:
    """The type DATA's first bytes announce, or None (plain text, or nothing we know)."""
    for magic, file_type in MAGICS:
        if data.startswith(magic):
            return file_type
    return None
