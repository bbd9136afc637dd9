"""Where a command's output goes, and the one policy (and wording) for writing files.

- No -o, or `-o -`: standard output.
- `-o PATH`: checked before any work is done (so a long run never ends in "cannot write"), then
  written atomically: a temporary file in the same folder, renamed into place. An existing file is
  never replaced without --force, and never when it is one of the command's inputs. An existing pipe
  or character device (/dev/null, a FIFO) is written into, not replaced; block devices and sockets
  are refused.
- Several files that belong together (collect's bundle, report and zip) are all written to temporary
  names first and then renamed in one step that Ctrl-C cannot split: they appear together or not at all.

Every refusal is a VllmBugError (exit 1) worded by the functions below, and every name shown to a
terminal passes through `terminal_safe` first.

Standard library only: cli.py imports this module on its error path.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import re
import signal
import stat
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

from vllm_bug.errors import VllmBugError
from vllm_bug.formats.lazyre import lazy_compile

STDOUT = "-"
_TEMP_PREFIX = ".vllm-bug-"  # short, so a name near the file system's limit still has a temporary twin

# C0 and C1 control characters, DEL and the bidirectional overrides: escape sequences (OSC 52 clipboard
# writes, window titles, cursor moves) and text that displays in another order than it reads.
_UNPRINTABLE = lazy_compile("[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_UNPRINTABLE_KEEP_LINES = lazy_compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
# what json.dumps leaves raw with ensure_ascii=False (it escapes only C0 controls)
_JSON_RAW_CONTROLS = lazy_compile("[\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape_char(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def terminal_safe(text: object) -> str:
    """TEXT on one line with every control character spelled out (`\\x1b`), for names and messages."""
    return _UNPRINTABLE.sub(_escape_char, str(text))


def terminal_safe_lines(text: str) -> str:
    """Like terminal_safe, but keeps line breaks and tabs: for multi-line output built from untrusted parts."""
    return _UNPRINTABLE_KEEP_LINES.sub(_escape_char, text)


def json_text(document: Any) -> str:
    """The one JSON rendering of every command: indented, UTF-8, no raw control characters."""
    text = json.dumps(document, indent=2, ensure_ascii=False)
    return _JSON_RAW_CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text) + "\n"


def say(message: str) -> None:
    """A progress or status line on stderr, shown at once (the final output is cli.py's to render)."""
    sys.stderr.write(f"vllm-bug: {terminal_safe(message)}\n")
    sys.stderr.flush()


# ------------------------------------------------------------------ the wording


@contextlib.contextmanager
def naming_input(path: os.PathLike[str] | str) -> Iterator[None]:
    """Errors met while reading the input PATH name it ('b.txt: not a zstd-compressed bundle ...'), so that a
    command given several inputs says which one it refused; messages that already begin with it are kept."""
    try:
        yield
    except VllmBugError as exc:
        message = str(exc)
        if message.startswith((os.fspath(path), terminal_safe(path))):
            raise
        renamed = copy.copy(exc)  # the same class and exit code, whatever its constructor takes
        renamed.args = (f"{terminal_safe(path)}: {message}",)
        raise renamed from None


def exists_message(path: os.PathLike[str] | str) -> str:
    return f"{terminal_safe(path)} already exists; use --force to overwrite it"


def is_directory_message(path: os.PathLike[str] | str) -> str:
    return f"{terminal_safe(path)} is a directory; give a file name"


def over_input_message(path: os.PathLike[str] | str) -> str:
    return f"refusing to write over the input {terminal_safe(path)}"


def cannot_write_message(path: os.PathLike[str] | str, why: str) -> str:
    return f"cannot write {terminal_safe(path)}: {why}"


class OutputExists(VllmBugError):
    """The file to write exists and --force was not given (or it appeared while we worked)."""

    def __init__(self, path: os.PathLike[str] | str) -> None:
        super().__init__(exists_message(path))
        self.path = Path(path)


def _os_error(path: os.PathLike[str] | str, exc: OSError) -> VllmBugError:
    if isinstance(exc, FileExistsError):
        return OutputExists(path)
    return VllmBugError(cannot_write_message(path, exc.strerror or str(exc)))


# ------------------------------------------------------------------ checking before the work


class Destination(NamedTuple):
    """Where a command's text goes: a file (checked already) or standard output (path None)."""

    path: Path | None = None
    force: bool = False

    def write(self, data: bytes) -> Path | None:
        if self.path is None:
            return None
        return write_file(self.path, data, self.force)


def destination(output: str | None, force: bool, inputs: Iterable[str] = ()) -> Destination:
    """-o as given: None or '-' is standard output; a path is checked now, before any work."""
    if output is None or output == STDOUT:
        return Destination()
    if not output:
        raise VllmBugError("-o needs a file name (or - for standard output)")
    path = Path(output)
    check_writable(path, force)
    refuse_inputs(path, inputs)
    return Destination(path, force)


def check_writable(path: Path, force: bool) -> None:
    """Refuse now what write_file would refuse later: a directory, an existing file, a missing folder."""
    try:
        mode: int | None = os.stat(path).st_mode
    except FileNotFoundError:
        mode = None
    except OSError as exc:  # a name too long, a loop of links, a file used as a folder
        raise _os_error(path, exc) from None
    if mode is not None and stat.S_ISDIR(mode):
        raise VllmBugError(is_directory_message(path))
    if os.path.lexists(path) and not force:
        raise OutputExists(path)
    if mode is not None and not stat.S_ISREG(mode):
        _refuse_unwritable_node(path, mode)
        return  # a pipe or character device is written into: its folder does not matter
    _check_folder(path)


def _check_folder(path: Path) -> None:
    parent = path.parent
    if not parent.is_dir():
        raise VllmBugError(cannot_write_message(path, f"directory {terminal_safe(parent)} does not exist"))
    if not os.access(parent, os.W_OK | os.X_OK):
        raise VllmBugError(cannot_write_message(path, f"directory {terminal_safe(parent)} is not writable"))


def _refuse_unwritable_node(path: Path, mode: int) -> None:
    if not (stat.S_ISCHR(mode) or stat.S_ISFIFO(mode)):
        raise VllmBugError(f"{terminal_safe(path)} is a block device or socket, not a file: refusing to write to it")


def refuse_inputs(path: Path, inputs: Iterable[str]) -> None:
    """Refuse a destination that is one of the inputs (the same file, whatever the name)."""
    try:
        target = os.stat(path)
    except OSError:
        return
    for name in inputs:
        try:
            st = os.stat(name)
        except OSError:
            continue
        if (st.st_dev, st.st_ino) == (target.st_dev, target.st_ino):
            raise VllmBugError(over_input_message(name))


# ------------------------------------------------------------------ writing


def write_file(path: os.PathLike[str] | str, data: bytes, force: bool = False) -> Path:
    """Write DATA to PATH atomically; never over an existing file unless FORCE."""
    target = Path(path)
    commit_together([(target, data)], force)
    return target


def commit_together(files: list[tuple[Path, bytes]], force: bool) -> None:
    """Write every (path, data) so that all of them appear, or none does.

    Each is written to a temporary file in its own folder first; then all are renamed into place with
    Ctrl-C held back, and without FORCE a name that turns out to be taken undoes the ones already placed.
    Existing pipes and character devices are written into afterwards (they cannot be renamed over).
    """
    regular: list[tuple[Path, bytes]] = []
    special: list[tuple[Path, bytes]] = []
    for path, data in files:
        check_writable(path, force)
        (special if _is_special(path) else regular).append((path, data))
    temporaries: list[str] = []
    try:
        for path, data in regular:
            temporaries.append(_write_temporary(path, data))
        with interrupts_held():
            _place_all([path for path, _ in regular], temporaries, force)
    finally:
        for temporary in temporaries:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
    for path, data in special:
        _write_into(path, data)


def _is_special(path: Path) -> bool:
    try:
        mode = os.stat(path).st_mode
    except OSError:
        return False
    return not stat.S_ISREG(mode) and not stat.S_ISDIR(mode)


def _write_temporary(path: Path, data: bytes) -> str:
    import tempfile  # only when writing a file: printing to standard output does not pay for it

    try:
        fd, temporary = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise _os_error(path, exc) from None
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.chmod(temporary, 0o644)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        if isinstance(exc, OSError):
            raise _os_error(path, exc) from None
        raise
    return temporary


def _place_all(paths: list[Path], temporaries: list[str], force: bool) -> None:
    placed: list[Path] = []
    try:
        for path, temporary in zip(paths, temporaries, strict=True):
            _place(temporary, path, force)
            placed.append(path)
    except BaseException:
        if not force:  # what we created is removed again; with --force the old files are gone already
            for path in placed:
                with contextlib.suppress(OSError):
                    os.unlink(path)
        raise


def _place(temporary: str, path: Path, force: bool) -> None:
    try:
        if force:
            os.replace(temporary, path)
            return
        try:
            os.link(temporary, path)  # fails if the name is taken, even by a file made a moment ago
        except FileExistsError:
            raise
        except OSError:  # a file system without hard links: claim the name, then rename over our claim
            os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644))
            os.replace(temporary, path)
    except OSError as exc:
        raise _os_error(path, exc) from None


def _write_into(path: Path, data: bytes) -> None:
    try:
        with open(path, "wb") as fh:
            fh.write(data)
    except OSError as exc:
        raise _os_error(path, exc) from None


@contextlib.contextmanager
def interrupts_held() -> Iterator[None]:
    """Hold Ctrl-C back for the duration of the block, then act on it (a few renames must not be split)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: received.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if received and callable(previous):
            previous(signal.SIGINT, None)
        elif received and previous == signal.SIG_DFL:
            raise KeyboardInterrupt
