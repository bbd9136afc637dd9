#!/usr/bin/env bash
# The static checks, run the way CI runs them: ruff (lint, then format --check), mypy over every module of
# the installed layout, and the import contracts. Configuration: pyproject.toml. Needs the dev extra:
#   .venv/bin/pip install -e '.[test,dev]'
# Usage: tools/static_checks.sh [ruff] [format] [mypy] [imports]     (no argument: all four)
# Exits 1 if any check failed, after running all that were asked; VENV names another virtual environment.
set -uo pipefail
cd "$(dirname "$0")/.."
BIN="${VENV:-.venv}/bin"
TREE=build/package-tree

run_ruff() { "$BIN/ruff" check --no-fix --output-format concise .; }
run_format() { "$BIN/ruff" format --check --output-format concise .; }
run_mypy() {
    "$BIN/python" tools/package_tree.py "$TREE" || return 1
    "$BIN/mypy" | "$BIN/python" tools/package_tree.py --source-paths "$TREE"
}
run_imports() {
    "$BIN/python" tools/package_tree.py "$TREE" || return 1
    # from inside the tree, so that vllm_bug is found there and not as the unmapped ./vllm_bug
    (cd "$TREE" && "../../$BIN/lint-imports" --no-logo --cache-dir ../.import_linter_cache ../../pyproject.toml)
}

checks=("$@")
[ ${#checks[@]} -eq 0 ] && checks=(ruff format mypy imports)
failed=()
for check in "${checks[@]}"; do
    case "$check" in
        ruff | format | mypy | imports) ;;
        *) echo "unknown check '$check' (expected: ruff format mypy imports)" >&2; exit 2 ;;
    esac
    echo "== $check"
    "run_$check" || failed+=("$check")
done
if [ ${#failed[@]} -gt 0 ]; then
    echo "== failed: ${failed[*]}"
    exit 1
fi
echo "== all passed: ${checks[*]}"
