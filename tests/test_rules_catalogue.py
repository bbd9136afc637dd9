"""Rules that read the mined catalogue (analyzer/rules/catalogue.py): a root-cause message of one of its tables that no
hand-written rule explains becomes a finding of the row's category, ranked below the hand-written rules.

Each message below is a catalogue row's own text (its template) with plausible values in its holes, inside the
traceback shape its layer prints."""

from __future__ import annotations

from pathlib import Path

import pytest

from rule_helpers import facts, fire, gpu, root
from vllm_bug.analyzer.analyze import analyze_loaded, analyze_text
from vllm_bug.analyzer.complete import complete_facts
from vllm_bug.analyzer.findings import Finding
from vllm_bug.analyzer.load import load_input
from vllm_bug.analyzer.rules import run_rules, without_explained_catalogue
from vllm_bug.analyzer.rules.catalogue import IN_EXCEPTION, outside_releases, root_messages, version_note
from vllm_bug.analyzer.rules.helpers import DIRECT, ROOT, SECONDARY
from vllm_bug.analyzer.signals import catalogue_row

FIXTURES = Path(__file__).parent / "fixtures"
CUDA_ERROR_LOGS = sorted((FIXTURES / "device" / "h200" / "cuda-errors").glob("*.log"))
BUNDLES = sorted((FIXTURES / "bundles").glob("*.zst"))


def traceback(path: str, exception_line: str, *after: str) -> str:
    return "\n".join(
        [
            "Traceback (most recent call last):",
            f'  File "{path}", line 120, in check',
            "    raise",
            exception_line,
            *after,
        ]
    )


def rules_of(text: str) -> list[tuple[str, str]]:
    return [(f.rule, f.category) for f in analyze_text(text).diagnoses]


# -- one message of each table ---------------------------------------------------------------------------------
# vllm_messages.json, VLLM_CFG_OFFLINE_DATA_PARALLEL_MODE_IS_NOT_DD0774, carried by pydantic as vLLM 0.22 prints it
PYDANTIC_DP = traceback(
    "/usr/local/lib/python3.12/dist-packages/vllm/engine/arg_utils.py",
    "pydantic_core._pydantic_core.ValidationError: 1 validation error for ParallelConfig",
    "  Value error, Offline data parallel mode is not supported/useful for dense models. [type=value_error, "
    "input_value=ArgsKwargs((), {}), input_type=ArgsKwargs]",
)


def test_vllm_config_message_no_rule_knows_is_engine_config_with_its_source():
    found = analyze_text("INFO 06-01 10:00:00 [__init__.py:1] vLLM version 0.22.0\n" + PYDANTIC_DP).diagnoses
    top = found[0]
    assert (top.rule, top.category) == ("CATALOGUE_ENGINE_CONFIG", "engine_config")
    assert "Offline data parallel mode is not supported/useful for dense models" in top.title
    assert top.evidence == [PYDANTIC_DP.splitlines()[-1].strip()]
    source = top.details["catalogue"]
    assert source["repository"] == "vllm-project/vllm" and source["path"] == "vllm/config/parallel.py"
    assert source["releases"] == "v0.14.0 to v0.33.0" and "version_note" not in source
    assert top.confidence < DIRECT and "no hand-written rule" in top.details["confidence_basis"]
    assert any("vllm serve --help" in fix for fix in top.fixes)


def test_vllm_capability_message_is_no_kernel_image():
    # VLLM_CAP_PUNICA_LORA_KERNELS_REQUIRE_COMPUTE_7DE2F5 (vllm/lora/punica.py, 0.4-0.5)
    message = "punica LoRA kernels require compute capability >= 8.0"
    text = traceback("/opt/vllm/vllm/lora/punica.py", f"ImportError: {message}")
    top = fire("CATALOGUE_NO_KERNEL_IMAGE", facts(*text.splitlines(), root_cause=root("ImportError", message)))
    assert top is not None and top.category == "no_kernel_image" and top.confidence == IN_EXCEPTION
    assert top.details["catalogue"]["path"] == "vllm/lora/punica.py"
    assert any("newer GPU generation" in fix for fix in top.fixes)


