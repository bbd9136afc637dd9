from rule_helpers import facts, fire, gpu, text_of

INSUFF = "RuntimeError: CUDA driver version is insufficient for CUDA runtime version"
E804 = (
    "RuntimeError: Unexpected error from cudaGetDeviceCount(). Did you run some cuda functions before calling "
    "NumCudaDevices() that might have already set an error? "
    "Error 804: forward compatibility was attempted on non supported HW"
)
E803 = E804.replace(
    "Error 804: forward compatibility was attempted on non supported HW",
    "Error 803: system has unsupported display driver / cuda driver combination",
)


def test_insufficient_driver_with_old_driver_says_upgrade():
    f = facts(INSUFF, driver_version="535.104.05", driver_cuda="12.2", torch_cuda="13.0")
    finding = fire("CUDA_DRIVER_INSUFFICIENT", f)
    assert finding.category == "driver_insufficient"
    assert ">= 580.65.06" in text_of(finding)


def test_insufficient_message_with_new_driver_does_not_say_upgrade():
    f = facts(INSUFF, driver_version="570.86.10", driver_cuda="12.8", torch_cuda="12.4")
    finding = fire("CUDA_DRIVER_INSUFFICIENT", f)
    assert "upgrade" not in text_of(finding).lower() and "install an NVIDIA driver" not in text_of(finding)
    assert "libcuda" in text_of(finding)


def test_804_on_consumer_card():
    f = facts(E804, gpus=[gpu("NVIDIA GeForce RTX 4090", (8, 9))], driver_cuda="12.2")
    finding = fire("CUDA_FORWARD_COMPAT_UNSUPPORTED", f)
    assert finding.confidence >= 0.85 and "consumer card" in text_of(finding) and "12.2" in text_of(finding)


def test_803_with_new_enough_driver_blames_the_library_not_the_driver():
    f = facts(E803, "docker run ... vllm:0.7.2-pytorch2.5.1-cuda12.4", driver_version="560.35.03", driver_cuda="12.6")
    finding = fire("CUDA_DRIVER_COMBINATION_UNSUPPORTED", f)
    assert "new enough" in finding.title
    assert "install an NVIDIA driver" not in text_of(finding)


def test_nvml_mismatch_and_not_loaded():
    assert fire("NVML_DRIVER_LIBRARY_MISMATCH", facts("Failed to initialize NVML: Driver/library version mismatch"))
    nl = (
        "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
        "Make sure that the latest NVIDIA driver is installed and running."
    )
    assert fire("NVIDIA_DRIVER_NOT_LOADED", facts(nl)).category == "driver_insufficient"
    assert fire("NVIDIA_DRIVER_NOT_LOADED", facts("Failed to initialize NVML: Driver/library version mismatch")) is None


def test_fabric_manager():
    f = facts("RuntimeError: Unexpected error from cudaGetDeviceCount(). Error 802: system not yet initialized")
    assert "Fabric Manager" in fire("CUDA_SYSTEM_NOT_READY", f).title


def test_cross_stack_driver_older_than_torch_cuda():
    old = facts(driver_version="535.161.07", driver_cuda="12.2", torch_cuda="13.0")
    finding = fire("DRIVER_OLDER_THAN_TORCH_CUDA", old)
    assert finding is not None and finding.confidence >= 0.6 and "580.65.06" in finding.title
    fine = facts(driver_version="580.82.07", driver_cuda="13.0", torch_cuda="12.8")
    assert fire("DRIVER_OLDER_THAN_TORCH_CUDA", fine) is None
    minor = fire(
        "DRIVER_OLDER_THAN_TORCH_CUDA", facts(driver_version="550.54.15", driver_cuda="12.4", torch_cuda="12.8")
    )
    assert minor is not None and minor.confidence < 0.5


def test_driver_version_alone_decides_when_header_missing():
    assert fire("DRIVER_OLDER_THAN_TORCH_CUDA", facts(driver_version="470.57.02", torch_cuda="12.1")) is not None
    assert fire("DRIVER_OLDER_THAN_TORCH_CUDA", facts(driver_version="525.60.13", torch_cuda="12.4")) is None


