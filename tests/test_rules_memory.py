from rule_helpers import facts, fire, gpu, root, text_of

OOM_NEW = (
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 1.74 GiB. GPU 0 has a total capacity of "
    "23.57 GiB of which 605.88 MiB is free. Process 133288 has 22.97 GiB memory in use."
)
OOM_OLD = (
    "RuntimeError: CUDA out of memory. Tried to allocate 20.00 MiB (GPU 0; 15.78 GiB total capacity; "
    "14.2 GiB already allocated; 3.06 MiB free; 14.5 GiB reserved in total by PyTorch)"
)


def test_generic_oom_reports_numbers_and_context_fixes():
    f = facts(OOM_NEW, root_cause=root("torch.OutOfMemoryError", OOM_NEW.split(": ", 1)[1]))
    finding = fire("CUDA_OOM", f)
    assert finding.category == "cuda_oom" and finding.confidence >= 0.9
    assert "1.74 GiB" in finding.title and "23.57 GiB" in finding.title
    assert finding.evidence == [OOM_NEW]
    assert "--max-model-len" in text_of(finding)
    assert "--swap-space" not in text_of(finding)


def test_old_torch_wording_is_recognised():
    finding = fire("CUDA_OOM", facts(OOM_OLD))
    assert finding is not None and "15.78 GiB GPU" in finding.title


def test_oom_in_weight_loading_suggests_sharding():
    f = facts(
        OOM_NEW,
        "--tensor-parallel-size 2",
        root_cause=root(
            "torch.OutOfMemoryError", "CUDA out of memory.", (("/x/vllm/v1/worker/gpu_model_runner.py", "load_model"),)
        ),
    )
    finding = fire("CUDA_OOM_LOADING_WEIGHTS", f)
    assert finding is not None and "--tensor-parallel-size 4" in text_of(finding)
    assert fire("CUDA_OOM", f) is None  # the phase-specific rule owns it


def test_sampler_warmup_oom_even_when_message_is_cut():
    f = facts(
        "    self.model_runner._dummy_sampler_run(",
        "RuntimeError: CUDA out of",
        root_cause=root(
            "RuntimeError", "CUDA out of", (("/x/vllm/v1/worker/gpu_model_runner.py", "_dummy_sampler_run"),)
        ),
    )
    finding = fire("CUDA_OOM_SAMPLER_WARMUP", f)
    assert finding is not None and "--max-num-seqs" in text_of(finding)


def test_oom_during_graph_capture_uses_version_right_flags():
    f = facts(
        OOM_NEW,
        vllm_version="0.29.1",
        root_cause=root(
            "torch.OutOfMemoryError",
            "CUDA out of memory.",
            (("/x/vllm/v1/worker/gpu_model_runner.py", "capture_model"),),
        ),
    )
    finding = fire("CUDA_OOM_CUDA_GRAPH_CAPTURE", f)
    text = text_of(finding)
    assert "--max-cudagraph-capture-size" in text and "--max-seq-len-to-capture" not in text


def test_graph_capture_advice_on_old_vllm_avoids_new_flags():
    f = facts(OOM_NEW, "Capturing CUDA graph shapes:  40%", vllm_version="0.6.4.post1")
    finding = fire("CUDA_OOM_CUDA_GRAPH_CAPTURE", f)
    assert finding is not None
    assert "--max-cudagraph-capture-size" not in text_of(finding) and "--enforce-eager" in text_of(finding)
    assert "(default 0.90)" in text_of(finding)  # the default of that release


def test_profiling_oom_points_at_context_length():
    f = facts(
        OOM_NEW,
        "--max-model-len 131072",
        root_cause=root(
            "torch.OutOfMemoryError",
            "CUDA out of memory.",
            (("/x/vllm/worker/worker.py", "determine_num_available_blocks"),),
        ),
    )
    finding = fire("CUDA_OOM_PROFILING", f)
    assert finding is not None and "131072" in text_of(finding)


def test_host_oom_is_not_a_gpu_oom():
    f = facts("Out of memory: Killed process 1234 (python) total-vm:1000kB", "Worker proc died unexpectedly")
    assert fire("CUDA_OOM", f) is None