def test_vllm_kv_cache_message_is_kv_cache_insufficient():
    # VLLM_CFG_MAX_NUM_SEQS_EXCEEDS_AVAILABLE_MAMBA_A3F3FA
    text = traceback(
        "/usr/local/lib/python3.12/dist-packages/vllm/v1/worker/gpu_model_runner.py",
        "ValueError: max_num_seqs (512) exceeds available Mamba cache blocks (300). Each decode sequence requires one "
        "Mamba cache block, so CUDA graph capture cannot proceed. Please lower max_num_seqs to at most 300 or "
        "increase gpu_memory_utilization.",
    )
    assert rules_of(text)[0] == ("CATALOGUE_KV_CACHE_INSUFFICIENT", "kv_cache_insufficient")


def test_triton_mlir_pass_failure_is_triton_compile():
    # TRITON_PASSMANAGER_RUN_FAILED_3734E5 (triton/compiler/compiler.py)
    text = traceback(
        "/usr/local/lib/python3.12/dist-packages/triton/compiler/compiler.py", "RuntimeError: PassManager::run failed"
    )
    top = analyze_text(text).diagnoses[0]
    assert (top.rule, top.category) == ("CATALOGUE_TRITON_COMPILE", "triton_compile")
    assert top.details["catalogue"]["repository"] == "triton-lang/triton"
    assert any("~/.triton/cache" in fix for fix in top.fixes)


def test_triton_libcuda_lookup_failure_is_driver_insufficient():
    # TRITON_LIBCUDA_SO_CANNOT_FOUND_92F77C (triton/backends/nvidia/driver.py)
    text = traceback(
        "/usr/local/lib/python3.12/dist-packages/triton/backends/nvidia/driver.py",
        "AssertionError: libcuda.so cannot found!",
        "Possible files are located at ['/usr/lib/wsl/lib/libcuda.so'].Please create a symlink of libcuda.so to any "
        "of the files.",
    )
    assert rules_of(text)[0] == ("CATALOGUE_DRIVER_INSUFFICIENT", "driver_insufficient")


def test_torch_device_not_visible_is_cuda_not_available():
    # TORCH_CUDA_DEVICE_IS_NOT_VISIBLE_CUDA_VISIBLE_DC0CDB (torch/cuda/__init__.py)
    text = traceback("/x/train.py", "RuntimeError: device 3 is not visible (CUDA_VISIBLE_DEVICES=0,1)")
    top = analyze_text(text).diagnoses[0]
    assert (top.rule, top.category) == ("CATALOGUE_CUDA_NOT_AVAILABLE", "cuda_not_available")
    assert any("nvidia-smi lists the GPU" in fix for fix in top.fixes)


def test_generic_cuda_error_names_the_error_and_claims_no_category():
    # CUDA_ERR_ECC_UNCORRECTABLE through torch's wrapper "CUDA error: {cuda_error}"
    text = traceback(
        "/x/train.py",
        "torch.AcceleratorError: CUDA error: uncorrectable ECC error encountered",
        "CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below might "
        "be incorrect.",
    )
    found = analyze_text(text).diagnoses
    assert [(f.rule, f.category) for f in found] == [("CATALOGUE_CUDA_ERROR", "other")]
    title, fixes = found[0].title, " ".join(found[0].fixes)
    assert "cudaErrorECCUncorrectable" in title and "214" in title and "uncorrectable ECC error" in title
    assert "CUDA_LAUNCH_BLOCKING=1" in fixes and "compute-sanitizer" in fixes and "Xid" in fixes


def test_cuda_error_inside_tritons_wrapper_is_that_error():
    # Triton's wrapper "Triton Error [CUDA]: {cuda_error}" around cudaErrorLaunchOutOfResources
    text = traceback(
        "/usr/local/lib/python3.12/dist-packages/triton/backends/nvidia/driver.py",
        "RuntimeError: Triton Error [CUDA]: uncorrectable ECC error encountered",
    )
    assert rules_of(text)[0] == ("CATALOGUE_CUDA_ERROR", "other")


