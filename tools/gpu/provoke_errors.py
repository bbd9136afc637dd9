"""Provoke real CUDA failures on a GPU machine and keep what each printed, for analyzer fixtures.

Run on the GPU machine: python tools/gpu/provoke_errors.py OUTDIR [SCENARIO ...]
Each scenario runs in its own interpreter (a CUDA error poisons the context); its combined
stdout/stderr goes to OUTDIR/<scenario>.log with the command and exit code on the first line.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

SCENARIOS: dict[str, str] = {
    "oom": """
        import torch
        x = torch.empty(int(torch.cuda.get_device_properties(0).total_memory * 0.6), dtype=torch.uint8, device="cuda")
        y = torch.empty(int(torch.cuda.get_device_properties(0).total_memory * 0.6), dtype=torch.uint8, device="cuda")
    """,
    "device_side_assert": """
        import torch
        t = torch.zeros(3, device="cuda")
        idx = torch.tensor([5], device="cuda")
        print(t[idx])
        torch.cuda.synchronize()
    """,
    "illegal_memory_access": """
        import torch, triton, triton.language as tl
        @triton.jit
        def scribble(ptr, n):
            offs = tl.arange(0, 1024)
            tl.store(ptr + offs + 4000000000, offs)  # 16 GB past the buffer: unmapped
        x = torch.zeros(16, device="cuda", dtype=torch.int32)
        scribble[(1,)](x, 16)
        torch.cuda.synchronize()
        print(x.sum().item())
    """,
    "cuda_graph_sync_in_capture": """
        import torch
        s = torch.cuda.Stream()
        x = torch.ones(4, device="cuda")
        g = torch.cuda.CUDAGraph()
        with torch.cuda.stream(s):
            with torch.cuda.graph(g):
                y = x * 2
                print(y.sum().item())
    """,
    "triton_out_of_resources": """
        import torch, triton, triton.language as tl
        @triton.jit
        def big(a_ptr, out_ptr, BLOCK: tl.constexpr):
            offs = tl.arange(0, BLOCK)
            a = tl.load(a_ptr + offs[:, None] * BLOCK + offs[None, :])
            b = tl.dot(a, a)
            tl.store(out_ptr + offs[:, None] * BLOCK + offs[None, :], b)
        n = 256  # both dot operands staged in shared memory: 256 KiB, over the 228 KiB an H100/H200 SM has
        a = torch.randn(n, n, device="cuda", dtype=torch.float16)
        out = torch.empty_like(a)
        big[(1,)](a, out, BLOCK=n)
        torch.cuda.synchronize()
    """,
    "triton_compile_error": """
        import torch, triton, triton.language as tl
        @triton.jit
        def bad(x_ptr):
            offs = tl.arange(0, 1000)
            tl.store(x_ptr + offs, offs)
        x = torch.zeros(1000, device="cuda", dtype=torch.int32)
        bad[(1,)](x)
    """,
    "no_cuda_gpus_visible": """
        import os
        os.environ["CUDA_VISIBLE_DEVICES"] = ""
        import torch
        print("cuda available:", torch.cuda.is_available(), "count:", torch.cuda.device_count())
        torch.zeros(1, device="cuda")
    """,
}

CUDA_PROGRAMS: dict[str, tuple[list[str], str]] = {
    # built with nvcc for an architecture this GPU is not, without PTX: no kernel image
    "no_kernel_image": (
        ["-gencode", "arch=compute_80,code=sm_80"],
        r"""
        #include <cstdio>
        __global__ void k(int *p) { p[threadIdx.x] = threadIdx.x; }
        int main() {
            int *d; cudaMalloc(&d, 1024 * sizeof(int));
            k<<<1, 32>>>(d);
            cudaError_t e = cudaGetLastError();
            printf("launch: %s: %s\n", cudaGetErrorName(e), cudaGetErrorString(e));
            return e == cudaSuccess ? 0 : 1;
        }
    """,
    ),
    "invalid_argument_block_too_large": (
        [],
        r"""
        #include <cstdio>
        __global__ void k(int *p) { p[threadIdx.x] = threadIdx.x; }
        int main() {
            int *d; cudaMalloc(&d, 4096 * sizeof(int));
            k<<<1, 4096>>>(d);
            cudaError_t e = cudaGetLastError();
            printf("launch: %s: %s\n", cudaGetErrorName(e), cudaGetErrorString(e));
            return e == cudaSuccess ? 0 : 1;
        }
    """,
    ),
    "invalid_configuration_grid_too_large": (
        [],
        r"""
        #include <cstdio>
        __global__ void k(int *p) { p[threadIdx.x] = threadIdx.x; }
        int main() {
            int *d; cudaMalloc(&d, 4096 * sizeof(int));
            k<<<dim3(1, 70000, 1), 32>>>(d);
            cudaError_t e = cudaGetLastError();
            printf("launch: %s: %s\n", cudaGetErrorName(e), cudaGetErrorString(e));
            return e == cudaSuccess ? 0 : 1;
        }
    """,
    ),
}


def run_logged(name: str, argv: list[str], outdir: Path, env: dict[str, str] | None = None) -> None:
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=180, env=env)
        body, code = proc.stdout + proc.stderr, proc.returncode
    except subprocess.TimeoutExpired as exc:
        body, code = f"{exc.stdout or ''}{exc.stderr or ''}\n[timed out]", "timeout"
    (outdir / f"{name}.log").write_text(f"# exit {code}\n{body}")
    print(f"{name}: exit {code}", flush=True)


def main() -> None:
    outdir = Path(sys.argv[1])
    outdir.mkdir(parents=True, exist_ok=True)
    build = outdir / "build"
    build.mkdir(exist_ok=True)
    only = set(sys.argv[2:])
    for name, code in SCENARIOS.items():
        if only and name not in only:
            continue
        script = build / f"{name}.py"  # triton needs kernels defined in a file
        script.write_text(textwrap.dedent(code))
        run_logged(name, [sys.executable, str(script)], outdir)
    for name, (flags, source) in CUDA_PROGRAMS.items():
        if only and name not in only:
            continue
        src = build / f"{name}.cu"
        src.write_text(textwrap.dedent(source))
        exe = build / name
        subprocess.run(["nvcc", *flags, "-o", str(exe), str(src)], check=True, capture_output=True)
        run_logged(name, [str(exe)], outdir)


if __name__ == "__main__":
    main()
