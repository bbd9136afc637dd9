"""Regenerate analyzer/data/catalogue/ from the upstream sources: error messages with provenance, vLLM's
flags and torch pins, release by release.

    # 1. fetch the sources with pip (vLLM wheels keep only their .py files and metadata; a vLLM or Triton
    #    git mirror is over a GiB, a wheel per release is what a release shipped) and git
    python tools/mine_catalogue.py download --dest ~/catalogue-src \
        --vllm 0.2.0 0.3.0 ... 0.33.0 --pins-since 0.2.0 --triton 2.3.1 3.0.0 ... 3.9.0 \
        --cuda-runtime nvidia-cuda-runtime-cu11==11.8.89 nvidia-cuda-runtime-cu12==12.9.79 ...
    git clone --mirror https://github.com/NVIDIA/nccl ~/catalogue-src/nccl.git

    # 2. mine them (each file below is rewritten only when its sources are given)
    python tools/mine_catalogue.py generate \
        --vllm ~/catalogue-src/vllm/*.zip  (or: --vllm-git MIRROR --vllm-tag v0.6.0 --vllm-tag ...) \
        --vllm-pins ~/catalogue-src/vllm-pins \
        --cuda /usr/local/cuda ~/catalogue-src/cudart/*.whl \
        --nccl-git ~/catalogue-src/nccl.git --triton ~/catalogue-src/triton/*.whl \
        --pytorch-tree PYTORCH_CHECKOUT --pytorch-ref COMMIT --torch-wheel torch-*.whl

The data in the repository was made from the first release of each vLLM minor series 0.2.0 ... 0.33.0
(wheels from PyPI; their vllm/commit_id.py gives the commit) plus the metadata of every release from
0.2.0 on, CUDA runtimes 11.8, 12.1, 12.9, 13.0 and 13.5, NCCL tags v2.10.3-1 ... v2.30.7-1, Triton
2.3.1 ... 3.9.0, torch 2.13.0, and c10/cuda/CUDAException.cpp of pytorch (a folder holding only that
file, its commit in SOURCES.json: --pytorch-tree accepts that as well as a checkout).

What each source gives (files under analyzer/data/catalogue/):
- vllm_messages.json: every message raised (raise, assert, exception __str__) in vLLM's config and
  engine-argument validation and platform detection (vllm/config*.py, vllm/engine/arg_utils.py,
  vllm/platforms/), and anywhere in vllm/ when it names a compute capability; each with the releases
  it is in.
- vllm_warnings.json: vLLM's own WARNING (and some INFO) lines that say a feature is unsupported on the GPU,
  disabled or falling back, or that a setting was overridden (tools/catalogue_mining/vllm_logs.py's topics): each
  with the category of failure it bears on and its role, "explains" (logged before a failure of that category,
  a likely cause) or "context" (supports a finding on the error itself; INFO lines, and lines saying vLLM fell
  back to something else, are context only).
- vllm_flags.json: the option strings vLLM's engine and OpenAI-server parsers declare, release by release:
  when each appeared, was marked deprecated and disappeared, with the deprecation texts that name
  another flag.
- vllm_releases.json: the torch each release pins (wheel metadata or requirements/cuda.txt) and the
  constant defaults of EngineArgs (plus VLLM_MAIN_CUDA_VERSION) per mined release.
- cuda_errors.json: every cudaError_t (name, number, cudaGetErrorString text) with a category or
  "generic", matched bare and inside the wrappers that print it (torch "CUDA error: ...", NCCL
  "Cuda failure '...'", Triton "Triton Error [CUDA]: ...").
- nccl.json: ncclResult_t codes and texts, and the warning forms that carry a CUDA error.
- triton.json: Triton's compiler, runtime and launcher errors, and libtriton.so's "PassManager::run failed".
- torch.json: torch.cuda's messages about CUDA or its driver being unusable.

Rows keep the source excerpt each message was read from; tests/test_catalogue.py checks every regex
against the message rebuilt from its excerpt, offline. Exit codes: 0 done, 1 a source could not be read,
2 usage error.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, TypeVar

sys.path.insert(0, str(Path(__file__).resolve().parent))

from catalogue_mining import cuda, nccl, pytorch, triton, vllm, vllm_logs  # noqa: E402
from catalogue_mining.messages import Hole, Template  # noqa: E402
from catalogue_mining.rows import GENERIC, Form, Row, slug_id, snake, spans  # noqa: E402
from catalogue_mining.sources import GitRef, Source, Tree, ZipRelease, git_tags, version_key  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "analyzer" / "data" / "catalogue"
FORMAT_VERSION = 1

SourceT = TypeVar("SourceT", bound=Source)
FoundT = TypeVar("FoundT")
KeyT = TypeVar("KeyT")


# -- writing -----------------------------------------------------------------------------------------------
def write_table(out: Path, name: str, header: dict[str, Any], rows: Iterable[Row]) -> int:
    table: dict[str, Any] = {}
    for row in rows:
        data = row.to_json()
        if data is None:
            continue
        if row.id in table:
            raise SystemExit(f"{name}: row id {row.id} made twice")
        table[row.id] = data
    document = {
        "version": FORMAT_VERSION,
        "generated_by": "tools/mine_catalogue.py",
        **header,
        "rows": dict(sorted(table.items())),
    }
    write_json(out / name, document)
    return len(table)


def write_json(path: Path, document: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def provenance(
    repository: str, path: str, ref: str, commit: str | None, present: list[list[str]] | None = None, **more: Any
) -> dict[str, Any]:
    out: dict[str, Any] = {"repository": repository, "path": path, "ref": ref}
    if commit:
        out["commit"] = commit
    if present is not None:
        out["present"] = present
    out.update(more)
    return out


# -- vLLM --------------------------------------------------------------------------------------------------
def vllm_sources(args: argparse.Namespace) -> list[Source]:
    sources: list[Source] = [ZipRelease(Path(p), vllm.REPOSITORY) for p in args.vllm or []]
    if args.vllm_git:
        sources += [GitRef(Path(args.vllm_git), tag, vllm.REPOSITORY) for tag in args.vllm_tag or []]
    return sorted(sources, key=lambda s: version_key(s.ref))


def vllm_forms(template: Template) -> list[Form]:
    """A raised message as printed whole, then its first sentence alone (a cut line or a title quotes only that)."""
    first = template.first_sentence()
    return [Form(template)] + ([Form(first)] if first is not None else [])


def newest_by_key(
    sources: Iterable[SourceT], found_in: Callable[[SourceT], Iterable[FoundT]], key_of: Callable[[FoundT], KeyT]
) -> dict[KeyT, tuple[FoundT, SourceT, list[str]]]:
    """Each message found in the releases (oldest first), by key: the newest release's copy, that release, and every
    release holding it (in the order met), keys in the order first met."""
    seen: dict[KeyT, tuple[FoundT, SourceT, list[str]]] = {}
    for source in sources:
        for found in found_in(source):
            key = key_of(found)
            refs = seen[key][2] if key in seen else []
            if source.ref not in refs:
                refs.append(source.ref)
            seen[key] = (found, source, refs)
    return seen


def vllm_message_rows(sources: list[Source]) -> list[Row]:
    order = [s.ref for s in sources]
    rows = []
    seen = newest_by_key(sources, vllm.release_messages, lambda found: vllm.message_key(found.message))
    for (exception, head), (found, source, refs) in seen.items():
        message = found.message
        prefix = "VLLM_CFG" if found.family == "config" else "VLLM_CAP"
        category = vllm.category_of(message.template.text())
        rows.append(
            Row(
                slug_id(prefix, head, exception),
                vllm_forms(message.template),
                category,
                message.excerpt,
                "python",
                provenance(
                    vllm.REPOSITORY,
                    found.path,
                    source.ref,
                    source.commit,
                    spans(refs, order),
                    line=message.line,
                ),
                exception=exception,
            )
        )
    return rows


def vllm_warning_rows(sources: list[Source]) -> list[Row]:
    """vLLM's warnings (and INFO lines) that some topic of catalogue_mining.vllm_logs claims, with the releases
    that log them."""
    order = [s.ref for s in sources]
    rows = []
    seen = newest_by_key(sources, vllm_logs.release_log_messages, vllm_logs.message_key)
    for (level, head), (found, source, refs) in seen.items():
        topic = found.topic
        rows.append(
            Row(
                slug_id("VLLM_WARN" if level == "warning" else "VLLM_INFO", head),
                [Form(found.message.template)],
                topic.category,
                found.message.excerpt,
                "python",
                provenance(
                    vllm.REPOSITORY,
                    found.path,
                    source.ref,
                    source.commit,
                    spans(refs, order),
                    line=found.message.line,
                ),
                extra={
                    "level": level,
                    "topic": topic.id,
                    "role": topic.role_of(level, found.message.template.text()),
                },
            )
        )
    return rows


def vllm_flag_table(sources: list[Source]) -> dict[str, Any]:
    order = [s.ref for s in sources]
    per_release = {s.ref: vllm.release_flags(s) for s in sources}
    names = sorted({name for flags in per_release.values() for name in flags})
    table: dict[str, Any] = {}
    for name in names:
        present = [ref for ref in order if name in per_release[ref]]
        deprecated = [ref for ref in present if per_release[ref][name].deprecated]
        last = present[-1]
        entry: dict[str, Any] = {"present": spans(present, order), "path": per_release[last][name].path}
        if deprecated:
            entry["deprecated"] = spans(deprecated, order)
        if last != order[-1]:
            entry["removed_in"] = order[order.index(last) + 1]
        hints = _flag_hints(name, present, per_release)
        if hints and (deprecated or "removed_in" in entry):
            entry["hints"] = hints
            newest = per_release[order[-1]]
            replacements = sorted({flag for hint in hints for flag in hint["flags"] if flag in newest})
            if replacements:
                entry["replaced_by"] = replacements
        table[name] = entry
    return table


def _flag_hints(name: str, present: list[str], per_release: dict[str, dict[str, vllm.FlagInfo]]) -> list[dict]:
    """The deprecation texts (newest release first that has one) that name other flags."""
    import re

    for ref in reversed(present):
        texts = per_release[ref][name].mentions
        out = []
        for text in texts:
            others = sorted(set(re.findall(r"--[a-z0-9][a-z0-9-]+", text)) - {name})
            if others:
                out.append({"release": ref, "text": text[:400], "flags": others})
        if out:
            return out
    return []


def vllm_release_table(sources: list[Source], pins_dir: Path | None) -> dict[str, Any]:
    releases: dict[str, Any] = {}
    for version, pin, where in _metadata_pins(pins_dir):
        releases[version] = {"torch": pin, "from": where}
    for source in sources:
        pin, where = vllm.release_pin(source)
        version = source.ref.lstrip("v")
        releases[version] = {"torch": pin, "from": where}
    defaults: dict[str, list[dict[str, Any]]] = {}
    order = [s.ref for s in sources]
    values: dict[str, dict[str, list[str]]] = {}
    for source in sources:
        for name, value in vllm.release_defaults(source).items():
            values.setdefault(name, {}).setdefault(json.dumps(value), []).append(source.ref)
    for name in sorted(values):
        defaults[name] = [
            {"value": json.loads(value), "present": spans(refs, order)}
            for value, refs in sorted(values[name].items(), key=lambda item: version_key(item[1][0]))
        ]
    return {"torch_pins": dict(sorted(releases.items(), key=lambda item: version_key(item[0]))), "defaults": defaults}


def _metadata_pins(pins_dir: Path | None) -> Iterable[tuple[str, str | None, str]]:
    """(version, torch pin, where) from the `pip install --dry-run --report` files `download` keeps."""
    if not pins_dir:
        return
    for path in sorted(pins_dir.glob("vllm-*.json")):
        report = json.loads(path.read_text("utf-8"))
        for item in report.get("install", []):
            metadata = item.get("metadata", {})
            if metadata.get("name", "").lower() != "vllm":
                continue
            pin = vllm.torch_pin(metadata.get("requires_dist", []))
            yield metadata["version"], pin, "PyPI wheel metadata (Requires-Dist)"


# -- CUDA --------------------------------------------------------------------------------------------------
def cuda_rows(runtimes: list[cuda.Runtime], carriers: list[dict[str, Any]]) -> tuple[list[Row], list[str]]:
    order = [r.version for r in sorted(runtimes, key=lambda r: version_key(r.version))]
    merged: dict[str, dict[str, Any]] = {}
    for runtime in sorted(runtimes, key=lambda r: version_key(r.version)):
        for error, text in cuda.runtime_table(runtime):
            entry = merged.setdefault(error.name, {"versions": []})
            entry["versions"].append(runtime.version)
            entry.update(error=error, runtime=runtime)
            if text:
                entry["text"] = text
    rows = []
    for name, entry in merged.items():
        error, runtime, text = entry["error"], entry["runtime"], entry.get("text")
        forms = []
        for carrier in carriers if text else []:
            parts = [text if isinstance(p, Hole) and p.name == "cuda_error" else p for p in carrier["template"].parts]
            forms.append(Form(Template.of(parts), open_end=carrier["open_end"]))
        forms.append(Form(Template.of([name]), prefix=r"\b", suffix=r"\b"))
        extra = {"name": name, "number": error.number}
        if text:
            extra["description"] = text
        if error.deprecated:
            extra["deprecated"] = True
        rows.append(
            Row(
                "CUDA_ERR_" + snake(name.removeprefix("cudaError")),
                forms,
                cuda.category_of(name),
                error.excerpt,
                "enum",
                provenance(
                    "NVIDIA CUDA runtime",
                    runtime.header_path,
                    runtime.version,
                    None,
                    spans(entry["versions"], order),
                    read_from=runtime.origin,
                    description_from="cudaGetErrorString of " + (runtime.library.name if runtime.library else "-"),
                ),
                extra=extra,
            )
        )
    return rows, order


def cuda_carriers(
    nccl_forms: list[nccl.LogForm], triton_rows: list[triton.TritonMessage], torch_wrapper: pytorch.Wrapper | None
) -> list[dict[str, Any]]:
    """Messages of other layers that print a CUDA error's text (a hole named cuda_error)."""
    out: list[dict[str, Any]] = []
    if torch_wrapper:
        out.append(
            {
                "layer": "torch",
                "template": torch_wrapper.template,
                "excerpt": torch_wrapper.excerpt,
                "exception": torch_wrapper.exception,
                "path": torch_wrapper.path,
                "open_end": True,
            }
        )
    for form in nccl_forms:
        if any(isinstance(p, Hole) and p.name == "cuda_error" for p in form.template.parts):
            out.append(
                {
                    "layer": "nccl",
                    "template": form.template,
                    "excerpt": form.excerpt,
                    "path": form.path,
                    "open_end": True,
                }
            )
    for message in triton_rows:
        if message.carries == "cuda_error":
            out.append(
                {
                    "layer": "triton",
                    "template": message.template,
                    "excerpt": message.excerpt,
                    "path": message.path,
                    "open_end": True,
                }
            )
    unique: dict[str, dict[str, Any]] = {}
    for carrier in out:
        unique.setdefault(carrier["template"].head().text(), carrier)
    return list(unique.values())


