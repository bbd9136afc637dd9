"""vLLM's own WARNING/INFO lines as evidence (analyzer/rules/warnings.py over analyzer/data/catalogue/vllm_warnings.json,
mined by tools/mine_catalogue.py): a line supports a finding of the category it bears on, and a warning that explains
a later failure is the inferred cause, at lower confidence, when no recognised error says more.

The log lines are vLLM's own messages as its logger prints them (the format of vllm/logger.py).
"""

from __future__ import annotations

import json
from pathlib import Path

from rule_helpers import facts, fire
from vllm_bug.analyzer.analyze import analyze_text
from vllm_bug.analyzer.rules import is_indirect
from vllm_bug.analyzer.rules.indirect import PROGRESS_CONFIDENCE
from vllm_bug.analyzer.rules.warnings import CAUSE_CONFIDENCE, CAUSE_WITH_ERROR_LINE, CAUSES, WARNED, warning_rows

ROOT = Path(__file__).resolve().parents[1]
TABLE = json.loads((ROOT / "analyzer" / "data" / "catalogue" / "vllm_warnings.json").read_text("utf-8"))["rows"]

OPS_MESSAGE = "Failed to import from vllm._C with OSError('vllm/_C.abi3.so: cannot read file data')"
OPS_NOT_LOADED = "WARNING 05-09 22:20:41 [_custom_ops.py:21] " + OPS_MESSAGE
LONG_MAX_MODEL_LEN = (
    "User-specified max_model_len (65536) is greater than the derived "
    "max_model_len (max_position_embeddings=32768 or model_max_length=None in model's config.json). This may lead "
    "to incorrect model outputs or CUDA errors. Make sure the value is correct and within the model context size."
)
PROFILING_OFF = (
    "CUDA graph memory profiling is disabled "
    "(VLLM_MEMORY_PROFILER_ESTIMATE_CUDAGRAPHS=0). Without it, CUDA graph memory is not accounted for during KV cache "
    "allocation, which may require lowering --gpu-memory-utilization to avoid OOM."
)
LOGGED = "WARNING 03-02 10:01:12 [config.py:3590] "  # vLLM's log prefix, which the analyzer leaves out of evidence
VOLTA_INFO = "INFO 06-01 08:00:00 [selector.py:155] Cannot use FlashAttention-2 backend for Volta and Turing GPUs."
ENGINE_FAILED = "RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}"


def findings(*lines: str):
    return analyze_text("\n".join(lines) + "\n").diagnoses


def by_rule(found, key: str):
    return next((f for f in found if f.rule == key), None)


# -- the table -------------------------------------------------------------------------------------------------
def test_every_row_has_a_topic_a_role_and_a_level_and_info_lines_only_support():
    assert TABLE
    for row_id, row in TABLE.items():
        assert row["level"] in ("warning", "info") and row["role"] in ("explains", "context"), row_id
        assert row["level"] == "warning" or row["role"] == "context" or row["topic"] == "no_gpu_platform", row_id
        assert row_id.startswith("VLLM_WARN_" if row["level"] == "warning" else "VLLM_INFO_"), row_id


def test_each_explaining_topic_has_rows_of_its_rules_category():
    for topic, (_, category, _) in CAUSES.items():
        rows = [row for row in TABLE.values() if row["topic"] == topic]
        assert rows, topic
        assert {row["category"] for row in rows} == {category}, topic
        assert any(row["role"] == "explains" for row in rows), topic


def test_the_rules_read_every_row():
    assert set(warning_rows()) == set(TABLE)


# -- the inferred cause ------------------------------------------------------------------------------------------
def test_compiled_ops_that_did_not_load_explain_an_engine_that_failed_to_start():
    found = findings(OPS_NOT_LOADED, ENGINE_FAILED)
    top = found[0]
    assert (top.rule, top.category) == ("WARNED_COMPILED_OPS_NOT_LOADED", "cuda_version_mismatch")
    assert is_indirect(top) and top.details["indirect"] == "vLLM's log"
    assert "inferred from vLLM's own log" in top.title and top.confidence < 0.5
    assert top.evidence == [WARNED + OPS_MESSAGE]


def test_without_any_error_line_the_warning_is_more_confident_but_below_frames_and_progress_lines():
    without_error_line = fire("WARNED_COMPILED_OPS_NOT_LOADED", facts(OPS_NOT_LOADED, "EngineCore failed to start."))
    assert without_error_line is not None and without_error_line.confidence == CAUSE_CONFIDENCE
    assert CAUSE_WITH_ERROR_LINE < CAUSE_CONFIDENCE < PROGRESS_CONFIDENCE


def test_a_warning_alone_is_no_failure():
    assert (
        by_rule(
            findings(OPS_NOT_LOADED, "INFO 05-09 22:21:02 [api_server.py:1] Starting vLLM API server"),
            "WARNED_COMPILED_OPS_NOT_LOADED",
        )
        is None
    )


def test_an_info_line_supports_but_never_explains():
    found = findings(VOLTA_INFO, ENGINE_FAILED)
    assert not any(f.rule.startswith("WARNED_") for f in found)


def test_a_long_max_model_len_explains_a_cuda_failure_of_no_category_and_leads():
    found = findings(LOGGED + LONG_MAX_MODEL_LEN, "RuntimeError: CUDA error: unspecified launch failure")
    assert found[0].rule == "WARNED_LONG_MAX_MODEL_LEN" and found[0].category == "device_side_assert"
    assert any("--max-model-len" in fix for fix in found[0].fixes)
    assert found[1].category == "other"  # the generic error's own finding follows


