from pathlib import Path

import pytest

from rule_helpers import facts, fire, gpu, text_of
from vllm_bug.analyzer.analyze import analyze_text

H200_ERRORS = Path(__file__).resolve().parent / "fixtures" / "device" / "h200" / "cuda-errors"

BOILERPLATE = [
    "CUDA kernel errors might be asynchronously reported at some other API call, so the stacktrace below might be "
    "incorrect.",
    "For debugging consider passing CUDA_LAUNCH_BLOCKING=1",
    "Compile with `TORCH_USE_CUDA_DSA` to enable device-side assertions.",
]


def test_illegal_memory_access_old_and_new_wording():
    for line in (
        "RuntimeError: CUDA error: an illegal memory access was encountered",
        "torch.AcceleratorError: CUDA error: an illegal memory access was encountered",
        "Triton Error [CUDA]: an illegal memory access was encountered",
        "cupy_backends.cuda.api.driver.CUDADriverError: CUDA_ERROR_ILLEGAL_ADDRESS: an illegal memory access was "
        "encountered",
    ):
        finding = fire("ILLEGAL_MEMORY_ACCESS", facts(line, *BOILERPLATE))
        assert finding.category == "illegal_memory_access", line
        assert "CUDA_LAUNCH_BLOCKING=1" in text_of(finding)


def test_attention_backend_advice_follows_version():
    line = "RuntimeError: CUDA error: an illegal memory access was encountered"
    old = text_of(fire("ILLEGAL_MEMORY_ACCESS", facts(line, vllm_version="0.6.2")))
    new = text_of(fire("ILLEGAL_MEMORY_ACCESS", facts(line, vllm_version="0.19.0")))
    assert "VLLM_ATTENTION_BACKEND=" in old and "--attention-backend" not in old
    assert "--attention-backend" in new and "VLLM_ATTENTION_BACKEND" not in new


def test_boilerplate_alone_is_not_a_device_assert():
    assert (
        fire(
            "DEVICE_SIDE_ASSERT",
            facts("RuntimeError: CUDA error: an illegal memory access was encountered", *BOILERPLATE),
        )
        is None
    )


def test_device_assert_with_index_out_of_bounds():
    f = facts(
        "/pytorch/aten/src/ATen/native/cuda/ScatterGatherKernel.cu:144: operator(): block: [10,0,0], thread: "
        '[64,0,0] Assertion `idx_dim >= 0 && idx_dim < index_size && "index out of bounds"` failed.',
        "torch.AcceleratorError: CUDA error: device-side assert triggered",
    )
    finding = fire("DEVICE_SIDE_ASSERT", f)
    assert finding.category == "device_side_assert" and "vocab" in text_of(finding)


def test_invalid_configuration_argument():
    finding = fire("CUDA_INVALID_CONFIGURATION", facts("RuntimeError: CUDA error: invalid configuration argument"))
    assert finding.category == "invalid_config_arg"
    assert fire("CUDA_INVALID_ARGUMENT", facts("RuntimeError: CUDA error: invalid configuration argument")) is None


def test_custom_allreduce_invalid_argument_suggests_disabling_it():
    f = facts("Failed: Cuda error /workspace/csrc/custom_all_reduce.cuh:455 'invalid argument'")
    finding = fire("CUSTOM_ALLREDUCE_INVALID_ARGUMENT", f)
    assert "--disable-custom-all-reduce" in finding.fixes[0]
    assert fire("CUDA_INVALID_ARGUMENT", f) is None


def test_plain_invalid_argument():
    f = facts("RuntimeError: CUDA error: invalid argument", gpus=[gpu("NVIDIA GeForce GTX 1650", (7, 5))])
    finding = fire("CUDA_INVALID_ARGUMENT", f)
    assert finding.category == "invalid_config_arg" and "--dtype half" in text_of(finding)