# -- NCCL --------------------------------------------------------------------------------------------------
def nccl_rows(mirror: Path, oldest: tuple[int, int]) -> tuple[list[Row], list[nccl.LogForm], list[str]]:
    tags = sorted(nccl.release_tags(git_tags(mirror), oldest), key=version_key)
    results: dict[str, dict[str, Any]] = {}
    forms: dict[str, dict[str, Any]] = {}
    for tag in tags:
        source = GitRef(mirror, tag, nccl.REPOSITORY)
        for result in nccl.results(source):
            entry = results.setdefault(result.name, {"tags": [], "texts": []})
            entry["tags"].append(tag)
            entry.update(result=result, source=source)
            if result.text and result.text not in entry["texts"]:
                entry["texts"].append(result.text)
        for form in nccl.log_forms(source) + [f for f in [nccl.warn_prefix(source)] if f]:
            entry = forms.setdefault(form.template.head().text(), {"tags": []})
            entry["tags"].append(tag)
            entry.update(form=form, source=source)
    rows = []
    for name, entry in results.items():
        result, source = entry["result"], entry["source"]
        row_forms = [Form(Template.of([name]), prefix=r"\b", suffix=r"\b")]
        row_forms += [Form(Template.of([text])) for text in _without_extensions(entry["texts"])]
        extra: dict[str, Any] = {"name": name, "number": result.number}
        if result.text:
            extra["description"] = result.text
        if name == "ncclUnhandledCudaError":
            extra["carries"] = "cuda_error"  # the CUDA failure NCCL warned about is the root cause
        kind = "c" if result.text else "enum"
        rows.append(
            Row(
                "NCCL_RES_" + snake(name.removeprefix("nccl")),
                row_forms,
                "nccl",
                result.excerpt,
                kind,
                provenance(nccl.REPOSITORY, result.path, source.ref, source.commit, spans(entry["tags"], tags)),
                extra=extra,
            )
        )
    carriers = []
    for text, entry in forms.items():
        form, source = entry["form"], entry["source"]
        carries = (
            "cuda_error" if any(isinstance(p, Hole) and p.name == "cuda_error" for p in form.template.parts) else None
        )
        prefix = (
            "NCCL_WARN"
            if text.startswith("NCCL WARN")
            else ("NCCL_CUDA_FAILURE" if "Cuda failure" in text else "NCCL_SYSCALL_FAILED")
        )
        extra = {"carries": carries} if carries else {}
        rows.append(
            Row(
                slug_id(prefix, text) if prefix != "NCCL_WARN" else prefix,
                [Form(form.template)],
                "nccl" if not carries else GENERIC,
                form.excerpt,
                "c",
                provenance(nccl.REPOSITORY, form.path, source.ref, source.commit, spans(entry["tags"], tags)),
                extra=extra,
            )
        )
        carriers.append(form)
    return rows, carriers, tags


