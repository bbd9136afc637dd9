"""Wall time of `vllm-bug analyze` as a subprocess (CLI start included), beside `python -c pass`.

    python benchmarks/analyze_speed.py [--runs 15] [--input PATH ...] [--format text|json|markdown ...]
        [--baseline-python OTHER_TREE/.venv/bin/python] [--cold]

Without --input it writes two inputs of its own and times both: a bundle (a full schema-valid
payload: two H100s, driver, torch, vLLM, plus a realistic failed `vllm serve` log: an OOM in a
tensor-parallel worker wrapped by the engine's own errors, after 2,000 lines of loading chatter)
and the same log as plain text. Target: median under 0.3 s on a 2-core machine (goal: 0.2 s).
`--format` may be repeated (each input is timed in each format). `--baseline-python` times the
same inputs and formats with another installation of vllm-bug (an older tree in its own venv),
interleaved with this one, and prints each ratio this/baseline: before-and-after in one run.

Bytecode: the children run with PYTHONDONTWRITEBYTECODE removed and PYTHONPYCACHEPREFIX set to a
private temporary folder, like an installed tool whose .pyc files exist; two uncounted warm-up runs
write them. Commands run interleaved (baseline, then each input, repeated), so load from other
processes on the machine affects all of them alike. Each child's CPU time (user + system) is printed
beside its wall time: on a shared machine it moves less with the other processes than wall time does.

Caches: vllm-bug keeps derived data in $XDG_CACHE_HOME/vllm-bug (compiled templates and regexes, the
signal index). By default the children share one private cache folder, which the warm-up runs fill
(warm figures, as after a first run); `--cold` gives every run an empty one (first-run figures).

With --baseline-python, --format text and --format markdown, it also prints the issue's target for each
input: markdown now against text with the baseline ("no slower than the text format is today").
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

LOG_HEAD = """\
INFO 06-01 10:00:00 [api_server.py:1900] vLLM API server version 0.19.0
INFO 06-01 10:00:00 [utils.py:328] non-default args: {'model': 'meta-llama/Llama-3.1-70B-Instruct', 'tensor_parallel_size': 2, 'max_model_len': 32768, 'gpu_memory_utilization': 0.95}
INFO 06-01 10:00:05 [model.py:547] Resolved architecture: LlamaForCausalLM
"""
WORKER_TB = """\
(Worker_TP{r} pid=10{r}) ERROR 06-01 10:01:10 [multiproc_executor.py:671] WorkerProc failed to start.
(Worker_TP{r} pid=10{r}) ERROR 06-01 10:01:10 [multiproc_executor.py:671] Traceback (most recent call last):
(Worker_TP{r} pid=10{r}) ERROR 06-01 10:01:10 [multiproc_executor.py:671]   File "/usr/local/lib/python3.12/dist-packages/vllm/v1/worker/gpu_worker.py", line 240, in determine_available_memory
(Worker_TP{r} pid=10{r}) ERROR 06-01 10:01:10 [multiproc_executor.py:671]     self.model_runner.profile_run()
(Worker_TP{r} pid=10{r}) ERROR 06-01 10:01:10 [multiproc_executor.py:671]   File "/usr/local/lib/python3.12/dist-packages/vllm/v1/worker/gpu_model_runner.py", line 3300, in profile_run
(Worker_TP{r} pid=10{r}) ERROR 06-01 10:01:10 [multiproc_executor.py:671]     hidden_states = self._dummy_run(self.max_num_tokens)
(Worker_TP{r} pid=10{r}) ERROR 06-01 10:01:10 [multiproc_executor.py:671] torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.50 GiB. GPU {r} has a total capacity of 79.19 GiB of which 1.10 GiB is free. Including non-PyTorch memory, this process has 78.08 GiB memory in use.
"""
LOG_TAIL = """\
(EngineCore_DP0 pid=99) ERROR 06-01 10:01:11 [core.py:708] EngineCore failed to start.
(EngineCore_DP0 pid=99) ERROR 06-01 10:01:11 [core.py:708] Exception: WorkerProc initialization failed due to an exception in a background process. See stack trace for root cause.
RuntimeError: Engine core initialization failed. See root cause above. Failed core proc(s): {}
"""


def realistic_log(filler_lines: int = 2000) -> str:
    filler = "".join(
        f"INFO 06-01 10:00:{i % 60:02d} [loader.py:12] Loading safetensors shard {i}\n" for i in range(filler_lines)
    )
    return LOG_HEAD + filler + WORKER_TB.format(r=0) + WORKER_TB.format(r=1) + LOG_TAIL


def build_bundle(path: Path) -> Path:
    """A bundle as `vllm-bug collect` writes it on this machine (host, packages, env, probe manifest),
    with two H100s, their driver and a torch/vLLM install, the nvidia-smi table and the failed log."""
    from vllm_bug.bundler import collect
    from vllm_bug.schema.bundle import encode, make_envelope

    payload, _, _ = collect.build_payload(collect.CollectOptions(timeout_s=30))
    payload.update(
        {
            "gpus": [
                {
                    "index": i,
                    "name": "NVIDIA H100 80GB HBM3",
                    "compute_capability": "9.0",
                    "memory_total_bytes": 85_031_714_816,
                }
                for i in range(2)
            ],
            "driver": {"version": "570.133.20", "cuda_version": "12.8"},
            "torch": {"version": "2.8.0+cu128", "cuda": "12.8"},
            "vllm": {"version": "0.19.0"},
            "log": {"source": "file", "truncated": False, "text": realistic_log()},
        }
    )
    smi = Path(__file__).resolve().parents[1] / "tests" / "fixtures" / "device" / "h200" / "nvidia-smi.txt"
    if smi.is_file():
        payload["nvidia_smi"] = dict(payload.get("nvidia_smi") or {}, plain=smi.read_text(encoding="utf-8"))
    path.write_bytes(encode(make_envelope(payload)))
    return path


def child_env(pycache: Path) -> dict[str, str]:
    """Like an installed tool: bytecode cached (here in a private folder, so the tree stays clean)."""
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(pycache)
    return env


def time_command(cmd: list[str], runs: int, env: dict[str, str], cold: bool = False) -> list[tuple[float, float]]:
    """(wall, CPU) seconds of each run; `cold`: each run with an empty cache folder of its own."""
    times = []
    for _ in range(runs):
        with tempfile.TemporaryDirectory() as cache:
            wall, cpu, returncode, stderr = run_once(cmd, dict(env, XDG_CACHE_HOME=cache) if cold else env)
        times.append((wall, cpu))
        if returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed ({returncode}): {stderr.decode()[-300:]}")
    return times


def run_once(cmd: list[str], env: dict[str, str]) -> tuple[float, float, int, bytes]:
    """Wall time, CPU time (user + system) of the child, its exit status and its standard error."""
    start = time.perf_counter()
    # run outside any checkout: `python -m vllm_bug` in a checkout imports its ./vllm_bug, not the installed one
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, cwd=tempfile.gettempdir())
    assert proc.stderr is not None
    with proc.stderr:
        stderr = proc.stderr.read()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here: Popen must not wait for it again
    return wall, usage.ru_utime + usage.ru_stime, proc.returncode, stderr


def interleaved(
    commands: dict[str, list[str]], runs: int, envs: dict[str, dict[str, str]], cold: bool = False
) -> dict[str, list[tuple[float, float]]]:
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in commands}
    for _ in range(runs):
        for name, cmd in commands.items():
            times[name] += time_command(cmd, 1, envs[name], cold)
    return times


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument(
        "--input",
        "--bundle",
        action="append",
        dest="inputs",
        help="analyse this file (bundle or text) instead of the generated ones; repeatable",
    )
    parser.add_argument("--format", action="append", dest="formats", choices=["text", "json", "markdown"])
    parser.add_argument("--baseline-python", help="interpreter of another vllm-bug installation to compare with")
    parser.add_argument("--cold", action="store_true", help="give every run an empty cache folder (first-run figures)")
    args = parser.parse_args(argv)
    formats = args.formats or ["text"]
    pythons = {"": sys.executable} | ({"baseline ": args.baseline_python} if args.baseline_python else {})
    with tempfile.TemporaryDirectory() as tmp:
        if args.inputs:
            inputs = [Path(p) for p in args.inputs]
        else:
            text = Path(tmp) / "bench-log.txt"
            text.write_text(realistic_log(), encoding="utf-8")
            inputs = [build_bundle(Path(tmp) / "bench.zst"), text]
        env = child_env(Path(tmp) / "pycache")
        commands = {"python -c pass": [sys.executable, "-c", "pass"]}
        envs = {"python -c pass": env}
        for label, python in pythons.items():
            # each installation its own cache folder: two versions' kept indexes would replace each other's
            cache = dict(env, XDG_CACHE_HOME=str(Path(tmp) / f"cache-{label.strip() or 'this'}"))
            for path in inputs:
                for fmt in formats:
                    envs[f"{label}analyze {path.name} {fmt}"] = cache
                    commands[f"{label}analyze {path.name} {fmt}"] = [
                        python,
                        "-m",
                        "vllm_bug",
                        "analyze",
                        str(path),
                        "--format",
                        fmt,
                    ]
        for name, cmd in commands.items():
            time_command(cmd, 2, envs[name])  # warm the page cache, write the .pyc files and fill the cache folder
        times = interleaved(commands, args.runs, envs, args.cold)
    caches = (
        "an empty cache folder for every run (cold)"
        if args.cold
        else "a cache folder per installation, filled by the warm-up (warm)"
    )
    print(f"cpus: {os.cpu_count()}  runs: {args.runs}  formats: {', '.join(formats)}  {caches}")
    walls = {name: statistics.median(wall for wall, _ in values) for name, values in times.items()}
    cpus = {name: statistics.median(cpu for _, cpu in values) for name, values in times.items()}
    for name, values in times.items():
        ratio = ""
        if args.baseline_python and name.startswith("analyze"):
            base = "baseline " + name
            ratio = f"  this/baseline wall {walls[name] / walls[base]:.2f}, cpu {cpus[name] / cpus[base]:.2f}"
        wall_times = [wall for wall, _ in values]
        print(
            f"{name:40} median {walls[name] * 1000:7.1f} ms  (min {min(wall_times) * 1000:.1f}, "
            f"max {max(wall_times) * 1000:.1f})  cpu {cpus[name] * 1000:6.1f} ms{ratio}"
        )
    if args.baseline_python and {"text", "markdown"} <= set(formats):
        for path in inputs:
            now, before = f"analyze {path.name} markdown", f"baseline analyze {path.name} text"
            wall_ratio, cpu_ratio = walls[now] / walls[before], cpus[now] / cpus[before]
            verdict = "met" if wall_ratio <= 1 else "NOT met"
            print(
                f"target, {path.name}: markdown now / text with the baseline = {wall_ratio:.2f} wall, "
                f"{cpu_ratio:.2f} cpu (<= 1: {verdict})"
            )
    worst = max(wall for name, wall in walls.items() if name.startswith("analyze"))
    print(f"slowest analyze median {worst * 1000:.1f} ms; target < 300 ms: {'met' if worst < 0.3 else 'NOT met'}")
    return 0 if worst < 0.3 else 2


if __name__ == "__main__":
    sys.exit(main())
