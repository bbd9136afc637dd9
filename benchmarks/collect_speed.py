"""How fast and how small `vllm-bug collect` is, next to the probe it cannot avoid and torch's collect_env.

Runs, interleaved, N times each:
    torch_probe   python -c "import torch; torch.cuda.is_available()"
    collect_env   python -m torch.utils.collect_env
    collect       vllm-bug collect -q -o <tmp>/bundle-<i>.zst
then prints median wall times, the ratios collect/torch_probe (target <= 1.15) and
collect/collect_env, the bundle size in KiB (target <= 32), and which collect_env facts the bundle
holds (every field collect_env could fill must map to a filled bundle field).

Works where torch is absent: the torch baselines are then reported as unavailable.

    python benchmarks/collect_speed.py [--runs 5] [--python /path/to/vllm/venv/bin/python]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TORCH_PROBE_TARGET = 1.15
SIZE_TARGET_KIB = 32

# collect_env label -> (bundle path, how to read it). Paths are dotted; "[]" walks a list.
FIELD_MAP = {
    "PyTorch version": "torch.version",
    "Is debug build": "torch.debug",
    "CUDA used to build PyTorch": "torch.cuda",
    "ROCM used to build PyTorch": "torch.hip",
    "OS": "host.os",
    "GCC version": "host.compilers.gcc",
    "Clang version": "host.compilers.clang",
    "CMake version": "host.compilers.cmake",
    "Libc version": "host.glibc",
    "Python version": "host.python.version",
    "Python platform": "host.kernel",
    "Is CUDA available": "torch.cuda_available",
    "CUDA runtime version": "cuda_toolkit.nvcc_version",
    "CUDA_MODULE_LOADING set to": "env.CUDA_MODULE_LOADING",
    "GPU models and configuration": "gpus[].name",
    "Nvidia driver version": "driver.version",
    "cuDNN version": "torch.cudnn",
    "HIP runtime version": "torch.hip",
    "MIOpen runtime version": "torch.hip",
    "Is XNNPACK available": "torch.xnnpack",
    "Caching allocator config": "env.PYTORCH_CUDA_ALLOC_CONF",
    "CPU": "host.cpu.model",
}
NOT_COLLECTED = ("Could not collect", "N/A", "", "No CUDA")


def run_timed(argv: list[str], env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess]:
    start = time.perf_counter()
    result = subprocess.run(argv, capture_output=True, text=True, errors="replace", env=env)
    return time.perf_counter() - start, result


def vllm_bug_argv() -> list[str]:
    script = Path(sys.executable).with_name("vllm-bug")
    if script.exists():
        return [str(script)]
    found = shutil.which("vllm-bug")
    return [found] if found else [sys.executable, "-m", "vllm_bug"]


def has_torch(python: str) -> bool:
    probe = subprocess.run(
        [python, "-c", "import importlib.util as u, sys; sys.exit(u.find_spec('torch') is None)"], capture_output=True
    )
    return probe.returncode == 0


def parse_collect_env(text: str) -> tuple[dict[str, str], dict[str, str]]:
    """(label -> value, pip package -> version) from collect_env's text."""
    fields: dict[str, str] = {}
    packages: dict[str, str] = {}
    in_cpu = False
    for line in text.splitlines():
        if line.startswith("[pip3] ") and "==" in line:
            name, version = line[7:].split("==", 1)
            packages[name.strip().lower().replace("_", "-")] = version.strip()
            continue
        if line.startswith("CPU:"):
            in_cpu = True
            continue
        if in_cpu:
            if line.startswith("Model name:"):
                fields["CPU"] = line.split(":", 1)[1].strip()
            if not line.strip():
                in_cpu = False
            continue
        if ":" in line:
            label, value = line.split(":", 1)
            if label in FIELD_MAP:
                fields[label] = value.strip()
    return fields, packages


def lookup(payload: dict, path: str):
    node = payload
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def gpu_names(payload: dict) -> list[str]:
    return [g.get("name") for g in payload.get("gpus") or [] if g.get("name")]