def test_cuda_error_carried_by_nccl_is_the_root_message_the_catalogue_knows():
    text = (
        "[rank0]: torch.distributed.DistBackendError: NCCL error in: /pytorch/torch/csrc/distributed/c10d/"
        "NCCLUtils.hpp:268, unhandled cuda error (run with NCCL_DEBUG=INFO for details), NCCL version 2.21.5\n"
        "[rank0]: ncclUnhandledCudaError: Call to CUDA function failed.\n[rank0]: Last error:\n"
        "[rank0]: Cuda failure 'uncorrectable ECC error encountered'\n"
    )
    analysis = analyze_text(text)
    assert [seen.row.name for seen in root_messages(analysis.facts)] == ["cudaErrorECCUncorrectable"]
    assert analysis.diagnoses[0].rule == "NCCL_CUDA_ERROR"  # the hand-written rule for NCCL's CUDA failures wins


def test_a_generic_row_whose_text_begins_a_longer_message_is_not_a_second_finding():
    # cudaErrorNotPermitted ('operation not permitted') begins cudaErrorStreamCaptureUnsupported's message
    text = traceback(
        "/x/capture.py", "torch.AcceleratorError: CUDA error: operation not permitted when stream is capturing"
    )
    found = root_messages(analyze_text(text).facts)
    assert [seen.row.name for seen in found] == ["cudaErrorStreamCaptureUnsupported"]


@pytest.mark.parametrize(
    "line",
    [
        "ModuleNotFoundError: amdsmi does not seem to be installed or it can't be imported.",  # torch, generic
        "RuntimeError: timeout",  # NCCL's ncclTimeout string, nothing without NCCL's context
        "RuntimeError: invalid argument",  # ncclInvalidArgument, likewise
    ],
)
def test_rows_without_a_category_of_their_own_and_nccls_result_strings_make_no_finding(line):
    assert not [rule for rule, _ in rules_of(traceback("/x/app.py", line)) if rule.startswith("CATALOGUE_")]


def test_a_message_vllm_only_logs_is_no_catalogue_finding_even_as_the_exception():
    # vllm_warnings.json's row is a logger.warning call: the warnings rules read it, with its role
    line = "RuntimeError: DeepGemm not supported on the current platform."
    assert catalogue_row("VLLM_WARN_DEEPGEMM_NOT_SUPPORTED_ON_THE_CURREN_AD48DD").level == "warning"
    text = traceback("/usr/lib/python3/dist-packages/vllm/model_executor/layers/fused_moe/layer.py", line)
    assert not [rule for rule, _ in rules_of(text) if rule.startswith("CATALOGUE_")]


@pytest.mark.parametrize(
    ("line", "rule"),
    [
        # vllm/config/model.py's message cut after its first sentence, as a cut log line or a title quotes it
        ("NotImplementedError: Pipeline parallelism is not supported for this model.", "PIPELINE_PARALLEL_UNSUPPORTED"),
        # vllm/config: a refusal no hand-written rule knows, without its second sentence (the advice)
        ("ValueError: Adaptive verification requires full CUDA graphs.", "CATALOGUE_ENGINE_CONFIG"),
    ],
)
def test_a_vllm_message_cut_after_its_first_sentence_is_still_known(line, rule):
    text = traceback("/usr/local/lib/python3.12/dist-packages/vllm/config/model.py", line)
    assert rule in [found for found, _ in rules_of(text)]


def test_a_catalogue_line_outside_the_root_cause_is_no_finding():
    text = (
        "WARNING something logged: Offline data parallel mode is not supported/useful for dense models.\n"
        + traceback("/x/app.py", "KeyError: 'weight'")
    )
    assert not [rule for rule, _ in rules_of(text) if rule.startswith("CATALOGUE_")]


