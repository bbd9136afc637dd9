from rule_helpers import facts, fire, root, text_of


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


TRITON_COMPILER_FRAMES = (
    ("/home/user/kernels.py", "<module>"),
    ("/venv/lib/python3.12/site-packages/triton/runtime/jit.py", "run"),
    ("/venv/lib/python3.12/site-packages/triton/compiler/compiler.py", "compile"),
)
INDUCTOR_FRAME = ("/venv/lib/python3.12/site-packages/torch/_inductor/runtime/triton_heuristics.py", "precompile")


def compile_error(*frames: tuple[str, str], cause: str = "arange's range must be a power of 2", **fields):
    """A CompilationError of Triton's compiler as the log ends with it, its chained cause as the root cause."""
    return facts(
        "triton.compiler.errors.CompilationError: at 3:11:",
        root_cause=root("ValueError", cause, frames),
        **fields,
    )


def test_a_triton_kernel_that_does_not_compile_is_named_as_such_with_the_compilers_reason():
    f = compile_error(*TRITON_COMPILER_FRAMES)
    finding = fire("TRITON_KERNEL_COMPILE_FAILED", f)
    assert finding.title == "Triton could not compile a kernel: arange's range must be a power of 2."
    assert "triton.next_power_of_2" in text_of(finding)
    assert fire("TORCH_COMPILE_FAILED", f) is None


def test_the_power_of_two_advice_only_for_that_reason():
    finding = fire("TRITON_KERNEL_COMPILE_FAILED", compile_error(*TRITON_COMPILER_FRAMES, cause="unsupported tensor"))
    assert finding.title.endswith(": unsupported tensor.") and "next_power_of_2" not in text_of(finding)


def test_a_compile_error_under_inductor_stays_torch_compiles():
    f = compile_error(*TRITON_COMPILER_FRAMES, INDUCTOR_FRAME)
    assert fire("TRITON_KERNEL_COMPILE_FAILED", f) is None
    assert "torch.compile" in fire("TORCH_COMPILE_FAILED", f).title


def test_a_compile_error_without_frames_cannot_tell_and_stays_torch_compiles():
    f = facts("triton.compiler.errors.CompilationError: at 3:11:")
    assert fire("TRITON_KERNEL_COMPILE_FAILED", f) is None and fire("TORCH_COMPILE_FAILED", f) is not None


def test_inductors_own_error_names_torch_compile_even_with_triton_frames():
    f = facts(
        "torch._inductor.exc.InductorError: CompilationError: at 1:0:",
        root_cause=root("ValueError", "bad", TRITON_COMPILER_FRAMES),
    )
    assert fire("TRITON_KERNEL_COMPILE_FAILED", f) is None


def test_shared_memory_advice_names_small_gpus_only_when_the_limit_is_small():
    h200 = "triton.runtime.errors.OutOfResources: out of resource: shared memory, Required: 327680, Hardware limit: 232448."
    in_vllm = {"vllm_version": "0.22.0"}
    assert "T4" not in text_of(fire("TRITON_OUT_OF_SHARED_MEMORY", facts(h200, **in_vllm)))
    t4 = "triton.runtime.errors.OutOfResources: out of resource: shared memory, Required: 81920, Hardware limit: 65536."
    assert "T4" in text_of(fire("TRITON_OUT_OF_SHARED_MEMORY", facts(t4, **in_vllm)))
