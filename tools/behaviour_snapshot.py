"""Run `vllm-bug analyze --format json` on every fixture and corpus case; write one JSON map of results.

    python tools/behaviour_snapshot.py OUT.json          # snapshot this tree
    python tools/behaviour_snapshot.py --diff A.json B.json

Used to show that a restructuring kept behaviour: snapshot before, snapshot after, diff. Each case is
analysed through the CLI in this process (click's runner), so the result is what a user sees.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPORA = [ROOT.parent / "shared" / "corpus" / "real-issues-dev.jsonl", ROOT / "tests/fixtures/heldout/cases.jsonl"]
SKIP_SUFFIXES = {".md"}


def cases() -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    for path in sorted((ROOT / "tests/fixtures").rglob("*")):
        if path.is_file() and path.suffix not in SKIP_SUFFIXES and path.suffix != ".jsonl":
            out[str(path.relative_to(ROOT))] = path.read_bytes()
    for corpus in CORPORA:
        if not corpus.exists():
            continue
        for line in corpus.read_text(encoding="utf-8").splitlines():
            if not line.strip():
                continue
            case = json.loads(line)
            text = "\n".join(part for part in (case.get("title"), case.get("error_text"), case.get("env_text")) if part)
            out[f"{corpus.name}:{case['id']}"] = text.encode("utf-8")
    return out


def analyse(data: bytes) -> object:
    from click.testing import CliRunner

    from vllm_bug.cli import cli

    result = CliRunner().invoke(cli, ["analyze", "-", "--format", "json"], input=data)
    if result.exit_code != 0:
        return {"exit_code": result.exit_code, "output": result.output.strip()[-300:]}
    doc = json.loads(result.stdout)
    doc.get("input", {}).pop("sha256", None)
    return {"exit_code": 0, "signature": doc.get("signature"),
            "diagnoses": [{k: d.get(k) for k in ("rule", "category", "confidence", "title", "evidence", "fixes")}
                          for d in doc.get("diagnoses", [])]}


def diff(before_path: str, after_path: str) -> int:
    before = json.loads(Path(before_path).read_text())
    after = json.loads(Path(after_path).read_text())
    changed = 0
    for name in sorted(set(before) | set(after)):
        a, b = before.get(name), after.get(name)
        if a == b:
            continue
        changed += 1
        print(f"== {name}")
        if a is None or b is None:
            print("   only in", "after" if a is None else "before")
            continue
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
            print("   same rules; titles/evidence/fixes/confidence differ")
    print(f"{changed} of {len(set(before) | set(after))} cases differ")
    return 0


def main(argv: list[str]) -> int:
    if argv[:1] == ["--diff"] and len(argv) == 3:
        return diff(argv[1], argv[2])
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    results = {name: analyse(data) for name, data in cases().items()}
    Path(argv[0]).write_text(json.dumps(results, indent=1, sort_keys=True), encoding="utf-8")
    print(f"{len(results)} cases written to {argv[0]}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