# -- precedence ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("line", "rule"),
    [
        ("torch.AcceleratorError: CUDA error: an illegal memory access was encountered", "ILLEGAL_MEMORY_ACCESS"),
        ("RuntimeError: Failed to infer device type", "FAILED_TO_INFER_DEVICE"),
        ("ValueError: Total number of attention heads (40) must be divisible by tensor parallel size (3).", None),
        (
            "NotImplementedError: Pipeline parallelism is not supported for this model. Supported models implement "
            "the `SupportsPP` interface.",
            "PIPELINE_PARALLEL_UNSUPPORTED",
        ),
        ("NotImplementedError: Pipeline parallelism is not supported yet.", "PIPELINE_PARALLEL_UNSUPPORTED"),
        (
            "ValueError: Number of experts in the model must be greater than 0 when expert parallelism is enabled.",
            "EXPERT_PARALLEL_ON_DENSE_MODEL",
        ),
        (
            "ValueError: Unknown quantization method: awq4. Must be one of ['awq', 'gptq', 'squeezellm', 'fp8'].",
            "UNKNOWN_QUANTIZATION_METHOD",
        ),
        (
            "ValueError: Unknown quantization: awq4. Must be one of ['awq', 'squeezellm'].",
            "UNKNOWN_QUANTIZATION_METHOD",
        ),
    ],
)
def test_hand_written_rules_win_over_the_catalogue_row_of_the_same_message(line, rule):
    found = analyze_text(traceback("/usr/lib/python3/site-packages/vllm/config/model.py", line)).diagnoses
    assert found and not found[0].rule.startswith("CATALOGUE_")
    assert rule is None or found[0].rule == rule
    assert not [f for f in found if f.rule.startswith("CATALOGUE_")]


def _finding(rule: str, category: str, confidence: float, evidence: list[str], from_catalogue: bool = False) -> Finding:
    details = {"catalogue": {"row": "X"}} if from_catalogue else {}
    return Finding(rule, category, confidence, "t", evidence=evidence, details=details)


def test_catalogue_findings_give_way_to_a_hand_written_finding_of_their_category_or_line_only():
    f = facts("ValueError: first", root_cause=root("ValueError", "first"))
    ours = _finding("CATALOGUE_ENGINE_CONFIG", "engine_config", IN_EXCEPTION, ["ValueError: first"], True)
    same_category = _finding("HAND", "engine_config", DIRECT, ["other line"])
    same_line = _finding("HAND", "cuda_oom", DIRECT, ["ValueError: first"])
    unrelated_hint = _finding("HAND", "cuda_oom", 0.5, ["other line"])
    advice_only = _finding("HAND", "engine_config", SECONDARY, ["other line"])
    indirect = Finding("HAND", "engine_config", 0.6, "t", evidence=["x"], details={"indirect": "stack frames"})
    assert without_explained_catalogue([ours, same_category], f) == [same_category]
    assert without_explained_catalogue([ours, same_line], f) == [same_line]
    assert without_explained_catalogue([ours, unrelated_hint], f) == [ours, unrelated_hint]
    assert without_explained_catalogue([ours, advice_only, indirect], f) == [ours, advice_only, indirect]


def test_catalogue_confidence_is_below_every_hand_written_level_that_quotes_a_message():
    assert IN_EXCEPTION < DIRECT < ROOT
    found = [x for x in run_rules(analyze_text(PYDANTIC_DP).facts) if x.rule.startswith("CATALOGUE_")]
    assert found and all(x.confidence <= IN_EXCEPTION for x in found)


@pytest.mark.parametrize("path", CUDA_ERROR_LOGS + BUNDLES, ids=lambda p: p.name)
def test_real_fixtures_keep_their_hand_written_diagnosis(path):
    """Every error of these real runs has a hand-written rule: the catalogue adds no finding to them."""
    found = analyze_loaded(load_input(str(path))).diagnoses
    assert not [f.rule for f in found if f.rule.startswith("CATALOGUE_")]


# -- versions outside the row's releases ---------------------------------------------------------------------------
OFFLINE_DP = "VLLM_CFG_OFFLINE_DATA_PARALLEL_MODE_IS_NOT_DD0774"  # v0.14.0 to v0.33.0


