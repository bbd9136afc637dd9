"""Files written next to a freshly collected bundle, for getting it onto GitHub.

- `<stem>.md`: the Markdown report (the whole issue body); a small bundle rides along inside.
- `<stem>.zip`: the .zst bundle in a zip archive (stored, not recompressed), because GitHub accepts
  .zip attachments and may refuse .zst.
- `<stem>.environment.md` and `<stem>.describe.md`: the report's two parts, one for each text field of
  vLLM's bug form (see issue_form.py).

Nothing existing is overwritten unless `force` is set; every path is checked before any is written.
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from pathlib import Path
from typing import Any

from vllm_bug.errors import VllmBugError


def report_paths(bundle_path: Path) -> tuple[Path, Path]:
    bundle_path = Path(bundle_path)
    stem = bundle_path.with_suffix("") if bundle_path.suffix else bundle_path
    return stem.with_name(stem.name + ".md"), stem.with_name(stem.name + ".zip")


def report_paths_list(bundle_path: Path) -> list[Path]:
    """Every file written beside the bundle: the report, the zip, then the two form parts."""
    from vllm_bug.analyzer.issue_form import part_paths

    md_path, zip_path = report_paths(bundle_path)
    return [md_path, zip_path, *part_paths(md_path)]


def write_report_files(bundle_path: Path, doc: dict[str, Any], bundle_bytes: bytes, force: bool,
                       report: Any = None) -> list[Path]:
    """Write the report, the zip and the form parts beside the bundle; returns their paths in report_paths_list's
    order. `report` is render_report_for_bundle's answer when the caller already has it."""
    from vllm_bug.schema.bundle import write_bytes_exclusive

    bundle_path = Path(bundle_path)
    paths = report_paths_list(bundle_path)
    if not force:
        for p in paths:
            if p.exists():
                raise VllmBugError(f"{p} already exists; use --force to overwrite it")
    report = report if report is not None else render_report_for_bundle(doc, bundle_bytes)
    zipped = zip_bundle(bundle_bytes, bundle_path.name, doc.get("created_utc"))
    texts = [report.text.encode("utf-8"), zipped, report.environment.encode("utf-8"), report.describe.encode("utf-8")]
    return [write_bytes_exclusive(data, path, force=force) for data, path in zip(texts, paths, strict=True)]


def render_report_for_bundle(doc: dict[str, Any], bundle_bytes: bytes):
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
    when = _zip_time(created_utc)
    info = zipfile.ZipInfo(member_name, date_time=when)
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


def after_write_hook(force: bool):
    """For `collect`/`run`: after the bundle is written, write the report and the zip beside it.

    Returns the next steps for the collect summary (the form, its parts, the zip, the CLI). A failure here never loses
    the bundle: it is one line on stderr, with the command that renders the report later.
    """

    def hook(bundle_path: Path, doc: dict[str, Any]) -> list[str]:
        import sys

        from vllm_bug.analyzer.issue_form import next_steps

        bundle_path = Path(bundle_path)
        try:
            data = bundle_path.read_bytes()
            report = render_report_for_bundle(doc, data)
            written = write_report_files(bundle_path, doc, data, force, report)
        except VllmBugError as exc:
            print(f"vllm-bug: report not written: {exc}", file=sys.stderr)
            return []
        except Exception as exc:  # the bundle is safe on disk; the report can be made later
            print(f"vllm-bug: report not written ({type(exc).__name__}: {exc}); "
                  f"run: vllm-bug analyze {bundle_path} --format markdown", file=sys.stderr)
            return []
        return next_steps(report.title, *written)

    return hook

