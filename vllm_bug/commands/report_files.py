"""The files `collect` and `run` write, and their names.

- `<stem>.zst`: the bundle.
- `<stem>.md`: the Markdown report (the whole issue body); a small bundle rides along inside.
- `<stem>.zip`: the bundle in a zip archive (stored, not recompressed), because GitHub accepts .zip
  attachments and may refuse .zst.
- `<stem>.environment.md` and `<stem>.describe.md`: the report's two parts, one for each text field of
  vLLM's bug form (see analyzer/issue_form.py).

They are written together (all or none, see output.commit_together). A default name is made unique
when they are written, so collections started in the same second each keep their own.
"""

from __future__ import annotations

import hashlib
import io
import os
import zipfile
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from vllm_bug.commands.output import OutputExists, check_writable, commit_together, terminal_safe
from vllm_bug.errors import UsageProblem, VllmBugError

COMPANION_SUFFIXES = (".md", ".zip")
MAX_NAME_TRIES = 1000


@dataclass(frozen=True)
class BundleFiles:
    bundle: Path
    report: Path
    archive: Path
    environment: Path
    describe: Path

    @classmethod
    def beside(cls, bundle: Path) -> BundleFiles:
        from vllm_bug.analyzer.issue_form import part_paths

        stem = bundle.with_suffix("") if bundle.suffix else bundle
        report = stem.with_name(stem.name + ".md")
        return cls(bundle, report, stem.with_name(stem.name + ".zip"), *part_paths(report))

    def paths(self) -> list[Path]:
        return [self.bundle, self.report, self.archive, self.environment, self.describe]

    def companions(self) -> list[Path]:
        return self.paths()[1:]


@dataclass(frozen=True)
class BundleNames:
    """Where the bundle goes: FOLDER/STEM[-n]SUFFIX, starting at number START (1 has no number)."""

    folder: Path
    stem: str
    suffix: str
    start: int = 1
    given: bool = False  # named by the user with -o (a default name is not worth a note when it changes)

    @property
    def first(self) -> BundleFiles:
        return self.numbered(self.start)

    def numbered(self, n: int) -> BundleFiles:
        name = self.stem if n <= 1 else f"{self.stem}-{n}"
        return BundleFiles.beside(self.folder / (name + self.suffix))

    def first_free(self, start: int) -> int:
        """The first number from START whose files do not exist."""
        for n in range(start, start + MAX_NAME_TRIES):
            if not any(os.path.lexists(p) for p in self.numbered(n).paths()):
                return n
        raise VllmBugError(f"cannot find a free name beside {terminal_safe(self.first.bundle)}")


def default_stem(now: datetime | None = None) -> str:
    return (now or datetime.now()).strftime("vllm-bug-%Y%m%d-%H%M%S")


def plan_names(output: str | None, force: bool) -> BundleNames:
    """The names to write, checked before any probe or command runs (exit 1 or 2 when unusable)."""
    if output is None:
        names = BundleNames(Path.cwd(), default_stem(), ".zst")
        names = replace(names, start=names.first_free(1))
        check_writable(names.first.bundle, force)  # the folder: writable?
        return names
    if output == "-":
        raise UsageProblem("-o -: the bundle is a file with a report beside it; give a file name")
    path = Path(output)
    if path.suffix.lower() in COMPANION_SUFFIXES:
        raise UsageProblem(
            f"-o {terminal_safe(output)}: a {path.suffix} file is written beside the bundle; "
            "give the bundle itself a name such as bundle.zst"
        )
    check_writable(path, force)  # before the names beside it: '.' or '/' have no name to add to
    for companion in BundleFiles.beside(path).companions():
        check_writable(companion, force)
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return BundleNames(path.parent, stem, path.suffix, given=True)


@dataclass
class Written:
    files: BundleFiles
    steps: list[str]  # what to do next with the report; none when it could not be made
    notes: list[str]


def write_bundle_files(doc: dict[str, Any], names: BundleNames, force: bool, *, take_another: bool) -> Written:
    """Encode DOC and write the bundle and the files beside it together.

    When a name turns out to be taken at the last moment (another collection started in the same
    second) and TAKE_ANOTHER is set, the next numbered name is used instead; otherwise OutputExists.
    A report that cannot be made never costs the bundle: it is then written alone, with a note.
    """
    from vllm_bug.schema.bundle import encode

    data = encode(doc)
    report, problem = _report_or_problem(doc, data)
    n = names.start
    for _ in range(MAX_NAME_TRIES):
        files = names.numbered(n)
        members = [(files.bundle, data)]
        if report is not None:
            zipped = zip_bundle(data, files.bundle.name, doc.get("created_utc"))
            members += [
                (files.report, report.text.encode("utf-8")),
                (files.archive, zipped),
                (files.environment, report.environment.encode("utf-8")),
                (files.describe, report.describe.encode("utf-8")),
            ]
        try:
            commit_together(members, force)
            break
        except OutputExists:
            if not take_another:
                raise
            n = names.first_free(n + 1)
    else:
        raise VllmBugError(f"cannot find a free name beside {terminal_safe(names.first.bundle)}")
    notes = []
    if names.given and files != names.first:
        notes.append(
            f"{terminal_safe(names.first.bundle)} was created by someone else meanwhile; "
            f"wrote {terminal_safe(files.bundle)} instead"
        )
    if problem:
        notes.append(
            f"report not written ({problem}); run: vllm-bug analyze {terminal_safe(files.bundle)} --format markdown"
        )
    return Written(files, _next_steps(report.title, files) if report is not None else [], notes)


def _next_steps(title: str, files: BundleFiles) -> list[str]:
    from vllm_bug.analyzer.issue_form import next_steps

    return next_steps(title, files.report, files.archive, files.environment, files.describe)


def _report_or_problem(doc: dict[str, Any], data: bytes) -> tuple[Any, str | None]:
    try:
        return render_report_for_bundle(doc, data), None
    except Exception as exc:  # noqa: BLE001 - the bundle is what matters; the report can be made from it later
        return None, f"{type(exc).__name__}: {exc}"


def render_report_for_bundle(doc: dict[str, Any], bundle_bytes: bytes) -> Any:
    """The report (a render_markdown.RenderedReport: the text, the title and the form parts)."""
    from vllm_bug.analyzer.analyze import analyze_loaded
    from vllm_bug.analyzer.load import LoadedInput
    from vllm_bug.analyzer.render_markdown import render_report

    loaded = LoadedInput("bundle", hashlib.sha256(bundle_bytes).hexdigest(), doc, None, "bundle")
    analysis = analyze_loaded(loaded)
    redactions = (doc.get("payload") or {}).get("redactions")
    return render_report(analysis, bundle_bytes=bundle_bytes, redactions=redactions)


def zip_bundle(bundle_bytes: bytes, member_name: str, created_utc: str | None = None) -> bytes:
    """A zip holding the bundle as one stored member (zstd data does not compress further)."""
    info = zipfile.ZipInfo(member_name, date_time=_zip_time(created_utc))
    info.compress_type = zipfile.ZIP_STORED
    info.external_attr = 0o644 << 16
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(info, bundle_bytes)
    return buffer.getvalue()


def _zip_time(created_utc: str | None) -> tuple[int, int, int, int, int, int]:
    try:
        date, time = (created_utc or "").rstrip("Z").split("T")
        y, mo, d = (int(x) for x in date.split("-"))
        h, mi, s = (int(float(x)) for x in time.split(":"))
        if y >= 1980:
            return (y, mo, d, h, mi, s)
    except ValueError:
        pass
    return (1980, 1, 1, 0, 0, 0)