@pytest.mark.parametrize(
    ("stated", "outside"),
    [
        ("0.6.3", True),  # older than the first release holding it, newer than the oldest mined
        ("0.13.1", True),
        ("0.14.0", False),
        ("0.22.1rc2", False),
        ("0.33.4", False),  # a patch of the last release mined
        ("0.40.0", False),  # newer than anything mined: unknown
        ("0.1.7", False),  # older than anything mined: unknown
        ("garbage", False),
    ],
)
def test_outside_releases_is_said_only_where_the_mined_releases_tell(stated, outside):
    assert outside_releases(catalogue_row(OFFLINE_DP), stated) is outside


def test_a_row_that_left_the_sources_is_outside_after_its_last_release():
    row = catalogue_row("VLLM_CFG_PIPELINE_PARALLELISM_IS_NOT_SUPPORTE_AA950F")  # v0.2.0 to v0.5.0
    assert not outside_releases(row, "0.5.5") and outside_releases(row, "0.6.0")


def test_version_outside_the_rows_releases_is_said_first_among_the_fixes():
    analysis = analyze_text("vLLM version 0.6.3\n" + PYDANTIC_DP)
    top = analysis.diagnoses[0]
    assert top.rule == "CATALOGUE_ENGINE_CONFIG"
    assert top.fixes[0].startswith("the report states vLLM 0.6.3, but of the releases mined only v0.14.0 to v0.33.0")
    assert top.details["catalogue"]["version_note"] == top.fixes[0]
    assert version_note(analysis.facts, catalogue_row("CUDA_ERR_ECC_UNCORRECTABLE")) is None  # CUDA: not compared


def test_triton_version_is_compared_with_tritons_releases():
    row = catalogue_row("TRITON_PTXAS_FAILED_WITH_ERROR_CODE_95CA12")  # v3.0.0 to v3.1.0
    note = version_note(facts("x", packages={"triton": "3.4.0"}), row)
    assert note is not None and note.startswith("the report states Triton 3.4.0")
    assert version_note(facts("x", packages={"triton": "3.1.0"}), row) is None


def test_a_short_message_counts_only_when_raised_in_its_own_package():
    # TRITON_UNSUPPORTED_TYPE_517C4B 'Unsupported type {}': any library may say that
    line = "TypeError: Unsupported type <class 'dict'>"
    elsewhere = traceback("/usr/lib/python3.12/site-packages/pandas/core/frame.py", line)
    in_triton = traceback("/usr/lib/python3.12/site-packages/triton/language/core.py", line)
    assert not [rule for rule, _ in rules_of(elsewhere) if rule.startswith("CATALOGUE_")]
    assert rules_of(in_triton)[0] == ("CATALOGUE_TRITON_COMPILE", "triton_compile")


def test_reports_say_where_the_message_is_raised():
    from vllm_bug.analyzer.render_markdown import render_markdown
    from vllm_bug.analyzer.render_text import render_text

    analysis = analyze_text(
        traceback(
            "/usr/lib/python3.12/site-packages/triton/compiler/compiler.py", "RuntimeError: PassManager::run failed"
        )
    )
    assert "Source: the message is raised in triton-lang/triton" in render_text(analysis)
    assert "Source: the message is raised in triton-lang/triton" in render_markdown(analysis)
    hand_written = analyze_text(
        traceback("/x/a.py", "RuntimeError: CUDA error: an illegal memory access was encountered")
    )
    assert "Source:" not in render_text(hand_written)


