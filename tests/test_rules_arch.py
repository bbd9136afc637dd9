from rule_helpers import facts, fire, gpu, text_of

NOKI = "RuntimeError: CUDA error: no kernel image is available for execution on the device"


def test_no_kernel_image_on_blackwell_with_old_torch():
    f = facts(NOKI, gpus=[gpu("NVIDIA GeForce RTX 5080", (12, 0))], torch_cuda="12.6", torch_version="2.6.0+cu126")
    finding = fire("NO_KERNEL_IMAGE", f)
    assert finding.category == "no_kernel_image" and "12.0" in finding.title
    assert "CUDA >= 12.8" in text_of(finding) and "12.6" in text_of(finding)


def test_no_kernel_image_on_pascal():
    finding = fire("NO_KERNEL_IMAGE", facts(NOKI, "GTX 1080 Ti (Compute 6.1)"))
    assert "6.1" in finding.title and "7.0 or newer" in text_of(finding)


def test_volta_on_cuda13_build():
    f = facts(NOKI, gpus=[gpu("Tesla V100-SXM2-32GB", (7, 0))], torch_cuda="13.0", vllm_version="0.21.0")
    assert "CUDA 13 builds dropped Volta" in text_of(fire("NO_KERNEL_IMAGE", f))


def test_gpu_missing_from_torch_arch_list():
    f = facts(
        gpus=[gpu("NVIDIA GeForce RTX 5090", (12, 0))],
        torch_version="2.6.0+cu124",
        torch_arch_list=["sm_50", "sm_60", "sm_70", "sm_75", "sm_80", "sm_86", "sm_90"],
    )
    assert fire("GPU_NOT_IN_TORCH_ARCH_LIST", f) is not None
    covered = facts(gpus=[gpu("NVIDIA A10", (8, 6))], torch_arch_list=["sm_80", "sm_90"])
    assert fire("GPU_NOT_IN_TORCH_ARCH_LIST", covered) is None  # sm_80 code runs on 8.6


def test_torch_compatibility_warning_counts():
    warn = (
        "UserWarning: NVIDIA GeForce RTX 5090 with CUDA capability sm_120 is not compatible with the current "
        "PyTorch installation."
    )
    assert "sm_120" in fire("GPU_NOT_IN_TORCH_ARCH_LIST", facts(warn)).title


def test_bf16_message_and_prediction():
    msg = (
        "ValueError: Bfloat16 is only supported on GPUs with compute capability of at least 8.0. Your Tesla T4 GPU "
        "has compute capability 7.5. You can use float16 instead by explicitly setting the `dtype` flag in CLI"
    )
    assert "--dtype half" in text_of(fire("BF16_ON_OLD_GPU", facts(msg)))
    predicted = facts("vllm serve m --dtype bfloat16", gpus=[gpu("Tesla V100", (7, 0))])
    assert fire("BF16_ON_OLD_GPU", predicted) is not None
    assert fire("BF16_ON_OLD_GPU", facts("vllm serve m --dtype bfloat16", gpus=[gpu("A100", (8, 0))])) is None


def test_fp8_on_ampere_suggests_marlin_or_awq():
    msg = "triton.compiler.errors.CompilationError: type fp8e4nv not supported in this architecture"
    finding = fire("FP8_ON_OLD_GPU", facts(msg, gpus=[gpu("NVIDIA A100", (8, 0))]))
    assert finding.category == "no_kernel_image" and "Marlin" in text_of(finding)
    assert fire("FP8_ON_OLD_GPU", facts("--quantization fp8 error", gpus=[gpu("H100", (9, 0))])) is None


def test_quantization_minimum_capability():
    msg = (
        "ValueError: The quantization method awq_marlin is not supported for the current GPU. Minimum capability: "
        "80. Current capability: 75."
    )
    finding = fire("QUANTIZATION_NEEDS_NEWER_GPU", facts(msg))
    assert "8.0" in finding.title and "7.5" in finding.title and "awq" in text_of(finding)


def test_old_gpu_prediction_needs_a_failure():
    assert fire("GPU_TOO_OLD_FOR_VLLM", facts("RuntimeError: something failed", gpus=[gpu("Tesla P40", (6, 1))]))
    assert fire("GPU_TOO_OLD_FOR_VLLM", facts("RuntimeError: something failed", gpus=[gpu("Tesla T4", (7, 5))])) is None


def test_quantization_message_with_a_one_digit_capability():
    # 'Current capability: 7.' crashed the rule (int('') from slicing the digits) and with it the analysis
    msg = (
        "ValueError: The quantization method awq is not supported for the current GPU. Minimum capability: 80. "
        "Current capability: 7."
    )
    finding = fire("QUANTIZATION_NEEDS_NEWER_GPU", facts(msg))
    assert finding.title == "The checkpoint's quantization method needs a newer GPU."
    assert finding.fixes[0] == "use a checkpoint quantized with a method this GPU supports"


