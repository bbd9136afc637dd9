"""Run `vllm-bug analyze --format json` on every fixture and corpus case; write one JSON map of results.

    python tools/behaviour_snapshot.py OUT.json                    # snapshot this tree
    python tools/behaviour_snapshot.py --diff A.json B.json        # match cases by name
    python tools/behaviour_snapshot.py --diff --by-content A.json B.json

Used to show that a restructuring kept behaviour: snapshot before, snapshot after, diff. Each case is
analysed through the CLI in this process (click's runner), so the result is what a user sees. Each
result records the sha256 of the bytes analysed, so `--by-content` can match cases whose fixture
moved or was merged with an identical one (the name-matched diff ignores that field).
"""

from __future__ import annotations

import hashlib
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "fixtures"
# the in-repo copies: a worktree has no ../shared next to it
CORPORA = [FIXTURES / "reports" / "real-issues-dev.jsonl", FIXTURES / "heldout" / "cases.jsonl"]
SKIP_SUFFIXES = {".md", ".jsonl"}
INPUT_HASH = "input_sha256"


def cases() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for path in sorted(FIXTURES.rglob("*")):
        if path.is_file() and path.suffix not in SKIP_SUFFIXES:
            out[str(path.relative_to(ROOT))] = path.read_bytes()
    for corpus in CORPORA:
        for line in corpus.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            case = json.loads(line)
            text = "\n".join(part for part in (case.get("title"), case.get("error_text"), case.get("env_text")) if part)
            out[f"{corpus.name}:{case['id']}"] = text.encode("utf-8")
    return out


def analyse(data: bytes) -> dict:
    from click.testing import CliRunner

    from vllm_bug.cli import cli

    result = CliRunner().invoke(cli, ["analyze", "-", "--format", "json"], input=data)
    if result.exit_code != 0:
        return {"exit_code": result.exit_code, "output": result.output.strip()[-300:]}
    doc = json.loads(result.stdout)
    doc.get("input", {}).pop("sha256", None)
    return {
        "exit_code": 0,
        "signature": doc.get("signature"),
        "diagnoses": [
            {k: d.get(k) for k in ("rule", "category", "confidence", "title", "evidence", "fixes")}
            for d in doc.get("diagnoses", [])
        ],
    }


def snapshot(inputs: dict[str, bytes]) -> dict[str, dict]:
    return {name: {**analyse(data), INPUT_HASH: hashlib.sha256(data).hexdigest()} for name, data in inputs.items()}


def _outcome(result: dict) -> dict:
    return {k: v for k, v in result.items() if k != INPUT_HASH}


def _describe(a: dict, b: dict) -> None:
    top_a = [(d["rule"], d["category"]) for d in a.get("diagnoses", [])[:1]]
    top_b = [(d["rule"], d["category"]) for d in b.get("diagnoses", [])[:1]]
    if top_a != top_b:
        print(f"   top: {top_a} -> {top_b}")
    if a.get("signature") != b.get("signature"):
        print(f"   signature: {a.get('signature')} -> {b.get('signature')}")
    rules_a = [d["rule"] for d in a.get("diagnoses", [])]
    rules_b = [d["rule"] for d in b.get("diagnoses", [])]
    if rules_a != rules_b:
        print(f"   rules: {rules_a} -> {rules_b}")
    elif a != b:
        print("   same rules; titles/evidence/fixes/confidence/exit code differ")


def _compare(before: dict[str, dict], after: dict[str, dict]) -> int:
    """Print each key whose outcome differs or that only one side has; return how many."""
    changed = 0
    for key in sorted(set(before) | set(after)):
        a, b = before.get(key), after.get(key)
        if a == b:
            continue
        changed += 1
        print(f"== {key}")
        if a is None or b is None:
            print("   only in", "after" if a is None else "before")
        else:
            _describe(a, b)
    return changed


def diff(before_path: str, after_path: str) -> int:
    before = {name: _outcome(r) for name, r in json.loads(Path(before_path).read_text()).items()}
    after = {name: _outcome(r) for name, r in json.loads(Path(after_path).read_text()).items()}
    changed = _compare(before, after)
    print(f"{changed} of {len(set(before) | set(after))} cases differ")
    return 0


class SnapshotError(Exception):
    pass


def by_content(results: dict[str, dict], path: str) -> tuple[dict[str, dict], dict[str, list[str]]]:
    """Outcome per input hash, and the case names that fed each hash."""
    outcomes: dict[str, dict] = {}
    names: dict[str, list[str]] = {}
    for name, result in sorted(results.items()):
        digest = result.get(INPUT_HASH)
        if digest is None:
            raise SnapshotError(
                f"{path}: case {name!r} has no {INPUT_HASH} (snapshot written by an older version "
                "of this tool); snapshot that tree again"
            )
        if digest in outcomes and outcomes[digest] != _outcome(result):
            raise SnapshotError(f"{path}: identical inputs {names[digest][0]!r} and {name!r} gave different results")
        outcomes[digest] = _outcome(result)
        names.setdefault(digest, []).append(name)
    return outcomes, names


def diff_by_content(before_path: str, after_path: str) -> int:
    try:
        before, names_before = by_content(json.loads(Path(before_path).read_text()), before_path)
        after, names_after = by_content(json.loads(Path(after_path).read_text()), after_path)
    except SnapshotError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    label = {digest: " | ".join(names_after.get(digest) or names_before[digest]) for digest in set(before) | set(after)}
    changed = _compare({label[d]: r for d, r in before.items()}, {label[d]: r for d, r in after.items()})
    renamed = sum(1 for d in set(before) & set(after) if names_before[d] != names_after[d])
    print(
        f"{changed} of {len(label)} distinct inputs differ "
        f"(before: {sum(map(len, names_before.values()))} cases, after: {sum(map(len, names_after.values()))}; "
        f"{renamed} inputs under other names)"
    )
    return 0


def main(argv: list[str]) -> int:
    if argv[:2] == ["--diff", "--by-content"] and len(argv) == 4:
        return diff_by_content(argv[2], argv[3])
    if argv[:1] == ["--diff"] and len(argv) == 3:
        return diff(argv[1], argv[2])
    if len(argv) != 1 or argv[0].startswith("-"):
        print(__doc__, file=sys.stderr)
        return 2
    results = snapshot(cases())
    Path(argv[0]).write_text(json.dumps(results, indent=1, sort_keys=True), encoding="utf-8")
    print(f"{len(results)} cases written to {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