ENGINE_CORE_MEGAMOE = """\
(APIServer pid=1) INFO 06-01 10:00:00 [api_server.py:1900] vLLM API server version 0.22.0
(EngineCore_DP0 pid=413) ERROR 06-01 10:00:57 [core.py:710] EngineCore failed to start.
(EngineCore_DP0 pid=413) ERROR 06-01 10:00:57 [core.py:710] Traceback (most recent call last):
(EngineCore_DP0 pid=413) ERROR 06-01 10:00:57 [core.py:710]   File "/usr/local/lib/python3.12/dist-packages/vllm/v1/\
engine/core.py", line 701, in run_engine_core
(EngineCore_DP0 pid=413) ERROR 06-01 10:00:57 [core.py:710]     engine_core = EngineCoreProc(*args, **kwargs)
(EngineCore_DP0 pid=413) ERROR 06-01 10:00:57 [core.py:710]   File "/usr/local/lib/python3.12/dist-packages/vllm/\
model_executor/layers/fused_moe/deep_gemm_mega_moe.py", line 201, in __init__
(EngineCore_DP0 pid=413) ERROR 06-01 10:00:57 [core.py:710]     raise NotImplementedError("DeepGEMM MegaMoE requires SM100 GPUs.")
(EngineCore_DP0 pid=413) ERROR 06-01 10:00:57 [core.py:710] NotImplementedError: DeepGEMM MegaMoE requires SM100 GPUs.
(APIServer pid=1) Traceback (most recent call last):
(APIServer pid=1)   File "/usr/local/bin/vllm", line 10, in <module>
(APIServer pid=1)     sys.exit(main())
(APIServer pid=1) RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}
"""


def test_engine_core_message_quotes_the_error_line_and_not_the_capability_it_asks_for():
    """Regressions: the evidence was the source line that raised the error (the traceback shows it first), and
    'SM100' in the message was taken as the GPU's own compute capability."""
    top = analyze_text(ENGINE_CORE_MEGAMOE).diagnoses[0]
    assert (top.rule, top.category) == ("CATALOGUE_NO_KERNEL_IMAGE", "no_kernel_image")
    assert top.evidence == ["NotImplementedError: DeepGEMM MegaMoE requires SM100 GPUs."]
    assert "10.0" not in " ".join(top.fixes)
    h100 = facts(*ENGINE_CORE_MEGAMOE.splitlines(), gpus=[gpu("NVIDIA H100 80GB HBM3", (9, 0))])
    h100.root_cause = analyze_text(ENGINE_CORE_MEGAMOE).facts.root_cause
    found = fire("CATALOGUE_NO_KERNEL_IMAGE", complete_facts(h100))
    assert found is not None and "the NVIDIA H100 80GB HBM3 (compute capability 9.0)" in found.fixes[0]


def test_every_category_of_the_catalogue_has_a_meaning_and_advice_for_any_program():
    from vllm_bug.analyzer.rules.catalogue import ADVICE, GENERIC, MEANING
    from vllm_bug.analyzer.signals import catalogue_rows

    assert {row["category"] for row in catalogue_rows().values()} - {GENERIC} <= set(ADVICE) == set(MEANING)
    plain = facts("Traceback (most recent call last):", root_cause=root("RuntimeError", "x", (("/x/train.py", "f"),)))
    served = facts("vllm serve m", root_cause=root("RuntimeError", "x", (("/x/vllm/engine.py", "f"),)))
    for category, advice in ADVICE.items():
        for f in (plain, served):
            fixes = advice(f)
            assert fixes and all(isinstance(fix, str) and len(fix) > 20 for fix in fixes), category
    assert not [fix for fix in ADVICE["cuda_graph"](plain) + ADVICE["triton_compile"](plain) if "vLLM" in fix]


def test_a_short_triton_message_in_a_jupyter_traceback_through_triton():
    # unsloth#2947: 'PassManager::run failed' is too short to name Triton alone; IPython's frames show it was raised
    # inside Triton's compiler
    text = "\n".join(
        [
            "/usr/local/lib/python3.11/dist-packages/triton/compiler/compiler.py in compile(src, target, options)",
            "--> 284         next_module = compile_ir(module, metadata)",
            "",
            "/usr/local/lib/python3.11/dist-packages/triton/backends/nvidia/compiler.py in make_llir(self, src)",
            "--> 341         pm.run(mod)",
            "",
            "RuntimeError: PassManager::run failed",
        ]
    )
    top = analyze_text(text).diagnoses[0]
    assert top.rule == "CATALOGUE_TRITON_COMPILE" and top.category == "triton_compile"
    assert analyze_text("RuntimeError: PassManager::run failed").diagnoses == []
