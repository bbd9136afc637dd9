"""Typed signals: every recognised message in the input, found once when facts are built.

A signal is a row of a table under `analyzer/data/signals/` (one file per family of messages): an id, a
regex, the trigger words one of which any match contains, and where the message comes from.
`detect_signals` scans the input's lines (the de-duplicated, capped text rules search) and the
root-cause exception once per row, and keeps for each signal the matching lines (in input order, at
most MAX_HITS), the named groups of each match, whether the root cause itself says it, and whether
the root cause's frames match (scope "frames") or the frames of any traceback in the input do, cut
ones without an error line included (scope "all_frames"). Rules ask `facts.signals` by id; they never
see a regex or the raw text.

A row's regex is compiled only when one of its words occurs in the lower-cased text, so a report
pays only for the messages it could contain.

The rows of the catalogue mined from upstream sources (analyzer/data/catalogue/, written by
tools/mine_catalogue.py) are signals too. There are hundreds of them, so instead of words searched
in the text they carry tokens: the text is split once into a set of tokens (`text_tokens`), and a
row is tried only when all the tokens of one of its forms are in that set. `catalogue_row()` gives what the catalogue
says about each of those signals (category, message, provenance) to the rules that read it (rules/catalogue.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any, NamedTuple

from vllm_bug.analyzer.prefilter import fold
from vllm_bug.formats.package_files import package_folder
from vllm_bug.formats.regex_cache import compile_cached

if TYPE_CHECKING:
    from vllm_bug.analyzer.facts import Facts

MAX_HITS = 5
MAX_LINE_CHARS = 400
SCOPES = ("text", "frames", "all_frames")
FRAME_SCOPES = ("frames", "all_frames")


class SignalRow(NamedTuple):
    """One row as detection reads it (a named tuple: the table makes some 1,400 of them every run)."""

    id: str
    pattern: str
    words: tuple[str, ...]  # lower case; a match contains at least one
    # "text": the input's lines and the root cause; "frames": the root cause's frames; "all_frames": the frames of
    # every traceback (the root cause's among them), one 'path function' line per distinct frame
    scope: str = "text"
    case_sensitive: bool = False
    max_hits: int = MAX_HITS
    tokens: tuple[tuple[str, ...], ...] = ()  # catalogue rows: a match holds every token of one of these
    catalogue: bool = (
        False  # a row of the mined catalogue (analyzer/data/catalogue/), which catalogue_row() tells about
    )

    @property
    def flags(self) -> int:
        return re.MULTILINE | (0 if self.case_sensitive else re.IGNORECASE)


@dataclass(frozen=True)
class Hit:
    line: str  # the input line (stripped, clipped) that holds the match
    groups: dict[str, str]  # the match's named groups that took part


@dataclass
class SignalSet:
    """What was found, by signal id. Unknown ids are a programming error (KeyError), not 'absent'."""

    hits: dict[str, list[Hit]] = field(default_factory=dict)
    in_root: set[str] = field(default_factory=set)  # signals the root-cause exception's own text carries
    in_root_text: set[str] = field(default_factory=set)  # signals anywhere in the root cause's traceback text
    root_groups: dict[str, dict[str, str]] = field(default_factory=dict)
    in_frames: set[str] = field(default_factory=set)  # "all_frames" signals found in some traceback's frames
    frame_lines: dict[str, str] = field(default_factory=dict)  # such a signal's first matching 'path function' line

    def seen(self, *ids: str) -> bool:
        """Whether any of the signals occurs anywhere (the input's lines, the root cause, any traceback's frames)."""
        return any(self._known(i) and (self.hits.get(i) or i in self.in_root or i in self.in_frames) for i in ids)

    def in_any_frames(self, *ids: str) -> bool:
        """Whether the frames of some traceback in the input (cut ones included) match one of the signals."""
        return any(self._known(i) and i in self.in_frames for i in ids)

    def frame_path(self, signal_id: str) -> str | None:
        """The path of the first frame that matched an "all_frames" signal (None when none did)."""
        self._known(signal_id)
        line = self.frame_lines.get(signal_id)
        return line.rsplit(" ", 1)[0] if line else None

    def lines(self, *ids: str, limit: int = 3) -> list[str]:
        """Matching input lines of the signals, signal by signal, each line once."""
        out: list[str] = []
        for signal_id in ids:
            self._known(signal_id)
            for hit in self.hits.get(signal_id, ())[:limit]:
                if hit.line and hit.line not in out:
                    out.append(hit.line)
        return out[:limit]

    def first(self, signal_id: str) -> Hit | None:
        self._known(signal_id)
        found = self.hits.get(signal_id)
        return found[0] if found else None

    def all(self, signal_id: str) -> list[Hit]:
        self._known(signal_id)
        return list(self.hits.get(signal_id, ()))

    def in_root_traceback(self, *ids: str) -> bool:
        """Whether the root cause's whole traceback text (lines continuing its message included) carries one."""
        return any(self._known(i) and i in self.in_root_text for i in ids)

    def root(self, *ids: str) -> bool:
        """Whether the root-cause exception itself carries one of the signals (frames, for frame signals)."""
        return any(self._known(i) and i in self.in_root for i in ids)

    @staticmethod
    def _known(signal_id: str) -> bool:
        if signal_id not in table():
            raise KeyError(f"unknown signal {signal_id!r}")
        return True


