from rule_helpers import facts, fire, root, text_of


def test_stream_capture_error():
    f = facts("RuntimeError: CUDA error: operation not permitted when stream is capturing", vllm_version="0.6.2")
    finding = fire("CUDA_GRAPH_CAPTURE_FAILED", f)
    assert finding.category == "cuda_graph" and "--enforce-eager" in text_of(finding)
    assert "--max-cudagraph-capture-size" not in text_of(finding)


def test_crash_inside_capture_frames():
    f = facts(
        "Traceback (most recent call last):",
        "RuntimeError: Triton Error [CUDA]: invalid device context",
        root_cause=root(
            "RuntimeError",
            "Triton Error [CUDA]: invalid device context",
            (("/x/vllm/worker/model_runner.py", "capture"),),
        ),
    )
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


def test_capture_progress_without_an_error_line_is_not_a_crash():
    # the parser types a bare line 'Error' when it takes it as the root cause; that is not the input saying so
    from vllm_bug.analyzer.analyze import analyze_text

    analysis = analyze_text("Capturing CUDA graph shapes:  40%\n")
    assert "CRASH_DURING_GRAPH_CAPTURE" not in [f.rule for f in analysis.diagnoses]
    assert (
        fire("CRASH_DURING_GRAPH_CAPTURE", facts("Capturing CUDA graph shapes:  40%", "RuntimeError: boom")) is not None
    )


def test_capture_failed_is_a_table_row_with_version_aware_workarounds():
    from vllm_bug.analyzer.rules.cuda_graph import NO_CPU_SYNC_ADVICE

    line = "torch.AcceleratorError: CUDA error: operation not permitted when stream is capturing"
    new = fire("CUDA_GRAPH_CAPTURE_FAILED", facts(line, vllm_version="0.11.1"))
    assert new.evidence == [line] and new.fixes[-1] == NO_CPU_SYNC_ADVICE
    assert any("--max-cudagraph-capture-size" in fix for fix in new.fixes)