def test_kv_dtype_advice_only_on_gpus_that_have_fp8():
    old = facts(OOM_NEW, gpus=[gpu("Tesla T4", (7, 5))])
    new = facts(OOM_NEW, gpus=[gpu("NVIDIA H100", (9, 0))])
    assert "--kv-cache-dtype fp8" not in text_of(fire("CUDA_OOM", old))
    assert "--kv-cache-dtype fp8" in text_of(fire("CUDA_OOM", new))


def test_free_memory_below_utilization_computes_a_value_that_fits():
    line = (
        "ValueError: Free memory on device (10.5/79.19 GiB) on startup is less than desired GPU memory "
        "utilization (0.9, 71.27 GiB). Decrease GPU memory utilization or reduce GPU memory used by other processes."
    )
    finding = fire("FREE_MEMORY_BELOW_UTILIZATION", facts(line))
    assert finding.category == "cuda_oom" and "0.13" in text_of(finding)
    assert fire("FREE_MEMORY_BELOW_UTILIZATION", facts("gpu_memory_utilization=0.9")) is None


def test_other_processes_only_when_one_gpu_lists_several():
    two = (
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of "
        "79.1 GiB of which 1.0 GiB is free. Process 11 has 40.0 GiB memory in use. Process 22 has 38.0 GiB memory "
        "in use."
    )
    assert fire("OTHER_PROCESSES_HOLD_GPU_MEMORY", facts(two)) is not None
    per_rank = [OOM_NEW, OOM_NEW.replace("GPU 0", "GPU 1").replace("133288", "133267")]
    assert fire("OTHER_PROCESSES_HOLD_GPU_MEMORY", facts(*per_rank)) is None


SCRIPT_OOM = (
    "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 4.00 GiB. GPU 0 has a total capacity of "
    "79.19 GiB of which 2.10 GiB is free. Process 4100 has 60.00 GiB memory in use. Process 4242 has 17.00 "
    "GiB memory in use. Of the allocated memory 51.20 GiB is allocated by PyTorch, and 8.30 GiB is reserved "
    "by PyTorch but unallocated. If reserved but unallocated memory is large try setting "
    "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True to avoid fragmentation."
)


def script_root(message: str = SCRIPT_OOM):
    return root("torch.OutOfMemoryError", message.split(": ", 1)[1], (("/home/me/train.py", "<module>"),))


def test_oom_in_a_plain_torch_script_gets_generic_advice():
    f = facts(SCRIPT_OOM, root_cause=script_root())
    f.tracebacks = [f.root_cause]
    finding = fire("CUDA_OOM", f)
    advice = text_of(finding)
    assert "not vLLM" in finding.title and finding.category == "cuda_oom"
    assert "--max-model-len" not in advice and "--gpu-memory-utilization" not in advice and "--" not in advice
    assert "PYTORCH_CUDA_ALLOC_CONF=expandable_segments:True" in advice and "8.30 GiB" in advice
    assert "pid 4100: 60.00 GiB" in advice and "smaller batch size" in advice
    assert fire("OTHER_PROCESSES_HOLD_GPU_MEMORY", f).fixes[-1].startswith("stop the other processes")
    assert "vLLM" not in fire("OTHER_PROCESSES_HOLD_GPU_MEMORY", f).title


def test_small_reserved_but_unallocated_memory_gets_no_allocator_advice():
    message = SCRIPT_OOM.replace("8.30 GiB is reserved", "20.00 MiB is reserved")
    f = facts(message, root_cause=script_root(message))
    assert "expandable_segments" not in text_of(fire("CUDA_OOM", f))


def test_same_traceback_in_a_vllm_log_keeps_vllm_advice():
    for extra in ({"vllm_version": "0.11.0"}, {"launch_command": "vllm serve Qwen/Qwen3-8B"}):
        f = facts(SCRIPT_OOM, root_cause=script_root(), **extra)
        finding = fire("CUDA_OOM", f)
        assert "not vLLM" not in finding.title and "--max-model-len" in text_of(finding)
    f = facts("INFO 06-01 10:00:00 [core.py:1] vLLM is starting", SCRIPT_OOM, root_cause=script_root())
    assert "--max-model-len" in text_of(fire("CUDA_OOM", f))