def _without_extensions(texts: list[str]) -> list[str]:
    """Drop a text that another one begins (the shorter one matches both)."""
    return [t for t in texts if not any(o != t and t.startswith(o) for o in texts)]


# -- Triton ------------------------------------------------------------------------------------------------
def triton_table(wheels: list[Path]) -> tuple[list[Row], list[triton.TritonMessage], list[str]]:
    releases = sorted((ZipRelease(w, triton.REPOSITORY) for w in wheels), key=lambda r: version_key(r.ref))
    order = [r.ref for r in releases]

    def messages_of(release: ZipRelease) -> list[triton.TritonMessage]:
        return [*triton.python_rows(release), *triton.launcher_rows(release), *triton.library_rows(release)]

    seen = newest_by_key(releases, messages_of, lambda message: (message.exception, message.template.head().text()))
    rows, carriers = [], []
    for (exception, head), (message, release, refs) in seen.items():
        kind = "python" if message.path.endswith(".py") else ("text" if message.path == triton.LIBRARY else "c")
        extra = {"carries": message.carries} if message.carries else {}
        category = GENERIC if message.carries else triton.category_of(message.template.text())
        rows.append(
            Row(
                slug_id("TRITON", head, exception),
                [Form(message.template)],
                category,
                message.excerpt,
                kind,
                provenance(
                    triton.REPOSITORY,
                    message.path,
                    release.ref,
                    None,
                    spans(refs, order),
                    read_from=release.path.name,
                ),
                exception=exception,
                extra=extra,
            )
        )
        if message.carries:
            carriers.append(message)
    return rows, carriers, order


