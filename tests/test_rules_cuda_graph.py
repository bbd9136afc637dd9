from rule_helpers import facts, fire, root, text_of


def test_stream_capture_error():
    f = facts("RuntimeError: CUDA error: operation not permitted when stream is capturing", vllm_version="0.6.2")
    finding = fire("CUDA_GRAPH_CAPTURE_FAILED", f)
    assert finding.category == "cuda_graph" and "--enforce-eager" in text_of(finding)
    assert "--max-cudagraph-capture-size" not in text_of(finding)


def test_crash_inside_capture_frames():
    f = facts("Traceback (most recent call last):", "RuntimeError: Triton Error [CUDA]: invalid device context",
              root_cause=root("RuntimeError", "Triton Error [CUDA]: invalid device context",
                              (("/x/vllm/worker/model_runner.py", "capture"),)))
    assert fire("CRASH_DURING_GRAPH_CAPTURE", f) is not None


def test_capture_progress_with_oom_is_not_a_graph_diagnosis():
    f = facts("Capturing CUDA graph shapes:  40%", "torch.OutOfMemoryError: CUDA out of memory.")
    assert fire("CRASH_DURING_GRAPH_CAPTURE", f) is None


def test_finished_capture_is_not_blamed():
    f = facts("Capturing CUDA graph shapes: 100%", "Graph capturing finished in 5 secs", "ValueError: bad request")
    assert fire("CRASH_DURING_GRAPH_CAPTURE", f) is None


def test_mode_unsupported():
    f = facts("ValueError: CUDAGraphMode.FULL is not supported with FlashInfer backend (support: UNIFORM_BATCH)")
    assert fire("CUDAGRAPH_MODE_UNSUPPORTED", f) is not None
