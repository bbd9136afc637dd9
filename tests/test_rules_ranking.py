"""Ranking and version tables: the root cause decides the top category; tables answer only what they know."""

from rule_helpers import facts, root
from vllm_bug.analyzer import knowledge as k
from vllm_bug.analyzer.rules import run_rules


def test_root_cause_beats_a_more_confident_secondary():
    msg = "CUDA error: an illegal memory access was encountered"
    f = facts(
        "vllm serve m --swap-space 4 --gpu-memory-utilization 90",
        "RuntimeError: NCCL error: unhandled system error",
        f"RuntimeError: {msg}",
        vllm_version="0.20.0",
        root_cause=root("RuntimeError", msg),
    )
    ranked = run_rules(f)
    assert ranked[0].rule == "ILLEGAL_MEMORY_ACCESS"
    assert {"REMOVED_FLAG", "NCCL_SYSTEM_ERROR", "GPU_MEMORY_UTILIZATION_OUT_OF_RANGE"} <= {x.rule for x in ranked}


def test_without_root_cause_confidence_orders():
    ranked = run_rules(
        facts(
            "RuntimeError: CUDA error: no kernel image is available for execution on the device",
            "VLLM_DISABLE_CUDA_GRAPH=1",
        )
    )
    assert ranked[0].category == "no_kernel_image" and ranked[-1].rule == "STALE_ENV_VAR"


def test_nothing_recognised_gives_no_findings():
    assert run_rules(facts("INFO Started server process", "INFO Application startup complete.")) == []


def test_torch_pins():
    assert k.torch_required_by_vllm("0.8.5.post1") == "2.6.0"
    assert k.torch_required_by_vllm("0.6.4.post1") == "2.5.1"
    assert k.torch_required_by_vllm("0.10.1.1") == "2.7.1"
    assert k.torch_required_by_vllm("0.33.0") == "2.14.0"
    assert k.torch_required_by_vllm("0.25.0") == "2.11.0"  # mined from the release's wheel metadata
    assert k.torch_required_by_vllm("0.99.0") is None  # newer than the mined releases: no guess
    assert k.torch_required_by_vllm("0.9.0rc1") is None


def test_driver_floors():
    assert k.driver_floor_for_cuda("12.8") == "525.60.13"
    assert k.driver_for_cuda_toolkit("12.4") == "550.54.14"
    assert k.driver_for_cuda_toolkit("12.7") == "560.28.03"  # no 12.7 row: the nearest older toolkit
    assert k.driver_too_old_for_cuda("535.104.05", None, "13.0") is True
    assert k.driver_too_old_for_cuda("580.65.06", None, "13.0") is False
    assert k.driver_too_old_for_cuda(None, "12.2", "12.8") is False  # minor-version compatibility
    assert k.max_cuda_for_driver("550.54.15") == (12, 4)
    assert k.cuda_major_minor("12060") == (12, 6)


def test_removed_names_by_version():
    assert k.removed_in(k.removed_flags(), "--swap-space", "0.17.1") is None
    assert k.removed_in(k.removed_flags(), "--swap-space", "0.18.0") is not None
    assert k.removed_in(k.REMOVED_ENV, "VLLM_DISABLE_CUDA_GRAPH", None) is not None
    assert k.default_gpu_memory_utilization("0.6.4") == 0.90
    assert k.default_gpu_memory_utilization("0.33.0") == 0.92
    assert k.default_gpu_memory_utilization("0.15.0") == 0.90  # mined from the 0.15.0 release


def test_arch_list_coverage():
    assert k.cc_in_arch_list((8, 6), ["sm_80"]) is True
    assert k.cc_in_arch_list((9, 0), ["sm_80", "sm_86"]) is False
    assert k.cc_in_arch_list((12, 0), ["sm_90", "compute_90"]) is True  # PTX JIT
    assert k.cuda_supported_cc_range("13.0")[0] == (7, 5)