def test_a_bare_oom_line_without_frames_is_assumed_to_be_vllm():
    f = facts(OOM_NEW, root_cause=root("torch.OutOfMemoryError", OOM_NEW.split(": ", 1)[1]))
    assert "--max-model-len" in text_of(fire("CUDA_OOM", f))


def test_vllm_not_installed_says_so():
    f = facts(OOM_NEW, root_cause=root("torch.OutOfMemoryError", OOM_NEW.split(": ", 1)[1]), vllm_installed=False)
    finding = fire("CUDA_OOM", f)
    assert "(vLLM is not installed there)" in finding.title and "--max-num-seqs" not in text_of(finding)


def test_oom_numbers_come_from_the_message_line_and_every_process_it_lists():
    eight = " ".join(f"Process {pid} has {pid}.00 GiB memory in use." for pid in range(1, 9))
    f = facts(
        SCRIPT_OOM.replace(
            "Process 4100 has 60.00 GiB memory in use. Process 4242 has 17.00 GiB memory in use.", eight
        ),
        root_cause=script_root(),
    )
    oom = fire("CUDA_OOM", f).details["oom"]
    assert list(oom["processes"]) == [str(pid) for pid in range(1, 9)] and oom["processes"]["8"] == 8 * 1024**3
    assert oom["requested_bytes"] == 4 * 1024**3 and oom["free_bytes"] == 2.10 * 1024**3
    assert oom["reserved_unallocated_bytes"] == 8.30 * 1024**3


def test_old_torch_message_numbers_read_from_their_older_places():
    oom = fire("CUDA_OOM", facts(OOM_OLD)).details["oom"]
    assert oom["total_bytes"] == 15.78 * 1024**3 and oom["free_bytes"] == 3.06 * 1024**2


def test_a_host_oom_line_beside_a_gpu_oom_line_still_counts_the_gpu():
    assert fire("CUDA_OOM", facts("Out of memory: Killed process 1234 (python)", OOM_NEW)) is not None


def test_free_memory_numbers_are_read_past_the_quoted_part_of_a_long_line():
    # The numbers were read from the evidence line, cut at 400 characters: a long log prefix lost them.
    line = (
        "(EngineCore_DP0 pid=1) " + "x" * 400 + " ValueError: Free memory on device (10.5/79.19 GiB) on startup is "
        "less than desired GPU memory utilization (0.9, 71.27 GiB). Decrease GPU memory utilization"
    )
    finding = fire("FREE_MEMORY_BELOW_UTILIZATION", facts(line))
    assert "at most 0.13" in text_of(finding) and finding.details["requested_gib"] == 71.27


def test_other_processes_lists_each_process_of_the_message():
    three = OOM_NEW + " Process 7 has 1.00 GiB memory in use. Process 9 has 512.00 MiB memory in use."
    finding = fire("OTHER_PROCESSES_HOLD_GPU_MEMORY", facts(three))
    assert finding.details["processes"] == ["process 133288: 22.97 GiB", "process 7: 1.00 GiB", "process 9: 0.50 GiB"]


def test_ram_before_out_of_memory_is_the_host_after_it_is_not():
    assert fire("CUDA_OOM", facts("RAM ran out of memory, the kernel killed the worker")) is None
    assert fire("CUDA_OOM", facts("RAM 512 GiB RAM free; CUDA out of memory. Tried to allocate 2.00 GiB")) is None
    assert fire("CUDA_OOM", facts("CUDA out of memory. Tried to allocate 2.00 GiB (host RAM is fine)")) is not None


def test_sampler_warmup_without_an_oom_line_needs_memory_after_the_warmup_call():
    assert (
        fire("CUDA_OOM_SAMPLER_WARMUP", facts("self.model_runner._dummy_sampler_run() ran short of memory")) is not None
    )
    assert (
        fire("CUDA_OOM_SAMPLER_WARMUP", facts("memory is fine before self.model_runner._dummy_sampler_run()")) is None
    )