def read_tables(folder: str, key: str) -> dict[str, dict[str, Any]]:
    """The rows of every JSON table in analyzer/data/<folder>/, merged; an id defined twice is an error."""
    return _merged_rows(folder, _data_files(folder), key)


def _data_files(folder: str) -> list[tuple[str, bytes]]:
    """(name, content) of every JSON file in analyzer/data/<folder>/, by name."""
    base = package_folder("vllm_bug.analyzer").joinpath("data").joinpath(folder)
    entries = sorted((entry for entry in base.iterdir() if entry.name.endswith(".json")), key=lambda e: e.name)
    return [(entry.name, entry.read_bytes()) for entry in entries]


def _merged_rows(folder: str, files: list[tuple[str, bytes]], key: str) -> dict[str, dict[str, Any]]:
    merged: dict[str, dict[str, Any]] = {}
    for name, content in files:
        text = content.decode("utf-8")
        if f'"{key}":' not in text:
            continue  # a table of another kind in the same folder (the catalogue's flag and release tables)
        for row_id, row in json.loads(text)[key].items():
            if row_id in merged:
                raise ValueError(f"{folder}/{name}: {row_id} is defined twice")
            merged[row_id] = row
    return merged


def read_table_file(folder: str, name: str, key: str) -> dict[str, dict[str, Any]]:
    """The rows of analyzer/data/<folder>/<name>.json, or none when that table does not exist."""
    entry = package_folder("vllm_bug.analyzer").joinpath("data").joinpath(folder).joinpath(f"{name}.json")
    if not entry.is_file():
        return {}
    return dict(json.loads(entry.read_text("utf-8"))[key])


@lru_cache(maxsize=1)
def table() -> dict[str, SignalRow]:
    """The signals table, read once from package data: the hand-written tables, then the catalogue.

    What detection needs of each row (not the examples, sources and excerpts the tables also hold) is kept
    in the user cache folder, keyed by the tables' content, so a run reads that instead of parsing them."""
    from vllm_bug.formats.user_cache import remember

    digest, sources = _tables()
    fields = remember("signal-rows", digest, lambda: _row_fields(sources))
    return {row[0]: SignalRow(*row) for row in fields}


@lru_cache(maxsize=1)
def _tables() -> tuple[bytes, dict[str, list[tuple[str, bytes]]]]:
    """What the kept indexes are keyed by: the sha256 of the signal and catalogue tables and of the code that
    derives the indexes from them (this module); and the tables' files."""
    import hashlib

    sources = {folder: _data_files(folder) for folder in ("signals", "catalogue")}
    digest = hashlib.sha256(_deriving_code())
    for folder, files in sources.items():
        for name, content in files:
            digest.update(f"{folder}/{name}:{len(content)}:".encode())
            digest.update(content)
    return digest.digest(), sources