# -- torch -------------------------------------------------------------------------------------------------
def torch_rows(wheel: Path) -> tuple[list[Row], str]:
    release = ZipRelease(wheel, pytorch.REPOSITORY)
    rows: dict[str, Row] = {}
    for message in pytorch.cuda_module_messages(release):
        head = message.template.head().text()
        row_id = slug_id("TORCH_CUDA", head, message.exception)
        rows.setdefault(
            row_id,
            Row(
                row_id,
                [Form(message.template)],
                pytorch.category_of(message.template.text()),
                message.excerpt,
                "python",
                provenance(
                    pytorch.REPOSITORY,
                    pytorch.CUDA_MODULE,
                    release.ref,
                    None,
                    [[release.ref, release.ref]],
                    line=message.line,
                    read_from=wheel.name,
                ),
                exception=message.exception,
            ),
        )
    return list(rows.values()), release.ref


# -- download ----------------------------------------------------------------------------------------------
SLIM_KEEP = (".py", ".dist-info/METADATA")


def download(args: argparse.Namespace) -> int:
    dest = Path(args.dest)
    for version in args.vllm or []:
        _fetch_wheel(f"vllm=={version}", dest / "vllm", f"vllm-{version}.zip", slim=True)
    for version in args.triton or []:
        _fetch_wheel(f"triton=={version}", dest / "triton", None, slim=False)
    for requirement in args.cuda_runtime or []:
        _fetch_wheel(requirement, dest / "cudart", None, slim=False)
    if args.pins_since:
        _fetch_pins(dest / "vllm-pins", args.pins_since)
    return 0


