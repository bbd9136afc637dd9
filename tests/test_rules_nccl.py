from rule_helpers import facts, fire, text_of


def test_system_error_mentions_shm_and_measured_size():
    f = facts(
        "RuntimeError: NCCL error: unhandled system error (run with NCCL_DEBUG=INFO for details)",
        shm_total_bytes=64 * 1024**2,
    )
    finding = fire("NCCL_SYSTEM_ERROR", f)
    assert finding.category == "nccl" and "64 MiB" in finding.fixes[0] and "--ipc=host" in text_of(finding)


def test_generic_nccl_error_defers_to_specific():
    assert fire("NCCL_ERROR", facts("RuntimeError: NCCL error: unhandled system error")) is None
    assert (
        fire(
            "NCCL_ERROR",
            facts("torch.distributed.DistBackendError: NCCL error in: ProcessGroupNCCL.cpp:1970, internal error"),
        )
        is not None
    )


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


def test_real_bundle_with_a_missing_socket_interface_names_the_env_setting():
    from pathlib import Path

    from vllm_bug.analyzer.analyze import analyze_loaded
    from vllm_bug.analyzer.load import load_input

    bundle = Path(__file__).resolve().parent / "fixtures" / "bundles" / "h200-2gpu-run-nccl-fail.zst"
    analysis = analyze_loaded(load_input(str(bundle)))
    top = analysis.diagnoses[0]
    assert (top.rule, top.category, top.confidence) == ("NCCL_NO_SOCKET_INTERFACE", "nccl", 0.95)
    assert "NCCL_SOCKET_IFNAME='nosuchif'" in top.title and "does not exist on this host" in top.title
    assert top.fixes[0].startswith("remove NCCL_SOCKET_IFNAME") and "`ip -br addr`" in top.fixes[0]
    assert "Bootstrap : no socket interface found" in top.evidence
    assert not any(f.rule == "NCCL_ERROR" for f in analysis.diagnoses)


def test_no_interface_without_the_env_setting_says_none_is_usable():
    for line in (
        "host:12:12 [0] bootstrap.cc:114 NCCL WARN Bootstrap : no socket interface found",
        "NCCL WARN NET/Socket : No usable listening interface found",
    ):
        finding = fire("NCCL_NO_SOCKET_INTERFACE", facts(line))
        assert finding.title == "NCCL found no usable network interface to set up communication between the ranks."
        assert "IFNAME=" not in finding.title and "--network=host" in text_of(finding)


def test_gloo_interface_from_a_pasted_command_is_quoted():
    f = facts("GLOO_SOCKET_IFNAME=ib9 vllm serve m -tp 2", "RuntimeError: Unable to find address for: ib9")
    finding = fire("NCCL_NO_SOCKET_INTERFACE", f)
    assert finding.title.startswith("gloo found no network interface to use: GLOO_SOCKET_IFNAME='ib9'")
    assert finding.fixes[0].startswith("remove GLOO_SOCKET_IFNAME")


def test_an_unrelated_nccl_error_is_not_an_interface_problem():
    f = facts(
        "torch.distributed.DistBackendError: NCCL error in: ProcessGroupNCCL.cpp:1970, internal error",
        env={"NCCL_SOCKET_IFNAME": "eth0"},
    )
    assert fire("NCCL_NO_SOCKET_INTERFACE", f) is None


def test_a_short_tensor_parallel_flag_places_a_hang_in_a_multi_gpu_run():
    for context in ("vllm serve m -tp 4", "LLM(model, tp=2)", "tp\t8"):
        assert fire("MULTI_GPU_HANG", facts("the server hangs after loading", context)) is not None, context
    for context in ("vllm serve m -tp 1", "http2 upload"):
        assert fire("MULTI_GPU_HANG", facts("the server hangs after loading", context)) is None, context


def test_nccl_cuda_error_is_a_table_row_with_the_nccl_debug_advice():
    from vllm_bug.analyzer.rules.nccl import NCCL_DEBUG_ADVICE

    line = (
        "torch.distributed.DistBackendError: NCCL error in: ProcessGroupNCCL.cpp:1970, unhandled cuda error (run "
        "with NCCL_DEBUG=INFO for details), NCCL version 2.20.5"
    )
    finding = fire("NCCL_CUDA_ERROR", facts(line))
    assert finding.category == "nccl" and finding.fixes[0] == NCCL_DEBUG_ADVICE and finding.evidence == [line]
    assert fire("NCCL_ERROR", facts(line)) is None


def test_no_interface_in_the_lines_after_the_root_exception_counts_as_the_root_cause():
    from rule_helpers import root

    rc = root("torch.distributed.DistBackendError", "NCCL error in: ProcessGroupNCCL.cpp:3135, invalid usage")
    rc.text += "\nLast error:\nBootstrap : no socket interface found"
    f = facts("Bootstrap : no socket interface found", root_cause=rc)
    assert fire("NCCL_NO_SOCKET_INTERFACE", f).confidence == 0.95
    assert fire("NCCL_NO_SOCKET_INTERFACE", facts("Bootstrap : no socket interface found")).confidence == 0.88


def test_an_nccl_result_named_beside_nccl_is_an_nccl_error():
    """NVIDIA/nccl#1591: only the title names the failure ('NCCL internal error' in ncclCommInitRank); the result
    text alone, or beside an NCCL_* variable, is not NCCL's."""
    finding = fire("NCCL_ERROR", facts("NCCL internal error for ncclCommInitRank when using infiniband"))
    assert finding.category == "nccl" and finding.evidence == [
        "NCCL internal error for ncclCommInitRank when using infiniband"
    ]
    assert fire("NCCL_ERROR", facts("RuntimeError: internal error")) is None
    assert fire("NCCL_ERROR", facts("NCCL_IB_DISABLE=1 python x.py", "CUDA error: invalid argument")) is None
    assert fire("NCCL_ERROR", facts("export NCCL_IB_DISABLE=1; RuntimeError: CUDA error: invalid argument")) is None


def test_an_nccl_timeout_result_is_left_to_the_hang_rule():
    f = facts(
        "[E ProcessGroupNCCL.cpp:1537] [PG 0 Rank 0] Timeout at NCCL work: 1, last enqueued NCCL work: 1",
        "vllm serve m --tensor-parallel-size 2",
    )
    assert fire("NCCL_ERROR", f) is None


def test_nccl_refusing_graph_capture_is_a_cuda_version_problem():
    # vllm#3069: torch's pip NCCL built for CUDA 11.0 under vLLM's CUDA graph capture
    warn = (
        "misc/strongstream.cc:53 NCCL WARN NCCL cannot be captured in a graph if either it wasn't built with CUDA "
        "runtime >= 11.3 or if the installed CUDA driver < R465."
    )
    finding = fire("NCCL_GRAPH_CAPTURE_NEEDS_CUDA_11_3", facts(warn))
    assert finding.category == "cuda_version_mismatch" and "R465" in finding.title
    assert fire("NCCL_ERROR", facts("NCCL WARN NCCL cannot be captured in a graph")) is not None  # the cut form
    assert fire("NCCL_GRAPH_CAPTURE_NEEDS_CUDA_11_3", facts("NCCL WARN NCCL cannot be captured in a graph")) is None