def test_known_bad_driver_from_prose():
    assert fire("KNOWN_BAD_DRIVER", facts("英伟达最新驱动555.85，vllm运行报错")) is not None
    assert fire("KNOWN_BAD_DRIVER", facts("driver 555.42.02 works")) is None


def test_runtime_cuda_from_an_image_tag_when_torch_is_unknown():
    # the wheel tag (cu130) comes first on the line; the CUDA version is read from the 'cuda13.0' after it
    f = facts(INSUFF, "image: vllm-cu130 built on cuda13.0", driver_version="535.104.05", driver_cuda="12.2")
    assert "(CUDA 13.0; driver 535.104.05" in fire("CUDA_DRIVER_INSUFFICIENT", f).title
    bare_tag = facts(INSUFF, "image: vllm-cu130", driver_version="535.104.05", driver_cuda="12.2")
    assert fire("CUDA_DRIVER_INSUFFICIENT", bare_tag).title.endswith("needs.")


def test_803_in_a_container_blames_the_injected_library():
    f = facts(E803, "docker run --gpus all img", driver_version="470.57.02", driver_cuda="11.4", torch_cuda="12.4")
    finding = fire("CUDA_DRIVER_COMBINATION_UNSUPPORTED", f)
    assert finding.title.startswith("The user-space driver library (libcuda)")
    assert finding.title.endswith("(error 803).")


def test_known_bad_driver_from_the_driver_fact_and_not_from_unrelated_numbers():
    f = facts("| NVIDIA-SMI 555.85   Driver Version: 555.85   CUDA Version: 12.5 |", driver_version="555.85")
    finding = fire("KNOWN_BAD_DRIVER", f)
    assert finding.evidence == ["| NVIDIA-SMI 555.85   Driver Version: 555.85   CUDA Version: 12.5 |"]
    assert fire("KNOWN_BAD_DRIVER", facts("downloaded 555.85 MB")) is None
    assert fire("KNOWN_BAD_DRIVER", facts("driver 555.851 installed")) is None


def test_every_known_bad_driver_is_recognised_by_its_signal():
    from vllm_bug.analyzer.rules.driver import KNOWN_BAD_DRIVERS

    for version in KNOWN_BAD_DRIVERS:
        assert fire("KNOWN_BAD_DRIVER", facts(f"updated the NVIDIA driver to {version} yesterday")) is not None


def test_undefined_cuda_driver_function_is_an_old_driver_not_a_torch_mismatch():
    """vllm#11623: vllm/_C.abi3.so needs cuTensorMapEncodeTiled (driver API, CUDA 12.0) on a driver that supports
    CUDA 11.4; the torch-mismatch rules must leave it, and a mangled C++ symbol stays theirs."""
    line = (
        "WARNING 12-30 17:06:52 _custom_ops.py:19] Failed to import from vllm._C with ImportError('/usr/local/app/"
        "site-packages/vllm/_C.abi3.so: undefined symbol: cuTensorMapEncodeTiled')"
    )
    torch_warning = (
        "UserWarning: CUDA initialization: The NVIDIA driver on your system is too old (found version 11040). "
        "Please update your GPU driver"
    )
    f = facts(line, torch_warning, torch_version="2.4.0+cu121", torch_cuda="12.1")
    finding = fire("DRIVER_LACKS_API_FUNCTION", f)
    assert finding.category == "driver_insufficient" and "cuTensorMapEncodeTiled" in finding.title
    assert "530.30.02" in text_of(finding) and "CUDA 11.4 or older" in text_of(finding)
    assert fire("VLLM_C_UNDEFINED_SYMBOL", f) is None
    torch_abi = facts("ImportError: /x/vllm/_C.abi3.so: undefined symbol: _ZN5torch3jit17parseSchemaOrNameERKSsb")
    assert fire("DRIVER_LACKS_API_FUNCTION", torch_abi) is None
    assert fire("VLLM_C_UNDEFINED_SYMBOL", torch_abi).category == "cuda_version_mismatch"
    for other_library in ("cublasLtCreate", "cudnnCreate", "cudaGetDeviceCount", "cuFileDriverOpen"):
        assert fire("DRIVER_LACKS_API_FUNCTION", facts(f"ImportError: x.so: undefined symbol: {other_library}")) is None