def _pip(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, check=False)


def _fetch_wheel(requirement: str, folder: Path, slim_name: str | None, slim: bool) -> None:
    import tempfile

    folder.mkdir(parents=True, exist_ok=True)
    if slim_name and (folder / slim_name).exists():
        return
    with tempfile.TemporaryDirectory() as tmp:
        proc = _pip(
            "download",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--python-version",
            "3.12",
            "--platform",
            "manylinux_2_28_x86_64",
            "--platform",
            "manylinux2014_x86_64",
            "--platform",
            "manylinux1_x86_64",
            requirement,
            "-d",
            tmp,
            "-q",
        )
        wheels = sorted(Path(tmp).glob("*.whl"))
        if proc.returncode != 0 or not wheels:
            print(f"could not download {requirement}: {proc.stderr.strip()[-300:]}", file=sys.stderr)
            return
        if not slim:
            wheels[0].replace(folder / wheels[0].name)
            return
        with zipfile.ZipFile(wheels[0]) as full, zipfile.ZipFile(folder / slim_name, "w", zipfile.ZIP_DEFLATED) as out:
            for name in full.namelist():
                if name.endswith(SLIM_KEEP):
                    out.writestr(name, full.read(name))
    print(f"downloaded {requirement}")


def _fetch_pins(folder: Path, since: str) -> None:
    """Every vLLM release's metadata (not its wheel): `pip install --dry-run --report` reads the metadata only."""
    import re

    folder.mkdir(parents=True, exist_ok=True)
    listing = _pip("index", "versions", "vllm").stdout
    match = re.search(r"Available versions: (.*)", listing)
    versions = [v.strip() for v in match.group(1).split(",")] if match else []
    for version in versions:
        if version_key(version) < version_key(since) or (folder / f"vllm-{version}.json").exists():
            continue
        proc = _pip(
            "install",
            "--dry-run",
            "--no-deps",
            "--ignore-installed",
            "--quiet",
            "--report",
            str(folder / f"vllm-{version}.json"),
            f"vllm=={version}",
        )
        if proc.returncode != 0:
            print(f"no metadata for vllm {version}: {proc.stderr.strip()[-200:]}", file=sys.stderr)