def test_kernel_fault_is_other_and_defers_to_illegal_access():
    assert (
        fire("CUDA_KERNEL_FAULT", facts("torch.AcceleratorError: CUDA error: misaligned address")).category == "other"
    )
    assert (
        fire(
            "CUDA_KERNEL_FAULT",
            facts("CUDA error: unspecified launch failure", "CUDA error: an illegal memory access was encountered"),
        )
        is None
    )


def test_nan_probabilities_dtype_advice_depends_on_gpu():
    line = "RuntimeError: probability tensor contains either `inf`, `nan` or element < 0"
    assert "bfloat16" in text_of(fire("NAN_IN_SAMPLING_PROBABILITIES", facts(line, gpus=[gpu("A100", (8, 0))])))
    assert "--dtype bfloat16" not in text_of(
        fire("NAN_IN_SAMPLING_PROBABILITIES", facts(line, gpus=[gpu("V100", (7, 0))]))
    )


def test_invalid_address_space_from_cuda13_is_a_memory_fault():
    analysis = analyze_text((H200_ERRORS / "invalid_address_space.log").read_text())
    top = analysis.diagnoses[0]
    assert (top.rule, top.category, top.confidence) == ("ILLEGAL_MEMORY_ACCESS", "illegal_memory_access", 0.95)
    assert "wrong address space" in top.title and "cudaErrorInvalidAddressSpace" in top.title
    assert (
        top.evidence[0] == "torch.AcceleratorError: CUDA error: operation not supported on global/shared address space"
    )
    assert "CUDA_LAUNCH_BLOCKING=1" in text_of(top)
    assert not any(f.rule == "CUDA_KERNEL_FAULT" for f in analysis.diagnoses)


@pytest.mark.parametrize(
    "line",
    [
        "cupy_backends.cuda.api.driver.CUDADriverError: CUDA_ERROR_INVALID_ADDRESS_SPACE",
        "RuntimeError: CUDA error: cudaErrorIllegalAddress",
    ],
)
def test_illegal_address_codes_are_memory_faults(line):
    assert fire("ILLEGAL_MEMORY_ACCESS", facts(line)).category == "illegal_memory_access"


@pytest.mark.parametrize(
    "line, name",
    [
        ("torch.AcceleratorError: CUDA error: misaligned address", "misaligned address"),
        ("RuntimeError: CUDA error: unspecified launch failure", "unspecified launch failure"),
        ("torch.AcceleratorError: CUDA error: invalid program counter", "invalid program counter"),
        ("CUDA_ERROR_INVALID_PC: invalid program counter", "invalid program counter"),
        ("RuntimeError: CUDA error: an illegal instruction was encountered", "illegal instruction"),
        ("torch.AcceleratorError: CUDA error: hardware stack error", "hardware stack error"),
    ],
)
def test_other_kernel_faults_are_named_and_stay_other(line, name):
    finding = fire("CUDA_KERNEL_FAULT", facts(line))
    assert finding.category == "other" and f"({name})" in finding.title
    assert fire("ILLEGAL_MEMORY_ACCESS", facts(line)) is None


def test_a_cpu_illegal_instruction_is_not_named_as_the_kernel_fault():
    f = facts("torch.AcceleratorError: CUDA error: misaligned address", "Illegal instruction (core dumped)")
    finding = fire("CUDA_KERNEL_FAULT", f)
    assert "(misaligned address)" in finding.title
    assert finding.evidence == ["torch.AcceleratorError: CUDA error: misaligned address"]


def test_invalid_configuration_is_a_table_row_with_the_launch_blocking_advice():
    from vllm_bug.analyzer.rules.runtime_errors import LAUNCH_BLOCKING_ADVICE
    from vllm_bug.analyzer.rules.table import rows

    assert rows()["CUDA_INVALID_CONFIGURATION"]["category"] == "invalid_config_arg"
    finding = fire("CUDA_INVALID_CONFIGURATION", facts("RuntimeError: CUDA error: invalid configuration argument"))
    assert finding.fixes[1] == LAUNCH_BLOCKING_ADVICE and finding.confidence == 0.88