def test_vllm_accepting_a_long_max_model_len_is_not_a_refusal():
    """Regression: MAX_MODEL_LEN_ABOVE_DERIVED read vLLM's warning (VLLM_ALLOW_LONG_MAX_MODEL_LEN=1, the length
    accepted) as its refusal and said the engine arguments were rejected."""
    found = findings(LOGGED + LONG_MAX_MODEL_LEN, "RuntimeError: CUDA error: device-side assert triggered")
    assert by_rule(found, "MAX_MODEL_LEN_ABOVE_DERIVED") is None
    refused = findings(
        "ValueError: User-specified max_model_len (65536) is greater than the derived max_model_len "
        "(max_position_embeddings=32768 or model_max_length=None in model's config.json). This may lead to incorrect "
        "model outputs or CUDA errors. To allow overriding this maximum, set the env var VLLM_ALLOW_LONG_MAX_MODEL_LEN=1"
    )
    assert refused[0].rule == "MAX_MODEL_LEN_ABOVE_DERIVED"


# -- supporting evidence -----------------------------------------------------------------------------------------
def test_a_finding_on_the_error_line_quotes_the_warning_of_its_category():
    found = findings(LOGGED + LONG_MAX_MODEL_LEN, "RuntimeError: CUDA error: device-side assert triggered")
    top = found[0]
    assert top.category == "device_side_assert" and not is_indirect(top)
    assert WARNED + LONG_MAX_MODEL_LEN in top.evidence
    assert by_rule(found, "WARNED_LONG_MAX_MODEL_LEN") is None  # the direct finding says it already


def test_an_out_of_memory_error_quotes_the_memory_budget_warning():
    top = findings(
        LOGGED + PROFILING_OFF,
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of "
        "79.19 GiB of which 1.06 GiB is free.",
    )[0]
    assert top.category == "cuda_oom" and any(PROFILING_OFF in line for line in top.evidence)


def test_a_warning_of_another_category_is_not_quoted():
    top = findings(OPS_NOT_LOADED, "RuntimeError: CUDA error: device-side assert triggered")[0]
    assert top.category == "device_side_assert"
    assert not any(line.startswith(WARNED) for line in top.evidence)


def test_a_warned_out_of_memory_risk_explains_an_engine_that_failed_without_its_error():
    warning = (
        "WARNING 02-11 09:12:40 [arg_utils.py:1102] The model has a long context length (131072). This may causeOOM "
        "during the initial memory profiling phase, or result in low performance due to small KV cache size. "
        "Consider setting --max-model-len to a smaller value."
    )
    top = findings(warning, ENGINE_FAILED)[0]
    assert (top.rule, top.category) == ("WARNED_OOM_RISK", "cuda_oom") and is_indirect(top)
    assert "might run out of GPU memory" in top.title


def test_vllm_logging_that_it_found_no_platform_explains_a_failure_no_rule_knows():
    info = "INFO 03-01 10:00:00 [__init__.py:260] No platform detected, vLLM is running on UnspecifiedPlatform"
    top = findings(info, "AttributeError: 'NoneType' object has no attribute 'startswith'")[0]
    assert (top.rule, top.category) == ("WARNED_NO_GPU_PLATFORM", "cuda_not_available")
    assert top.evidence == ["vLLM logged earlier: No platform detected, vLLM is running on UnspecifiedPlatform"]
    direct = findings(info, "RuntimeError: Failed to infer device type")
    assert direct[0].category == "cuda_not_available" and not is_indirect(direct[0])
    assert "vLLM logged earlier: No platform detected, vLLM is running on UnspecifiedPlatform" in direct[0].evidence


def test_only_a_first_finding_of_no_category_gives_way_to_the_warning():
    from vllm_bug.analyzer.findings import Finding
    from vllm_bug.analyzer.rules.warnings import ahead_of_generic

    generic = Finding("CUDA_KERNEL_FAULT", "other", 0.95, "a kernel faulted")
    oom = Finding("CUDA_OOM", "cuda_oom", 0.95, "out of memory")
    warned = Finding("WARNED_LONG_MAX_MODEL_LEN", "device_side_assert", 0.45, "inferred")
    assert ahead_of_generic([generic, warned]) == [warned, generic]
    assert ahead_of_generic([oom, warned]) == [oom, warned]
    assert ahead_of_generic([generic]) == [generic] and ahead_of_generic([]) == []


def test_the_rows_match_vllm_0_22s_own_log_in_a_real_bundle():
    """tests/fixtures/bundles/h200-1gpu-vllm022-missing-flashinfer.zst: `vllm serve --enforce-eager` on an H200.
    vLLM logged that eager mode turned CUDA graphs and Inductor off; those lines are context for categories no
    finding names, so the finding on the missing requirement stays first and unchanged."""
    from vllm_bug.analyzer.analyze import analyze_loaded
    from vllm_bug.analyzer.load import load_input
    from vllm_bug.analyzer.rules.warnings import warnings_seen

    analysis = analyze_loaded(load_input(str(ROOT / "tests/fixtures/bundles/h200-1gpu-vllm022-missing-flashinfer.zst")))
    seen = {(w.topic, w.role) for w in warnings_seen(analysis.facts)}
    assert {("cuda_graphs_off", "context"), ("compilation_off", "context")} <= seen
    assert analysis.diagnoses[0].rule == "MISSING_REQUIREMENT"
    assert not any(line.startswith(WARNED) for line in analysis.diagnoses[0].evidence)
