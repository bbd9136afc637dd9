from rule_helpers import facts, fire, gpu, text_of


def test_cpu_torch_on_windows():
    f = facts(
        "RuntimeError: Failed to infer device type",
        "PyTorch version: 2.4.0+cpu",
        "OS: Microsoft Windows 10 Enterprise",
        torch_version="2.4.0+cpu",
    )
    finding = fire("TORCH_CPU_BUILD", f)
    assert finding.category == "cuda_not_available" and "WSL2" in text_of(finding)
    assert fire("TORCH_CPU_BUILD", facts(torch_version="2.4.0+cu121")) is None


def test_failed_to_infer_device_in_kubernetes():
    f = facts("RuntimeError: Failed to infer device type", "kubectl get pod llama")
    finding = fire("FAILED_TO_INFER_DEVICE", f)
    assert "runtimeClassName" in text_of(finding)


def test_vllm_on_unspecified_platform_without_the_error_line():
    """vllm#23661 (the log line as a title) and vllm#18859 (the class named in prose): no 'Failed to infer device
    type' line, but an engine on UnspecifiedPlatform always stops there."""
    for line in (
        "[Bug]: Get the issue No platform detected, vLLM is running on UnspecifiedPlatform when deploy on kubernetes",
        'The logs indicate that the platform is "UnspecifiedPlatform". The critical error is: `RuntimeError',
    ):
        finding = fire("FAILED_TO_INFER_DEVICE", facts(line))
        assert finding.category == "cuda_not_available" and finding.evidence == [line]
        assert "/usr/local/nvidia/lib64" in text_of(finding)
    assert fire("FAILED_TO_INFER_DEVICE", facts("the platform is CudaPlatform")) is None


def test_visible_devices_empty_hides_all():
    finding = fire("CUDA_VISIBLE_DEVICES_HIDES_GPUS", facts(env={"CUDA_VISIBLE_DEVICES": ""}))
    assert finding.confidence >= 0.85


def test_visible_devices_fewer_than_tp():
    f = facts("docker run --env CUDA_VISIBLE_DEVICES=2 vllm/vllm-openai --tensor-parallel-size 2")
    finding = fire("CUDA_VISIBLE_DEVICES_HIDES_GPUS", f)
    assert finding is not None and "lower --tensor-parallel-size to 1" in text_of(finding)
    assert fire("CUDA_VISIBLE_DEVICES_HIDES_GPUS", facts("CUDA_VISIBLE_DEVICES=0,1 vllm serve m -tp 2")) is None


def test_invalid_ordinal_and_nvml_invalid_argument():
    for line in (
        "RuntimeError: CUDA error: invalid device ordinal",
        "pynvml.NVMLError_InvalidArgument: Invalid Argument",
    ):
        assert fire("TOO_FEW_GPUS_FOR_PARALLELISM", facts(line)).category == "cuda_not_available"


def test_no_cuda_gpus_under_wsl():
    f = facts("RuntimeError: No CUDA GPUs are available", "root@DESKTOP-G31254H:/mnt/c/Users/x# nvidia-smi")
    assert "WSL2" in text_of(fire("NO_CUDA_GPUS", f))


def test_device_count_error_other_than_driver_codes():
    assert fire(
        "CUDA_DEVICE_COUNT_FAILED",
        facts("RuntimeError: Unexpected error from cudaGetDeviceCount(). Error 999: unknown error"),
    )
    assert (
        fire(
            "CUDA_DEVICE_COUNT_FAILED",
            facts("RuntimeError: Unexpected error from cudaGetDeviceCount(). Error 804: forward compatibility"),
        )
        is None
    )


def test_forked_cuda():
    assert "spawn" in text_of(
        fire("FORKED_CUDA_REINIT", facts("RuntimeError: Cannot re-initialize CUDA in forked subprocess."))
    )


def test_parallel_sizes_whose_product_overflows_are_unknown():
    # 1e200 x 1e200 is infinite: int() of it raised OverflowError and the analysis failed
    args = "vllm serve m --tensor-parallel-size 1e200 --pipeline-parallel-size 1e200"
    finding = fire("TOO_FEW_GPUS_FOR_PARALLELISM", facts("RuntimeError: CUDA error: invalid device ordinal", args))
    assert finding.title.endswith("than CUDA can see.")
    assert fire("CUDA_VISIBLE_DEVICES_HIDES_GPUS", facts("CUDA_VISIBLE_DEVICES=0 " + args)) is None


def test_device_count_error_code_is_read_after_the_message():
    head = "RuntimeError: Unexpected error from cudaGetDeviceCount(). Did you run some cuda functions before? "
    assert fire("CUDA_DEVICE_COUNT_FAILED", facts(head + "Error 35: CUDA driver version is insufficient")) is None
    assert "(error 999)" in fire("CUDA_DEVICE_COUNT_FAILED", facts(head + "Error 999: unknown error")).title
    assert fire("CUDA_DEVICE_COUNT_FAILED", facts(head)).title == "CUDA failed to count the GPUs."


def test_visible_devices_naming_an_index_the_machine_lacks():
    two = [gpu("NVIDIA A100"), gpu("NVIDIA A100")]
    finding = fire("CUDA_VISIBLE_DEVICES_HIDES_GPUS", facts(env={"CUDA_VISIBLE_DEVICES": "1, 3"}, gpus=two))
    assert finding.title.startswith("CUDA_VISIBLE_DEVICES names GPU  3, but the machine has 2 GPU(s)")
    uuids = facts(env={"CUDA_VISIBLE_DEVICES": "GPU-1,GPU-2"}, gpus=two)
    assert fire("CUDA_VISIBLE_DEVICES_HIDES_GPUS", uuids) is None