def test_quantization_scheme_message_alone_has_no_numbers():
    line = "RuntimeError: Quantization scheme is not supported for the current GPU. Min capability: 80."
    finding = fire("QUANTIZATION_NEEDS_NEWER_GPU", facts(line))
    assert finding.title == "The checkpoint's quantization method needs a newer GPU." and finding.confidence == 0.88


def test_compute_capability_stated_in_text_when_no_gpu_is_known():
    for line, cc in (
        ("ptxas -v --gpu-name=sm_61 kernel.ptx", "6.1"),
        ("Found GPU0 GeForce GT 720 which is of cuda capability 3.5.", "3.5"),
        ("built for sm75 only", "7.5"),
    ):
        assert f"compute capability {cc}" in fire("NO_KERNEL_IMAGE", facts(NOKI, line)).title


def test_old_gpu_prediction_quotes_where_the_gpu_is_named_and_needs_an_input_line_saying_failure():
    f = facts("RuntimeError: something failed", "we run on a tesla p40 box", gpus=[gpu("Tesla P40", (6, 1))])
    assert fire("GPU_TOO_OLD_FOR_VLLM", f).evidence == ["we run on a tesla p40 box"]
    # a bare line becomes a root cause typed 'Error'; that type is not the input saying something failed
    assert fire("GPU_TOO_OLD_FOR_VLLM", facts("cuda capability 3.5")) is None


def test_a_report_saying_the_build_lacks_the_gpu_architecture():
    """vllm#20748: only the title says it ('sm_120 support appears to be missing in pre-built whl'), above a
    package list; a report naming the architecture as working is not that."""
    title = "[Bug]: sm_120 support appears to be missing in pre-built whl for 0.9.2"
    finding = fire("ARCH_SUPPORT_MISSING_NAMED", facts(title, "[pip3] torch==2.7.0+cu128"))
    assert finding.category == "no_kernel_image" and finding.evidence == [title]
    assert "compute capability 12.0" in finding.title and finding.confidence < 0.5
    assert fire("ARCH_SUPPORT_MISSING_NAMED", facts("vLLM runs fine on sm_120 with the cu128 wheel")) is None


def test_a_cutlass_op_built_without_the_gpus_capability():
    # vllm#32109: the MoE CUTLASS kernel on an RTX PRO 6000 Blackwell (12.0)
    moe = "No compiled cutlass_scaled_mm for CUDA device capability: 120. Required capability: 90 or 100"
    finding = fire("CUSTOM_OP_NOT_COMPILED_FOR_CAPABILITY", facts(moe))
    assert finding.category == "no_kernel_image" and finding.evidence == [moe]
    dense = (
        "NotImplementedError: No compiled cutlass_scaled_mm for a compute capability less than CUDA device "
        "capability: 121"
    )
    assert fire("CUSTOM_OP_NOT_COMPILED_FOR_CAPABILITY", facts(dense)) is not None
    assert fire("CUSTOM_OP_NOT_COMPILED_FOR_CAPABILITY", facts("No compiled kernels were found")) is None


CUTLASS_INTERNAL = "RuntimeError: cutlass_gemm_caller.cuh:61, Error Internal"


def test_cutlass_error_internal_on_a_variant_of_its_generation():
    # vllm#39367 (GB300, 10.3) and vllm#43367 (GB10, 12.1): CUTLASS's kernel did not launch
    for name, cc in (("NVIDIA GB300", (10, 3)), ("NVIDIA GB10", (12, 1))):
        finding = fire("CUTLASS_LAUNCH_FAILED_ON_ARCH_VARIANT", facts(CUTLASS_INTERNAL, gpus=[gpu(name, cc)]))
        assert finding.category == "no_kernel_image" and f"sm_{cc[0]}{cc[1]}" in finding.title


def test_cutlass_error_internal_on_a_first_capability_is_left_alone():
    for cc in ((10, 0), (12, 0), (9, 0), (8, 6)):
        assert fire("CUTLASS_LAUNCH_FAILED_ON_ARCH_VARIANT", facts(CUTLASS_INTERNAL, gpus=[gpu("G", cc)])) is None
    assert fire("CUTLASS_LAUNCH_FAILED_ON_ARCH_VARIANT", facts(CUTLASS_INTERNAL)) is None  # GPU unknown
    lower = facts("error internal to the scheduler", gpus=[gpu("NVIDIA GB10", (12, 1))])
    assert fire("CUTLASS_LAUNCH_FAILED_ON_ARCH_VARIANT", lower) is None
