"""Add or update rows of analyzer/data/signals/FAMILY.json, with trigger words and real example lines.

    python tools/signal_rows.py FAMILY ID 'REGEX' --source 'project: where it comes from' [--scope frames|all_frames]
        [--words w1,w2] [--max-hits N] [--case-sensitive] [--example LINE ...]

Trigger words, unless given, are read from the regex: one literal per top-level alternative that a
match must contain (refused when the regex has an alternative without a literal of 3+ characters:
then give --words). Examples, unless given, are the first two distinct lines of the test fixtures
and the corpus that the regex matches. The row is checked (compiles, examples match and contain a
word) before it is written; rows stay sorted by id.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TABLES = ROOT / "analyzer/data/signals"
SEARCH = [ROOT / "tests/fixtures", ROOT.parent / "shared/corpus"]


def example_lines(rx: re.Pattern[str], wanted: int = 2) -> list[str]:
    found: list[str] = []
    for base in SEARCH:
        for path in sorted(base.rglob("*")):
            if not path.is_file() or path.suffix in (".zst", ".zip"):
                continue
            try:
                text = path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError):
                continue
            if path.suffix == ".jsonl":
                text = "\n".join(
                    v
                    for line in text.splitlines()
                    if line.strip()
                    for v in json.loads(line).values()
                    if isinstance(v, str)
                )
            for line in text.splitlines():
                line = line.strip()
                if 8 < len(line) <= 300 and rx.search(line) and line not in found:
                    found.append(line)
                    if len(found) >= wanted:
                        return found
    return found


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("family", help="table file name without .json (usually the rule module's name)")
    parser.add_argument("id")
    parser.add_argument("pattern")
    parser.add_argument("--source", required=True)
    parser.add_argument("--scope", choices=("text", "frames", "all_frames"), default="text")
    parser.add_argument("--words")
    parser.add_argument("--max-hits", type=int)
    parser.add_argument("--case-sensitive", action="store_true")
    parser.add_argument("--example", action="append", default=[])
    args = parser.parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from vllm_bug.analyzer.prefilter import required_words
    from vllm_bug.analyzer.signals import row_problems

    words = args.words.split(",") if args.words else required_words(args.pattern)
    if not words:
        print("cannot read trigger words from this regex: give --words", file=sys.stderr)
        return 2
    flags = re.MULTILINE | (0 if args.case_sensitive else re.IGNORECASE)
    lowered = {w.lower() for w in words}
    minimal = sorted(w for w in lowered if not any(other != w and other in w for other in lowered))
    row: dict = {"pattern": args.pattern, "words": minimal}
    if args.scope != "text":
        row["scope"] = args.scope
    if args.case_sensitive:
        row["case_sensitive"] = True
    if args.max_hits:
        row["max_hits"] = args.max_hits
    row["source"] = args.source
    row["examples"] = args.example or example_lines(re.compile(args.pattern, flags))
    problems = row_problems(row)
    if not row["examples"]:
        problems.append("no example found in the fixtures or corpus: give --example with a real line")
    if problems:
        print(f"{args.id}: " + "; ".join(problems), file=sys.stderr)
        return 1
    table_path = TABLES / f"{args.family}.json"
    others = {
        p.name
        for p in TABLES.glob("*.json")
        if p != table_path and args.id in json.loads(p.read_text(encoding="utf-8"))["signals"]
    }
    if others:
        print(f"{args.id} is already defined in {sorted(others)}", file=sys.stderr)
        return 1
    doc = json.loads(table_path.read_text(encoding="utf-8")) if table_path.exists() else {"version": 1, "signals": {}}
    doc["signals"][args.id] = row
    doc["signals"] = dict(sorted(doc["signals"].items()))
    table_path.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    print(f"{args.id}: words {row['words']}, {len(row['examples'])} example(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
