from rule_helpers import facts, fire, text_of


def test_system_error_mentions_shm_and_measured_size():
    f = facts("RuntimeError: NCCL error: unhandled system error (run with NCCL_DEBUG=INFO for details)",
              shm_total_bytes=64 * 1024**2)
    finding = fire("NCCL_SYSTEM_ERROR", f)
    assert finding.category == "nccl" and "64 MiB" in finding.fixes[0] and "--ipc=host" in text_of(finding)


def test_generic_nccl_error_defers_to_specific():
    assert fire("NCCL_ERROR", facts("RuntimeError: NCCL error: unhandled system error")) is None
    assert fire("NCCL_ERROR", facts("torch.distributed.DistBackendError: NCCL error in: ProcessGroupNCCL.cpp:1970, internal error")) is not None


def test_library_load():
    assert fire("NCCL_LIBRARY_LOAD_FAILED", facts("Failed to load NCCL library from libnccl.so.2 ."))


def test_hang_needs_a_multi_gpu_context():
    hang = facts("the server hangs after loading", "NCCL version 2.21.5+cuda12.4", driver_version="535.104.05")
    finding = fire("MULTI_GPU_HANG", hang)
    assert finding is not None and "535.104.05" in text_of(finding)
    assert fire("MULTI_GPU_HANG", facts("the server hangs after loading")) is None
    assert fire("MULTI_GPU_HANG", facts("hangs", "NCCL INFO", "CUDA error: an illegal memory access")) is None


def test_remote_error():
    f = facts("RuntimeError: NCCL error: remote process exited or there was a network error", "tensor_parallel_size=8")
    assert fire("NCCL_REMOTE_ERROR", f) is not None