# -- main --------------------------------------------------------------------------------------------------
def generate(args: argparse.Namespace) -> int:
    out = Path(args.out)
    summary: dict[str, Any] = {}
    sources = vllm_sources(args)
    if sources:
        order = [s.ref for s in sources]
        header = {
            "source": {
                "repository": vllm.REPOSITORY,
                "releases": order,
                "files": list(vllm.CONFIG_FILES)
                + [f + "*.py" for f in vllm.CONFIG_FOLDERS]
                + ["vllm/**/*.py (messages naming a compute capability)"],
            }
        }
        summary["vllm_messages"] = write_table(out, "vllm_messages.json", header, vllm_message_rows(sources))
        log_header = {
            "source": {
                "repository": vllm.REPOSITORY,
                "releases": order,
                "files": ["vllm/**/*.py (logger.warning, warning_once, info and info_once calls that a topic claims)"],
            }
        }
        summary["vllm_warnings"] = write_table(out, "vllm_warnings.json", log_header, vllm_warning_rows(sources))
        flags = vllm_flag_table(sources)
        write_json(
            out / "vllm_flags.json",
            {
                "version": FORMAT_VERSION,
                "generated_by": "tools/mine_catalogue.py",
                "source": {
                    "repository": vllm.REPOSITORY,
                    "releases": order,
                    "files": [vllm.ENGINE_ARGS, "vllm/entrypoints/**/cli_args.py", *vllm.PARSER_FILES],
                },
                "flags": flags,
            },
        )
        summary["vllm_flags"] = len(flags)
        releases = vllm_release_table(sources, Path(args.vllm_pins) if args.vllm_pins else None)
        write_json(
            out / "vllm_releases.json",
            {
                "version": FORMAT_VERSION,
                "generated_by": "tools/mine_catalogue.py",
                "source": {"repository": vllm.REPOSITORY, "releases": order},
                **releases,
            },
        )
        summary["vllm_torch_pins"] = len(releases["torch_pins"])
    nccl_forms: list[nccl.LogForm] = []
    if args.nccl_git:
        rows, nccl_forms, tags = nccl_rows(Path(args.nccl_git), tuple(int(n) for n in args.nccl_oldest.split(".")))
        summary["nccl"] = write_table(
            out, "nccl.json", {"source": {"repository": nccl.REPOSITORY, "releases": tags}}, rows
        )
    triton_carriers: list[triton.TritonMessage] = []
    if args.triton:
        rows, triton_carriers, order = triton_table([Path(p) for p in args.triton])
        summary["triton"] = write_table(
            out, "triton.json", {"source": {"repository": triton.REPOSITORY, "releases": order}}, rows
        )
    wrapper = None
    if args.pytorch_tree:
        wrapper = pytorch.cuda_check_wrapper(Tree(Path(args.pytorch_tree), pytorch.REPOSITORY, args.pytorch_ref))
    if args.torch_wheel:
        rows, ref = torch_rows(Path(args.torch_wheel))
        summary["torch"] = write_table(
            out, "torch.json", {"source": {"repository": pytorch.REPOSITORY, "releases": [ref]}}, rows
        )
    if args.cuda:
        scratch = cuda.scratch_dir()
        runtimes = [cuda.open_runtime(Path(p), scratch) for p in args.cuda]
        carriers = cuda_carriers(nccl_forms, triton_carriers, wrapper)
        rows, order = cuda_rows(runtimes, carriers)
        header = {
            "source": {"repository": "NVIDIA CUDA runtime", "releases": order},
            "wrappers": [_carrier_json(c, args) for c in carriers],
        }
        summary["cuda"] = write_table(out, "cuda_errors.json", header, rows)
    if vllm.SKIPPED:
        summary["files not parsed"] = sorted(set(vllm.SKIPPED))
    print(json.dumps(summary, indent=1))
    return 0


