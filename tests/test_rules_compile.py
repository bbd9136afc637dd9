from rule_helpers import facts, fire, text_of


def test_ptxas_blackwell():
    f = facts(
        "subprocess.CalledProcessError: Command '['/x/triton/backends/nvidia/bin/ptxas', '-lineinfo', '-v', "
        "'--gpu-name=sm_100', '/tmp/a.ptx']' returned non-zero exit status 255.",
        "ptxas fatal   : Value 'sm_100' is not defined for option 'gpu-name'",
    )
    finding = fire("PTXAS_ARCH_UNSUPPORTED", f)
    assert finding.category == "triton_compile" and "TRITON_PTXAS_PATH" in text_of(finding)


def test_no_c_compiler():
    f = facts("RuntimeError: Failed to find C compiler. Please specify via CC environment variable.")
    assert "build-essential" in text_of(fire("TRITON_NO_C_COMPILER", f))


def test_shared_memory():
    f = facts(
        "triton.runtime.errors.OutOfResources: out of resource: shared memory, Required: 81920, Hardware limit: 65536."
    )
    assert "80 KiB needed, 64 KiB" in fire("TRITON_OUT_OF_SHARED_MEMORY", f).title


def test_inductor_failure_version_advice():
    line = "torch._dynamo.exc.BackendCompilerFailed: backend='<vllm.compilation.backends.VllmBackend>' raised:"
    new = fire("TORCH_COMPILE_FAILED", facts(line, vllm_version="0.10.1"))
    assert "-O0" in text_of(new)
    old = fire("TORCH_COMPILE_FAILED", facts(line, vllm_version="0.6.3"))
    assert "-O0" not in text_of(old) and "--enforce-eager" in text_of(old)


def test_inductor_frames_alone_do_not_fire():
    f = facts('  File "/x/torch/_inductor/output_code.py", line 460, in __call__')
    assert fire("TORCH_COMPILE_FAILED", f) is None


def test_triton_mlir_pipeline_failure_from_its_reproducer_or_its_note():
    """vllm#30872: the log holds only the start of the crash reproducer Triton prints (its pass pipeline, target
    cuda:100); MLIR's error line and Triton's note say the same when they are there. An MLIR pipeline of
    another compiler is not Triton's."""
    reproducer = (
        '      pipeline: "builtin.module(convert-triton-to-tritongpu{enable-source-remat=false num-ctas=1 '
        "num-warps=4 target=cuda:100 threads-per-warp=32}, tritongpu-coalesce, tritongpu-F32DotTC"
    )
    finding = fire("TRITON_PASS_PIPELINE_FAILED", facts("{-#", "  external_resources: {", reproducer))
    assert finding.category == "triton_compile" and "sm_100" in finding.title
    for line in (
        "kernel.py:36:0: error: Failures have been detected while processing an MLIR pass pipeline",
        "kernel.py:36:0: note: Pipeline failed while executing [`ConvertTritonGPUToLLVM` on 'builtin.module' "
        "operation]: reproducer generated at `std::errs, please share the reproducer above with Triton project.`",
    ):
        assert fire("TRITON_PASS_PIPELINE_FAILED", facts(line)).category == "triton_compile"
    other = '      pipeline: "builtin.module(func.func(canonicalize, cse), convert-func-to-llvm)",'
    assert fire("TRITON_PASS_PIPELINE_FAILED", facts(other)) is None
