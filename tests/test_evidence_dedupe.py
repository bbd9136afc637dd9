"""A pasted issue's title that repeats an error from its body is quoted once, as the body printed it."""

from vllm_bug.analyzer.analyze import analyze_text
from vllm_bug.analyzer.facts import Facts
from vllm_bug.analyzer.rules.helpers import dedupe_evidence, error_key

BODY = """\
Traceback (most recent call last):
  File "/usr/local/lib/python3.12/dist-packages/vllm/v1/worker/gpu_model_runner.py", line 2105, in execute_model
    self._update_states(scheduler_output)
RuntimeError: CUDA error: an illegal memory access was encountered
CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below might be incorrect.
"""


def finding(analysis, rule):
    return next(f for f in analysis.diagnoses if f.rule == rule)


def test_title_repeating_the_body_error_is_replaced_by_the_body_line():
    title = "[Bug]: RuntimeError: CUDA error: an illegal memory access was encountered"
    evidence = finding(analyze_text(title + "\n\n" + BODY), "ILLEGAL_MEMORY_ACCESS").evidence
    assert title not in evidence
    assert evidence.count("RuntimeError: CUDA error: an illegal memory access was encountered") == 1
    assert len({error_key(line) for line in evidence}) == len(evidence)


def test_title_quoting_the_body_error_among_other_words_gives_way():
    title = '[Usage]: Qwen3 fails on GB10 with "no kernel image is available for execution on the device"'
    body = "torch.AcceleratorError: CUDA error: no kernel image is available for execution on the device\n"
    evidence = finding(analyze_text(title + "\n" + body), "NO_KERNEL_IMAGE").evidence
    assert title not in evidence
    assert body.strip() in evidence


def test_title_is_kept_when_the_body_does_not_state_its_error():
    title = "[Bug]: RTX5080 got CUDA error: no kernel image is available for execution on the device"
    evidence = finding(analyze_text(title + "\nvllm serve Qwen/Qwen3-8B\n"), "NO_KERNEL_IMAGE").evidence
    assert evidence == [title]


def test_lines_differing_in_spacing_only_are_one_error():
    facts = Facts(lines=["a", "b"])
    lines = [
        "RuntimeError: NCCL error:  unhandled system error",
        "RuntimeError: NCCL error: unhandled system error ",
        "NCCL WARN Bootstrap : no socket interface found",
    ]
    assert dedupe_evidence(facts, lines) == [lines[0], lines[2]]
