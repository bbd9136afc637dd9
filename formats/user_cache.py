"""The folder where vllm-bug keeps, between runs, what it derives from its own code and data (compiled report
templates, compiled regexes, the signal index): $XDG_CACHE_HOME/vllm-bug/<name>, else ~/.cache/vllm-bug/<name>.

Everything kept there is derived and keyed by what it was derived from, so a stale or damaged file costs a
recomputation, never a wrong answer; a folder that cannot be made or written means no cache at all.
"""

from __future__ import annotations

import contextlib
import marshal
import os
from collections.abc import Callable
from typing import Any, TypeVar, cast

T = TypeVar("T")


def cache_folder(name: str) -> str | None:
    """The folder for one kind of cached data, made (private to the user) if missing; None when it cannot be."""
    base = os.environ.get("XDG_CACHE_HOME", "")
    if not os.path.isabs(base):  # unset, or relative, which the XDG spec says to ignore
        base = os.path.join(os.path.expanduser("~"), ".cache")
    if not os.path.isabs(base):  # no HOME and no password entry: "~" stayed as it was
        return None
    folder = os.path.join(base, "vllm-bug", name)
    try:
        os.makedirs(folder, mode=0o700, exist_ok=True)
    except OSError:
        return None
    return folder if os.access(folder, os.W_OK) else None


def read_cached(folder: str, file_name: str) -> bytes | None:
    """The bytes of a cached file, or None when there is none (or it cannot be read)."""
    try:
        with open(os.path.join(folder, file_name), "rb") as handle:
            return handle.read()
    except OSError:
        return None


def write_cached(folder: str, file_name: str, data: bytes) -> None:
    """Replace a cached file in one step (a reader sees the old file or the new one, never half of one);
    a failure leaves the old file and is not an error."""
    import tempfile  # only when writing, which a warm cache seldom does

    try:
        fd, temporary = tempfile.mkstemp(dir=folder, prefix=f".{file_name}.")
    except OSError:
        return
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(temporary, os.path.join(folder, file_name))
    except OSError:
        with contextlib.suppress(OSError):
            os.unlink(temporary)


def remember(name: str, key: bytes, compute: Callable[[], T]) -> T:
    """compute(), a value marshal can write (tuples, lists, dicts, str, numbers), kept in the cache folder with
    `key` and returned from there while the key is the same. The key must digest everything the value is
    derived from: the data and the code that derives it (a value kept by older code is otherwise read back)."""
    folder = cache_folder("data")
    file_name = f"{name}.marshal"
    data = read_cached(folder, file_name) if folder else None
    if data:
        try:
            kept_key, value = marshal.loads(data)
            if kept_key == key:
                return cast(T, value)
        except (EOFError, ValueError, TypeError):
            pass
    value = compute()
    if folder:
        write_cached(folder, file_name, marshal.dumps((key, cast(Any, value))))
    return value