def _deriving_code() -> bytes:
    """This module's source: a kept index made by other code (fields added, derived otherwise) is stale too."""
    try:
        with open(__file__, "rb") as handle:
            return handle.read()
    except OSError:  # no source to read: no index is trusted across runs
        import os

        return os.urandom(16)


def _row_fields(sources: dict[str, list[tuple[str, bytes]]]) -> list[tuple[Any, ...]]:
    """Each row's SignalRow fields, in table order."""
    rows: dict[str, tuple[Any, ...]] = {}
    for signal_id, row in _merged_rows("signals", sources["signals"], "signals").items():
        words = tuple(word.lower() for word in row["words"])
        scope, case_sensitive = row.get("scope", "text"), row.get("case_sensitive", False)
        max_hits = row.get("max_hits", MAX_HITS)
        rows[signal_id] = (signal_id, row["pattern"], words, scope, case_sensitive, max_hits, (), False)
    for signal_id, row in catalogue_rows().items():
        if signal_id in rows:
            raise ValueError(f"catalogue row {signal_id} has the id of a signal")
        tokens = tuple(tuple(form) for form in row["tokens"])
        rows[signal_id] = (signal_id, row["pattern"], (), "text", False, MAX_HITS, tokens, True)
    return list(rows.values())


@dataclass(frozen=True)
class CatalogueRow:
    """What the catalogue says about one of its signals: the message's category ("generic" for an error with many
    causes), its text with {} for the values, and where it was read (repository, path, the releases holding it)."""

    id: str
    category: str
    template: str
    repository: str
    path: str
    present: tuple[tuple[str, str], ...]  # (first, last) release of each span of the mined releases holding it
    releases: tuple[str, ...]  # every release mined from the repository, oldest first
    exception: str | None = None
    name: str | None = None  # an enum member's name (cudaErrorIllegalAddress)
    number: int | None = None
    description: str | None = None  # an enum member's message (cudaGetErrorString)
    carries: str | None = None  # "cuda_error": the message wraps a CUDA error, in the named group of that name
    line: int | None = None
    level: str | None = None  # "warning" or "info" for a message vLLM logs rather than raises


@lru_cache(maxsize=1)
def _catalogue_documents() -> tuple[dict[str, Any], ...]:
    """The catalogue files that hold message rows (analyzer/data/catalogue/), parsed once, in name order."""
    docs = []
    base = package_folder("vllm_bug.analyzer").joinpath("data").joinpath("catalogue")
    for entry in sorted(base.iterdir(), key=lambda item: item.name):
        if entry.name.endswith(".json"):
            text = entry.read_text("utf-8")
            if '"rows":' in text:  # not the flag and release tables
                docs.append(json.loads(text))
    return tuple(docs)


@lru_cache(maxsize=1)
def catalogue_rows() -> dict[str, dict[str, Any]]:
    """The catalogue's message rows as stored; an id defined twice is an error."""
    merged: dict[str, dict[str, Any]] = {}
    for doc in _catalogue_documents():
        for row_id, row in doc["rows"].items():
            if row_id in merged:
                raise ValueError(f"catalogue: {row_id} is defined twice")
            merged[row_id] = row
    return merged


@lru_cache(maxsize=1)
def _mined_releases() -> dict[str, tuple[str, ...]]:
    """Every release mined, oldest first, by repository."""
    return {doc["source"]["repository"]: tuple(doc["source"]["releases"]) for doc in _catalogue_documents()}


def is_catalogue_row(signal_id: str) -> bool:
    row = table().get(signal_id)
    return row is not None and row.catalogue


