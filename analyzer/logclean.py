"""Turn a raw log or pasted report into clean lines: colours, log prefixes and per-rank copies removed.

vLLM's multi-process logs prefix each line with the process that wrote it (`(EngineCore_DP0 pid=N)`,
`(VllmWorker rank=N pid=N)`, `[rank0]:` ...), then a log header (`ERROR 03-19 07:27:53 [file.py:N]`).
Several ranks print the same traceback at once, so their lines interleave. Lines are first
de-interleaved by their process tag, then stripped, then copies of one block from several ranks
are kept once.
"""

from __future__ import annotations

from vllm_bug.formats.ansi import PASTED, strip_ansi
from vllm_bug.formats.lazyre import lazy_compile
from vllm_bug.formats.logline import LogLine, parse_log_line

MAX_LINE_CHARS = 16384  # longer lines are cut: no regex ever sees more than this
MAX_LINES = 400_000

_LITERAL_CR = lazy_compile(r"\^M")
_MASK_DIGITS = str.maketrans("123456789", "000000000")


def clean_lines(text: str) -> list[str]:
    """The input's lines with colours and log prefixes stripped and per-rank copies merged."""
    return [line.text for line in merge_rank_copies(tag_lines(text))]


def raw_lines(text: str) -> list[str]:
    """Split on any line break (including carriage returns of progress bars), colours removed."""
    text = strip_ansi(text, PASTED)
    if "^M" in text:
        text = _LITERAL_CR.sub("\n", text)
    lines = text.splitlines()
    if len(lines) > MAX_LINES:
        half = MAX_LINES // 2
        lines = lines[:half] + ["[... lines cut by vllm-bug ...]"] + lines[-half:]
    out: list[str] = []
    for line in lines:
        if len(line) > 400 and line.count("\\n") > 3:  # a JSON-escaped log pasted as one line
            out.extend(part[:MAX_LINE_CHARS] for part in line.split("\\n"))
        else:
            out.append(line[:MAX_LINE_CHARS] if len(line) > MAX_LINE_CHARS else line)
    return out


def tag_lines(text: str) -> list[LogLine]:
    return [parse_log_line(line) for line in raw_lines(text)]


def merge_rank_copies(lines: list[LogLine]) -> list[LogLine]:
    """De-interleave runs of tagged lines by their tag, and keep one copy of blocks repeated by ranks."""
    out: list[LogLine] = []
    seen: list[tuple[str, frozenset[str]]] = []  # (source, masked lines) of earlier multi-line blocks
    i, n = 0, len(lines)
    while i < n:
        if not lines[i].source:
            out.append(lines[i])
            i += 1
            continue
        j = i
        while j < n and (lines[j].source or (not lines[j].text and j + 1 < n and lines[j + 1].source)):
            j += 1
        region_seen: list[tuple[str, frozenset[str]]] = []
        groups = _group_by_source(lines[i:j])
        multi = len(groups) > 1
        for source, block in groups:
            masked = _masked(block) if (multi or _worth_comparing(block)) else frozenset()
            if masked and (
                _covered(source, masked, region_seen) or (len(masked) >= 2 and _covered(source, masked, seen))
            ):
                continue
            out.extend(block)
            region_seen.append((source, masked))
        seen.extend(entry for entry in region_seen if len(entry[1]) >= 2)
        del seen[:-64]
        i = j
    return out


def _masked(block: list[LogLine]) -> frozenset[str]:
    return frozenset(line.text.strip().translate(_MASK_DIGITS) for line in block if line.text.strip())


def _worth_comparing(block: list[LogLine]) -> bool:
    """Only blocks that hold an error are compared across regions (masking every line costs time)."""
    return len(block) >= 2 and any("Error" in line.text or 'File "' in line.text for line in block)


def _group_by_source(region: list[LogLine]) -> list[tuple[str, list[LogLine]]]:
    groups: dict[str, list[LogLine]] = {}
    last = ""
    for line in region:
        source = line.source or last
        last = source
        groups.setdefault(source, []).append(line)
    return list(groups.items())


def _covered(source: str, masked: frozenset[str], earlier: list[tuple[str, frozenset[str]]]) -> bool:
    """True when another process already printed all of these lines (numbers masked).

    A line cut short by the reporter (a prefix of a line the other process printed) still counts.
    """
    for other, lines in earlier:
        if other == source:
            continue
        missing: list[str] = []
        for line in masked:
            if line not in lines:
                missing.append(line)
                if len(missing) > 2:
                    break
        if len(missing) > 2:
            continue
        if all(_is_cut_copy(line, lines) for line in missing):
            return True
    return False


def _is_cut_copy(line: str, lines: frozenset[str]) -> bool:
    if len(line) < 40:
        return False
    return any(other.startswith(line) or line.startswith(other) for other in lines if len(other) >= 40)