def _carrier_json(carrier: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    out = {
        "layer": carrier["layer"],
        "template": carrier["template"].text(named=True),
        "excerpt": carrier["excerpt"],
        "path": carrier["path"],
    }
    if carrier.get("exception"):
        out["exception"] = carrier["exception"]
    if carrier["layer"] == "torch":
        tree = Tree(Path(args.pytorch_tree), pytorch.REPOSITORY, args.pytorch_ref)
        out["repository"], out["commit"] = pytorch.REPOSITORY, tree.commit_of(carrier["path"])
    else:
        out["repository"] = nccl.REPOSITORY if carrier["layer"] == "nccl" else triton.REPOSITORY
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    dl = sub.add_parser("download", help="fetch vLLM/Triton wheels, CUDA runtime wheels and vLLM metadata with pip")
    dl.add_argument("--dest", required=True)
    dl.add_argument("--vllm", nargs="*")
    dl.add_argument("--triton", nargs="*")
    dl.add_argument("--cuda-runtime", nargs="*", help="requirements such as nvidia-cuda-runtime-cu12==12.9.79")
    dl.add_argument("--pins-since", help="read the metadata of every vLLM release from this version on")
    gen = sub.add_parser("generate", help="mine the sources into analyzer/data/catalogue/")
    gen.add_argument("--out", default=str(OUT))
    gen.add_argument("--vllm", nargs="*", help="vLLM wheels (or slimmed wheels), one per release")
    gen.add_argument("--vllm-git", help="a vLLM git mirror; with --vllm-tag")
    gen.add_argument("--vllm-tag", action="append")
    gen.add_argument("--vllm-pins", help="folder of pip --report files (download --pins-since)")
    gen.add_argument("--cuda", nargs="*", help="CUDA toolkit folders or nvidia-cuda-runtime wheels")
    gen.add_argument("--nccl-git", help="an NVIDIA/nccl git mirror or checkout")
    gen.add_argument("--nccl-oldest", default="2.10")
    gen.add_argument("--triton", nargs="*", help="Triton wheels, one per release")
    gen.add_argument("--pytorch-tree", help="a pytorch checkout (or the files needed, with SOURCES.json)")
    gen.add_argument("--pytorch-ref", default="main")
    gen.add_argument("--torch-wheel", help="a torch wheel (its torch/cuda/__init__.py)")
    args = parser.parse_args(argv)
    try:
        return download(args) if args.command == "download" else generate(args)
    except (OSError, zipfile.BadZipFile, StopIteration, subprocess.SubprocessError) as exc:
        print(f"mine_catalogue: cannot read a source: {exc or type(exc).__name__}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