@cache
def catalogue_row(signal_id: str) -> CatalogueRow:
    """What the catalogue says about one of its signals, with its provenance (KeyError for another id)."""
    rows, releases = _catalogue_facts()
    category, template, repository, path, present, exception, name, number, description, carries, line, level = rows[
        signal_id
    ]
    return CatalogueRow(
        id=signal_id,
        category=category,
        template=template,
        repository=repository,
        path=path,
        present=present,
        releases=releases.get(repository, ()),
        exception=exception,
        name=name,
        number=number,
        description=description,
        carries=carries,
        line=line,
        level=level,
    )


@lru_cache(maxsize=1)
def _catalogue_facts() -> tuple[dict[str, tuple[Any, ...]], dict[str, tuple[str, ...]]]:
    """CatalogueRow's fields of every catalogue row (less id and releases), and the releases mined from each
    repository: kept in the user cache folder like the signal index, so a report whose root cause is a
    catalogue message does not parse the whole catalogue for its provenance."""
    from vllm_bug.formats.user_cache import remember

    return remember("catalogue-rows", _tables()[0], _catalogue_fields)


def _catalogue_fields() -> tuple[dict[str, tuple[Any, ...]], dict[str, tuple[str, ...]]]:
    rows: dict[str, tuple[Any, ...]] = {}
    for signal_id, row in catalogue_rows().items():
        where = row["provenance"]
        present = tuple((first, last) for first, last in where["present"])
        rows[signal_id] = (row["category"], row["template"], where["repository"], where["path"], present)
        rows[signal_id] += tuple(row.get(key) for key in ("exception", "name", "number", "description", "carries"))
        rows[signal_id] += (where.get("line"), row.get("level"))
    return rows, _mined_releases()


@lru_cache(maxsize=1)
def cuda_error_by_message() -> dict[str, str]:
    """The catalogue's CUDA errors by their message in lower case ('out of memory' -> CUDA_ERR_MEMORY_ALLOCATION)."""
    rows = (catalogue_row(row_id) for row_id in _catalogue_facts()[0])
    return {
        row.description.lower(): row.id
        for row in rows
        if row.description and str(row.name or "").startswith("cudaError")
    }


def matched_text(signal_id: str, line: str) -> str | None:
    """What the signal's pattern matches in one line (a hit's line), or None: for quoting a message in a title."""
    match = _compiled(signal_id).search(line)
    return match.group(0) if match else None


@cache
def _compiled(signal_id: str) -> re.Pattern[str]:
    row = table()[signal_id]
    return compile_cached(row.pattern, row.flags)


def detect_signals(facts: Facts) -> SignalSet:
    """Every signal of the table, found in the facts' lines, root cause and root-cause frames."""
    from vllm_bug.analyzer.search import searchable

    entry = searchable(facts)
    text = entry.text
    root_text, frames_text = _root_texts(facts)
    all_frames_text = _all_frames_text(facts)
    traceback_text = facts.root_cause.text if facts.root_cause is not None else ""
    folded_text, folded_root, folded_frames = entry.folded, fold(root_text), fold(frames_text)
    folded_traceback, folded_all_frames = fold(traceback_text), fold(all_frames_text)
    lines = Lines(text, folded_text)
    root_words, traceback_words = text_tokens(folded_root), text_tokens(folded_traceback)
    rows = table()
    # the token rows that may match each text, found from its tokens rather than by trying every row
    forms = _forms_by_token(rows)
    in_text = _rows_with_a_form_in(forms, lines.tokens) if forms else set()
    in_root, in_traceback = _rows_with_a_form_in(forms, root_words), _rows_with_a_form_in(forms, traceback_words)
    found = SignalSet()
    for row in rows.values():
        if row.scope in FRAME_SCOPES:
            if frames_text and _may_match(row, folded_frames):
                match = _compiled(row.id).search(frames_text)
                if match:
                    found.in_root.add(row.id)
                    found.root_groups[row.id] = _groups(match)
            if row.scope == "all_frames" and all_frames_text and _may_match(row, folded_all_frames):
                match = _compiled(row.id).search(all_frames_text)
                if match:
                    found.in_frames.add(row.id)
                    found.frame_lines[row.id] = _line_at(all_frames_text, match.start())
            continue
        if (row.id in in_text) if row.tokens else _may_match(row, folded_text):
            hits = _scan_lines_with(row, lines) if row.tokens else _scan(row, text)
            if hits:
                found.hits[row.id] = hits
        if root_text and (row.id in in_root if row.tokens else _may_match(row, folded_root)):
            match = _compiled(row.id).search(root_text)
            if match:
                found.in_root.add(row.id)
                found.root_groups[row.id] = _groups(match)
        if (
            traceback_text
            and (row.id in in_traceback if row.tokens else _may_match(row, folded_traceback))
            and _compiled(row.id).search(traceback_text)
        ):
            found.in_root_text.add(row.id)
    return found


