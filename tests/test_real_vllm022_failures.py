"""Real failures under vLLM 0.22.0 on one H200 (tests/fixtures/bundles/h200-1gpu-vllm022-*.zst), each written by
`vllm-bug run -- <command>` on the lent machine; tests/fixtures/README.md gives every command.

The first half checks what the analyzer already says right on them. PENDING lists what it gets wrong today, each
as a strict xfail with what it should say: a rule author who makes one pass turns the xfail into a failure
("XPASS(strict)"), and then moves the case up into the passing tests.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from vllm_bug.analyzer.analyze import analyze_loaded
from vllm_bug.analyzer.load import load_input
from vllm_bug.schema.bundle import read_bundle

BUNDLES = Path(__file__).parent / "fixtures" / "bundles"
PREFIX = "h200-1gpu-vllm022-"


def bundle_path(what: str) -> Path:
    return BUNDLES / f"{PREFIX}{what}.zst"


def analyze(what: str):
    return analyze_loaded(load_input(str(bundle_path(what))))


def advice(analysis) -> str:
    return "\n".join(line for d in analysis.diagnoses for line in [d.title, *d.fixes])


def test_every_vllm022_bundle_is_named_here():
    on_disk = {p.name.removeprefix(PREFIX).removesuffix(".zst") for p in BUNDLES.glob(f"{PREFIX}*.zst")}
    assert on_disk == set(COMMANDS)


# what each bundle ran (the bundle's command.argv, after redaction); vllm serve's model is the tiny local Llama
COMMANDS = {
    "triton-out-of-resources": ["python3", ".devcarry/s/triton_oor.py"],
    "triton-compile-error": ["python3", ".devcarry/s/triton_compile.py"],
    "removed-flag": ["vllm", "serve", "/tmp/models/tiny-llama", "--disable-log-requests"],
    "unknown-flag": ["vllm", "serve", "/tmp/models/tiny-llama", "--max-model-length", "4096"],
    "dtype-invalid-choice": ["vllm", "serve", "/tmp/models/tiny-llama", "--dtype", "fp8"],
    "missing-llguidance": ["vllm", "serve", "/tmp/models/tiny-llama", "--max-model-len", "4096"],
    "missing-pycountry": ["python3", ".devcarry/s/llm_kv.py", "/tmp/models/tiny-llama"],
    "flash-attn-ext-missing": [
        "vllm",
        "serve",
        "/tmp/models/tiny-llama",
        "--gpu-memory-utilization",
        "0.002",
        "--enforce-eager",
        "--attention-backend",
        "TRITON_ATTN",
    ],
    # the later round, with the FlashAttention 3 library added (tools/gpu/vllm022/stage5.sh)
    "tp-exceeds-gpus": ["vllm", "serve", "/tmp/models/tiny-llama", "--tensor-parallel-size", "2"],
    "tp-heads-indivisible": [
        "vllm",
        "serve",
        "/tmp/models/tiny-llama",
        "--tensor-parallel-size",
        "3",
        "--distributed-executor-backend",
        "mp",
    ],
    "max-model-len-too-long": ["vllm", "serve", "/tmp/models/tiny-llama", "--max-model-len", "4096"],
    "gpu-util-above-one": ["vllm", "serve", "/tmp/models/tiny-llama", "--gpu-memory-utilization", "1.5"],
    "no-gpu-visible": ["vllm", "serve", "/tmp/models/tiny-llama"],
    "missing-flashinfer": ["python3", ".devcarry/s/llm_kv.py", "/tmp/models/tiny-llama"],
    "missing-humming-awq": ["vllm", "serve", "/tmp/models/tiny-llama", "--quantization", "awq"],
    "missing-humming-gptq": ["vllm", "serve", "/tmp/models/tiny-llama-fp8cfg", "--quantization", "gptq"],
}


@pytest.mark.parametrize("what", sorted(COMMANDS))
def test_each_bundle_records_its_command_and_the_machine(what):
    payload = read_bundle(bundle_path(what))["payload"]
    assert payload["command"]["argv"] == COMMANDS[what]
    assert payload["command"]["exit_code"] != 0
    assert [g["name"] for g in payload["gpus"]] == ["NVIDIA H200"]
    assert payload["vllm"]["version"] == "0.22.0"
    assert payload["torch"]["version"] == "2.11.0+cu130"


# -- what the analyzer gets right today ----------------------------------------------------------------------


def test_a_triton_tile_over_the_shared_memory_limit_names_both_sizes():
    analysis = analyze("triton-out-of-resources")
    top = analysis.diagnoses[0]
    assert analysis.category == "triton_compile" and top.rule == "TRITON_OUT_OF_SHARED_MEMORY"
    # BM=BN=BK=128 in fp16 over 5 stages: 5 * (128*128 + 128*128) * 2 bytes = 320 KiB; the H200 allows 227 KiB
    assert "(320 KiB needed, 227 KiB available) on the NVIDIA H200" in top.title


def test_a_triton_compile_error_is_triton_compile_with_the_compilers_message():
    analysis = analyze("triton-compile-error")
    assert analysis.category == "triton_compile"
    assert analysis.facts.root_cause.message == "arange's range must be a power of 2"


def no_vllm_advice(analysis) -> bool:
    words = ("vLLM", "--attention-backend", "--enforce-eager", "-O0", "VLLM_")
    return not any(word in advice(analysis) for word in words)


def test_a_plain_triton_script_gets_tile_advice_and_nothing_of_vllm_or_small_gpus():
    # vLLM 0.22.0 is installed, but the command and the traceback never touch it
    analysis = analyze("triton-out-of-resources")
    assert analysis.facts.root_cause.exc_type == "triton.runtime.errors.OutOfResources"  # its name lacks 'Error'
    assert no_vllm_advice(analysis)
    assert "T4" not in advice(analysis) and "consumer" not in advice(analysis)
    assert "num_stages" in analysis.diagnoses[0].fixes[0]


def test_a_triton_kernel_that_does_not_compile_is_not_blamed_on_torch_compile():
    analysis = analyze("triton-compile-error")
    top = analysis.diagnoses[0]
    assert top.rule == "TRITON_KERNEL_COMPILE_FAILED" and analysis.category == "triton_compile"
    assert top.title == "Triton could not compile a kernel: arange's range must be a power of 2."
    assert "torch.compile" not in top.title and no_vllm_advice(analysis)
    assert "triton.next_power_of_2" in advice(analysis)


def test_argparse_refusing_an_unknown_flag_is_engine_config_naming_the_flag_and_version():
    analysis = analyze("unknown-flag")
    top = analysis.diagnoses[0]
    assert analysis.category == "engine_config" and top.rule == "UNRECOGNIZED_ARGUMENT"
    assert top.title == "vLLM 0.22.0 does not accept --max-model-length."


def test_argparse_refusing_a_removed_flag_names_the_release_history_not_an_upgrade():
    analysis = analyze("removed-flag")
    top = analysis.diagnoses[0]
    assert analysis.category == "engine_config" and top.rule == "REMOVED_FLAG"
    # analyzer/data/catalogue/vllm_flags.json: deprecated from 0.11, absent from 0.17 on
    assert top.title == (
        "--disable-log-requests is not an option of vLLM 0.22.0 any more: vLLM removed it in 0.17 "
        "(deprecated since 0.11)."
    )
    assert "--enable-log-requests" in top.fixes[0] and "newer vLLM" not in advice(analysis)


def test_an_invalid_dtype_choice_lists_the_accepted_ones():
    analysis = analyze("dtype-invalid-choice")
    top = analysis.diagnoses[0]
    assert analysis.category == "engine_config" and top.rule == "INVALID_ARGUMENT_VALUE"
    assert top.title == "--dtype does not accept 'fp8'."
    assert top.fixes == ["--dtype takes one of: auto, bfloat16, float, float16, float32, half"]


def test_the_missing_llguidance_of_a_real_install_is_the_headline_with_its_install_command():
    analysis = analyze("missing-llguidance")
    top = analysis.diagnoses[0]
    assert analysis.category == "other" and top.rule == "MISSING_REQUIREMENT"
    assert top.title == (
        "Python cannot import 'llguidance' because llguidance is not installed, though vllm 0.22.0 "
        "requires llguidance<1.8.0,>=1.7.0."
    )
    assert top.fixes[0] == "uv pip install --python /opt/torch/.venv/bin/python3 'llguidance<1.8.0,>=1.7.0'"


def test_more_gpus_than_the_node_has_is_engine_config_with_both_counts():
    analysis = analyze("tp-exceeds-gpus")
    top = analysis.diagnoses[0]
    assert analysis.category == "engine_config" and top.rule == "WORLD_SIZE_ABOVE_GPUS"
    assert top.details["world_size"] == 2 and top.details["gpus_seen"] == 1


def test_heads_not_divisible_by_tensor_parallel_is_engine_config_naming_both():
    analysis = analyze("tp-heads-indivisible")
    top = analysis.diagnoses[0]
    assert analysis.category == "engine_config" and top.rule == "ATTENTION_HEADS_NOT_DIVISIBLE"
    assert top.title == "The model's 8 attention heads cannot be split evenly over --tensor-parallel-size 3."


def test_max_model_len_above_the_models_is_engine_config_with_both_lengths():
    analysis = analyze("max-model-len-too-long")
    top = analysis.diagnoses[0]
    assert analysis.category == "engine_config" and top.rule == "MAX_MODEL_LEN_ABOVE_DERIVED"
    assert "(4096 > 2048)" in top.title


def test_a_gpu_memory_utilization_above_one_is_engine_config():
    analysis = analyze("gpu-util-above-one")
    top = analysis.diagnoses[0]
    assert analysis.category == "engine_config" and top.rule == "GPU_MEMORY_UTILIZATION_OUT_OF_RANGE"
    assert top.title.startswith("--gpu-memory-utilization 1.5 is outside (0, 1]")


def test_cuda_visible_devices_past_the_gpu_count_is_cuda_not_available():
    analysis = analyze("no-gpu-visible")
    top = analysis.diagnoses[0]
    assert analysis.category == "cuda_not_available" and top.rule == "CUDA_VISIBLE_DEVICES_NAMES_NO_GPU"
    assert "index 1" in top.title and "NVIDIA H200" in top.title


@pytest.mark.parametrize(
    ("what", "module", "distribution"),
    [
        ("missing-flashinfer", "flashinfer", "flashinfer"),
        ("missing-humming-awq", "humming", "humming-kernels"),
        ("missing-humming-gptq", "humming", "humming-kernels"),
    ],
)
def test_a_kernel_package_left_out_of_the_install_is_the_headline(what, module, distribution):
    analysis = analyze(what)
    top = analysis.diagnoses[0]
    assert analysis.category == "other" and top.rule == "MISSING_REQUIREMENT"
    assert top.title.startswith(f"Python cannot import '{module}' because {distribution}")


def test_an_optional_module_a_library_says_is_missing_is_named_with_its_install_command():
    # pydantic-extra-types raises RuntimeError, not ModuleNotFoundError; this bundle's requirement check predates
    # following extras, so the library's own words are the evidence
    analysis = analyze("missing-pycountry")
    top = analysis.diagnoses[0]
    assert analysis.category == "other" and top.rule == "MODULE_REQUIRED_NOT_INSTALLED"
    assert top.title == "pydantic-extra-types 2.11.1 needs 'pycountry', which is not installed."
    assert top.fixes[0] == "uv pip install --python /opt/torch/.venv/bin/python3 pycountry"


def test_flash_attention_extensions_missing_from_the_install_say_reinstall_the_wheel():
    analysis = analyze("flash-attn-ext-missing")
    top = analysis.diagnoses[0]
    assert analysis.category == "other" and top.rule == "VLLM_FLASH_ATTN_EXTENSIONS_MISSING"
    assert "_vllm_fa2_C" in top.title
    assert top.fixes[0].endswith(
        "uv pip install --python /opt/torch/.venv/bin/python3 --reinstall --no-deps vllm==0.22.0"
    )
    # the run asked for TRITON_ATTN: the finding says why that did not help
    assert top.fixes[1].startswith("--attention-backend does not avoid it")


@pytest.mark.parametrize(
    ("what", "conflict"),
    [
        ("missing-llguidance", "numba"),
        ("missing-flashinfer", "apache-tvm-ffi"),
        ("missing-humming-awq", "apache-tvm-ffi"),
        ("missing-humming-gptq", "apache-tvm-ffi"),
    ],
)
def test_a_version_conflict_is_not_blamed_for_a_module_that_is_not_installed(what, conflict):
    analysis = analyze(what)
    # the conflict is real (the requirement check lists it), but the error never reaches that package
    assert any(p["name"] == conflict and p["problem"] == "conflict" for p in analysis.facts.requirement_problems)
    assert "REQUIREMENT_CONFLICT" not in [d.rule for d in analysis.diagnoses]
    assert analysis.diagnoses[0].rule == "MISSING_REQUIREMENT"


# -- pending: what the analyzer gets wrong today --------------------------------------------------------------


@dataclass(frozen=True)
class Pending:
    what: str  # the bundle
    category: str  # the top category it should get
    should: str  # what the finding should say
    says_it: Callable[[object], bool]  # true once the analysis says it


PENDING: list[Pending] = []


@pytest.mark.parametrize(
    "case",
    [pytest.param(c, id=c.what, marks=pytest.mark.xfail(strict=True, reason=c.should)) for c in PENDING],
)
def test_pending_real_vllm022_failures(case):
    analysis = analyze(case.what)
    assert analysis.category == case.category
    assert case.says_it(analysis), case.should
