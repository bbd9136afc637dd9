"""An input whose only error is a wrapper ('See root cause above') is not diagnosed as its own cause."""

from rule_helpers import facts, fire
from vllm_bug.analyzer.analyze import analyze_text
from vllm_bug.analyzer.render_markdown import suggested_title
from vllm_bug.analyzer.render_text import render_text
from vllm_bug.formats.traceback import parse_tracebacks

WRAPPER = "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}"
WRAPPED_LOG = f"""\
INFO 06-01 10:00:00 [api_server.py:1900] vLLM API server version 0.19.0
Traceback (most recent call last):
  File "/usr/bin/vllm", line 8, in <module>
    sys.exit(main())
  File "/usr/lib/python3.12/site-packages/vllm/v1/engine/core_client.py", line 92, in make_async_mp_client
    return AsyncMPClient(*client_args)
{WRAPPER}
"""


def test_a_lone_wrapper_line_says_the_real_cause_is_missing():
    analysis = analyze_text(WRAPPER + "\n")
    assert analysis.facts.root_cause is None
    top = analysis.diagnoses[0]
    assert (top.rule, top.category) == ("ROOT_CAUSE_NOT_CAPTURED", "other")
    assert top.title.startswith(
        "The real cause is missing from the input: only the wrapper error 'RuntimeError: "
        "Engine core initialization failed."
    )
    assert any("full log from the start" in fix for fix in top.fixes)
    assert any("output of all of them" in fix for fix in top.fixes)
    text = render_text(analysis)
    assert "Root-cause" not in text
    assert (
        "  Error:    none found, only the wrapper 'RuntimeError: Engine core initialization failed. See root\n"
        "            cause above. Failed core proc(s): {}'; the error it reports is not in the input\n"
    ) in text


def test_a_wrapper_traceback_after_vllm_start_up_is_not_the_cause():
    analysis = analyze_text(WRAPPED_LOG)
    assert analysis.facts.root_cause is None
    assert [f.rule for f in analysis.diagnoses] == ["ROOT_CAUSE_NOT_CAPTURED"]
    assert suggested_title(analysis).startswith("[Bug]: RuntimeError: Engine core initialization failed.")


def test_a_wrapper_with_its_cause_above_it_is_diagnosed_from_the_cause():
    text = (
        "ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when "
        "initializing the engine.\n" + WRAPPER + "\n"
    )
    analysis = analyze_text(text)
    assert analysis.facts.root_cause.exc_type == "ValueError"
    assert "ROOT_CAUSE_NOT_CAPTURED" not in [f.rule for f in analysis.diagnoses]


def test_a_wrapper_that_quotes_its_cause_is_not_called_empty():
    line = (
        "RuntimeError: Worker failed with error 'CUDA out of memory. Tried to allocate 2.00 GiB.', please check the "
        "stack trace above for the root cause"
    )
    analysis = analyze_text("vllm serve m -tp 2\n" + line + "\n")
    assert analysis.diagnoses[0].category == "cuda_oom"
    assert "ROOT_CAUSE_NOT_CAPTURED" not in [f.rule for f in analysis.diagnoses]
    assert "quoted by a wrapper" in render_text(analysis)


def test_rule_needs_wrappers_only():
    lines = [WRAPPER]
    f = facts(*lines, tracebacks=parse_tracebacks(lines))
    assert fire("ROOT_CAUSE_NOT_CAPTURED", f) is not None
    assert fire("ROOT_CAUSE_NOT_CAPTURED", facts("hello")) is None