_FORMS_BY_TOKEN: dict[str, tuple[dict[str, SignalRow], dict[str, list[tuple[str, tuple[str, ...]]]]]] = {}


def _forms_by_token(rows: dict[str, SignalRow]) -> dict[str, list[tuple[str, tuple[str, ...]]]]:
    """Every form of the token rows, as (row id, form), filed under its longest token ("" for an empty form)."""
    kept = _FORMS_BY_TOKEN.get("index")
    if kept is not None and kept[0] is rows:
        return kept[1]
    index: dict[str, list[tuple[str, tuple[str, ...]]]] = {}
    for row in rows.values():
        for form in row.tokens:
            index.setdefault(max(form, key=len, default=""), []).append((row.id, form))
    _FORMS_BY_TOKEN["index"] = (rows, index)
    return index


def _rows_with_a_form_in(forms: dict[str, list[tuple[str, tuple[str, ...]]]], tokens: set[str]) -> set[str]:
    """The ids of the token rows one of whose forms lies wholly in `tokens` (what _may_match asks of each)."""
    found: set[str] = set()
    for anchor in [token for token in tokens if token in forms] + ([""] if "" in forms else []):
        for row_id, form in forms[anchor]:
            if row_id not in found and all(token in tokens for token in form):
                found.add(row_id)
    return found


def _may_match(row: SignalRow, folded: str, tokens: set[str] | None = None) -> bool:
    if row.tokens and tokens is not None:
        return any(all(token in tokens for token in form) for form in row.tokens)
    return any(word in folded for word in row.words)


# Whitespace and ASCII punctuation other than '_' separate tokens (tools/catalogue_mining/messages.py picks
# a row's tokens by the same rule). Punctuation becomes spaces in UTF-8: translating a long str that is
# not pure ASCII is slow, bytes are not.
_PUNCTUATION = b"!\"#$%&'()*+,-./:;<=>?@[\\]^`{|}~"
_SEPARATE = bytes.maketrans(_PUNCTUATION, b" " * len(_PUNCTUATION))