def compare_facts(collect_env_text: str, payload: dict) -> list[str]:
    """Print the mapping; return the collect_env facts the bundle lacks."""
    fields, packages = parse_collect_env(collect_env_text)
    missing: list[str] = []
    print("\ncollect_env field -> bundle field")
    for label, path in FIELD_MAP.items():
        theirs = fields.get(label)
        ours = gpu_names(payload) if path == "gpus[].name" else lookup(payload, path)
        if theirs is None or theirs in NOT_COLLECTED or theirs.startswith("Could not collect"):
            state = "n/a (collect_env had nothing)"
        elif ours in (None, [], ""):
            state = "MISSING"
            missing.append(f"{label} ({path})")
        else:
            state = "ok"
        print(f"  {label:32} -> {path:30} {state}")
    bundle_packages = payload.get("packages") or {}
    absent = sorted(name for name in packages if name not in bundle_packages)
    print(f"  {'[pip3] packages':32} -> {'packages':30} {len(packages) - len(absent)}/{len(packages)} present")
    missing.extend(f"package {name}" for name in absent)
    return missing


def read_payload(path: Path) -> dict:
    """Through the installed CLI, so the benchmark never imports the source tree by mistake."""
    shown = subprocess.run(vllm_bug_argv() + ["show", str(path)], capture_output=True, text=True, check=True)
    return json.loads(shown.stdout)["payload"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--python", default=sys.executable, help="interpreter with torch (and vLLM) installed")
    args = parser.parse_args()
    env = dict(os.environ)
    torch_ok = has_torch(args.python)
    commands = {"collect": vllm_bug_argv() + ["collect", "-q", "--python", args.python, "-o"]}
    if torch_ok:
        commands["torch_probe"] = [args.python, "-c", "import torch; torch.cuda.is_available()"]
        commands["collect_env"] = [args.python, "-m", "torch.utils.collect_env"]
    else:
        print(f"torch is not importable by {args.python}: the torch baselines are unavailable")
    times: dict[str, list[float]] = {name: [] for name in commands}
    outputs: dict[str, str] = {}
    with tempfile.TemporaryDirectory(prefix="vllm-bug-bench-") as tmp:
        bundle = Path(tmp) / "bundle.zst"
        for i in range(args.runs + 1):  # run 0 warms the caches and is not counted
            for name, argv in commands.items():
                if name == "collect":
                    bundle = Path(tmp) / f"bundle-{i}.zst"
                    argv = argv + [str(bundle)]
                seconds, result = run_timed(argv, env)
                if result.returncode != 0:
                    print(f"{name} failed (exit {result.returncode}): {result.stderr.strip()[-500:]}")
                    return 1
                outputs[name] = result.stdout
                if i:
                    times[name].append(seconds)
        size_kib = bundle.stat().st_size / 1024
        payload = read_payload(bundle)

    medians = {name: statistics.median(values) for name, values in times.items()}
    print(f"\nmedian wall time over {args.runs} interleaved runs (machine: {len(payload.get('gpus') or [])} GPU(s))")
    for name, value in medians.items():
        print(f"  {name:12} {value:7.3f} s   (runs: {', '.join(f'{t:.2f}' for t in times[name])})")
    verdicts = []
    if torch_ok:
        ratio = medians["collect"] / medians["torch_probe"]
        verdicts.append(ratio <= TORCH_PROBE_TARGET)
        print(
            f"  collect / torch_probe = {ratio:.3f}  (target <= {TORCH_PROBE_TARGET}: {'ok' if verdicts[-1] else 'MISSED'})"
        )
        print(f"  collect / collect_env = {medians['collect'] / medians['collect_env']:.3f}")
    print(
        f"bundle size: {size_kib:.1f} KiB (target <= {SIZE_TARGET_KIB}: {'ok' if size_kib <= SIZE_TARGET_KIB else 'MISSED'}), "
        f"{len(payload.get('packages') or {})} packages, nvidia-smi -q "
        f"{'included' if (payload.get('nvidia_smi') or {}).get('query') else 'absent'}"
    )
    verdicts.append(size_kib <= SIZE_TARGET_KIB)
    if torch_ok:
        missing = compare_facts(outputs["collect_env"], payload)
        print(
            "bundle holds every collect_env fact" if not missing else "MISSING from the bundle: " + "; ".join(missing)
        )
        verdicts.append(not missing)
    slowest = sorted(payload["manifest"]["probes"], key=lambda p: -p["duration_s"])[:5]
    print("slowest probes in the last bundle: " + ", ".join(f"{p['name']} {p['duration_s']:.2f}s" for p in slowest))
    print(json.dumps({"medians_s": medians, "bundle_kib": round(size_kib, 1), "targets_met": all(verdicts)}))
    return 0 if all(verdicts) else 2


if __name__ == "__main__":
    sys.exit(main())