def utf8(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")


def text_tokens(folded: str) -> set[str]:
    """The tokens of a folded text."""
    return set(utf8(folded).translate(_SEPARATE).decode("utf-8", "surrogatepass").split())


class Lines:
    """A text, its folded copy, their UTF-8 and the folded text's tokens, made when a catalogue row asks."""

    def __init__(self, text: str, folded: str) -> None:
        self.text, self.folded = text, folded
        self._bytes: tuple[bytes, bytes] | None = None
        self._tokens: set[str] | None = None

    @property
    def tokens(self) -> set[str]:
        if self._tokens is None:
            self._tokens = set(self.as_bytes()[1].translate(_SEPARATE).decode("utf-8", "surrogatepass").split())
        return self._tokens

    def as_bytes(self) -> tuple[bytes, bytes]:
        if self._bytes is None:
            self._bytes = utf8(self.text), utf8(self.folded)
        return self._bytes


def _scan(row: SignalRow, text: str) -> list[Hit]:
    rx = _compiled(row.id)
    hits: list[Hit] = []
    pos = 0
    while len(hits) < row.max_hits and pos <= len(text):
        match = rx.search(text, pos)
        if match is None:
            break
        start = text.rfind("\n", 0, match.start()) + 1
        end = text.find("\n", match.start())
        end = len(text) if end < 0 else end
        line = text[start:end].strip()
        if line:
            hits.append(Hit(clip(line), _groups(match)))
        pos = end + 1
    return hits


def _line_at(text: str, pos: int) -> str:
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return text[start : len(text) if end < 0 else end]


def _scan_lines_with(row: SignalRow, lines: Lines) -> list[Hit]:
    """`_scan` for a catalogue row, whose matches lie within one line: only the lines that hold every token
    of one of its forms are searched, and the regex is compiled only when there is such a line (on a long
    log many rows pass the token test, and compiling and running each over all of it costs seconds)."""
    text, folded = lines.as_bytes()
    if len(folded) != len(text):  # lower() changed a character's length: offsets would not line up
        return _scan(row, lines.text)
    starts: set[int] = set()
    for form in row.tokens:
        if not all(token in lines.tokens for token in form):
            continue
        anchor, *others = (utf8(token) for token in form)
        pos = folded.find(anchor)
        while pos != -1:
            start, end = folded.rfind(b"\n", 0, pos) + 1, folded.find(b"\n", pos)
            end = len(folded) if end < 0 else end
            if all(token in folded[start:end] for token in others):
                starts.add(start)
            pos = folded.find(anchor, end)
    if not starts:
        return []  # the tokens are in the text but never together in one line: nothing to compile
    rx = _compiled(row.id)
    hits: list[Hit] = []
    for start in sorted(starts):
        end = text.find(b"\n", start)
        line = text[start : len(text) if end < 0 else end].decode("utf-8", "surrogatepass")
        match = rx.search(line)
        if match and line.strip():
            hits.append(Hit(clip(line), _groups(match)))
            if len(hits) >= row.max_hits:
                break
    return hits


def _groups(match: re.Match[str]) -> dict[str, str]:
    return {name: value for name, value in match.groupdict().items() if value is not None}


def _root_texts(facts: Facts) -> tuple[str, str]:
    rc = facts.root_cause
    if rc is None:
        return "", ""
    frames = "\n".join(f"{frame.path} {frame.function or ''}" for frame in rc.frames)
    return f"{rc.exc_type}: {rc.message}", frames


def _all_frames_text(facts: Facts) -> str:
    """Every distinct frame of every traceback found (and of the root cause), as 'path function' lines."""
    tracebacks = list(facts.tracebacks)
    if facts.root_cause is not None:
        tracebacks.append(facts.root_cause)
    seen: dict[str, None] = {}
    for tb in tracebacks:
        for frame in tb.frames:
            seen.setdefault(f"{frame.path} {frame.function or ''}", None)
    return "\n".join(seen)


def clip(line: str) -> str:
    line = line.strip()
    return line if len(line) <= MAX_LINE_CHARS else line[: MAX_LINE_CHARS - 3] + "..."


def row_problems(row: dict[str, Any]) -> list[str]:
    """What is wrong with a raw table row beyond its JSON schema: a regex that does not compile, an
    example that does not match or contains none of the words, a word with upper case."""
    problems: list[str] = []
    try:
        rx = re.compile(row["pattern"], re.MULTILINE | (0 if row.get("case_sensitive") else re.IGNORECASE))
    except re.error as exc:
        return [f"pattern does not compile: {exc}"]
    words = [w for w in row.get("words", [])]
    if any(w != w.lower() for w in words):
        problems.append("words must be lower case")
    for example in row.get("examples", []):
        if not rx.search(example):
            problems.append(f"example does not match: {example!r}")
        elif not any(w in fold(example) for w in words):
            problems.append(f"example contains none of the words: {example!r}")
    return problems
