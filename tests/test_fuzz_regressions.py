"""Concrete inputs that once crashed the analyzer (found by tests/test_fuzz_analyzer.py and the CLI fuzzing).

Each must now give an Analysis whose three renderings can be written as UTF-8, and the facts drawn
from absurd numbers are left unknown rather than made up.
"""

from __future__ import annotations

import contextlib

import pytest

from vllm_bug.analyzer.analyze import analyze_text
from vllm_bug.commands.analyze import render

HUGE = "9" * 400  # float() gives inf: int(inf) raised OverflowError
LONGER_THAN_INT_ALLOWS = "9" * 5000  # int() refuses strings over 4300 digits (ValueError)


def _analyzed(text: str):
    analysis = analyze_text(text)
    for fmt in ("text", "markdown", "json"):
        render(analysis, fmt, explain=True).encode("utf-8")
    return analysis


@pytest.mark.parametrize(
    "line",
    [
        f"INFO [gpu_worker.py:1] Loading model weights took {HUGE} GiB",
        f"INFO [gpu_worker.py:1] Available KV cache memory: {HUGE} GiB",
        f"INFO the rest of the memory reserved for KV Cache is {HUGE} GiB",
        f"Memory profiling results: total_gpu_memory={HUGE}GiB kv_cache_size={HUGE}GiB",
        f"docker run --gpus all --shm-size={HUGE}g vllm/vllm-openai",
        f"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of {HUGE} GiB",
        f"ValueError: max seq len ({LONGER_THAN_INT_ALLOWS}), ({HUGE} GiB KV cache is needed, which is larger than the available KV cache memory ({HUGE} GiB)",
    ],
)
def test_sizes_too_large_to_be_real_are_not_facts(line):
    facts = _analyzed(line).facts
    assert facts.model_weights_bytes is None and facts.kv_cache_memory_bytes is None and facts.shm_total_bytes is None
    assert all(g.memory_total_bytes is None for g in facts.gpus)
    assert "max_model_len" not in facts.engine_args


@pytest.mark.parametrize(
    "line",
    [
        f"INFO GPU KV cache size: {LONGER_THAN_INT_ALLOWS} tokens",
        f"INFO # GPU blocks: {LONGER_THAN_INT_ALLOWS}",
        f"INFO GPU KV cache size: 1 tokens\nINFO Maximum concurrency for {LONGER_THAN_INT_ALLOWS} tokens per request: {HUGE}x",
        f"ValueError: The model's max seq len ({LONGER_THAN_INT_ALLOWS}) is larger than the maximum number of tokens that can "
        f"be stored in KV cache ({LONGER_THAN_INT_ALLOWS}). Try increasing `gpu_memory_utilization`",
        f"vllm serve m --max-model-len {LONGER_THAN_INT_ALLOWS} --tensor-parallel-size 2",
    ],
)
def test_counts_too_long_to_be_real_are_not_facts(line):
    facts = _analyzed(line).facts
    assert facts.kv_cache_tokens in (None, 1) and facts.gpu_blocks is None
    assert not isinstance(facts.engine_args.get("max_model_len"), int)


@pytest.mark.parametrize(
    "line",
    [
        "INFO GPU KV cache size: , tokens",
        "INFO Maximum concurrency for , tokens per request: 0.5x",
        "INFO KV cache\nINFO Maximum concurrency for 4096 tokens per request: ..x",
        "docker run --shm-size=. vllm/vllm-openai",
        "ValueError: max seq len (4096), (. GiB KV cache is needed, which is larger than the available KV cache memory (1.2.3 GiB)",
    ],
)
def test_numbers_made_of_separators_only_are_not_facts(line):
    facts = _analyzed(line).facts
    assert facts.kv_cache_tokens is None and facts.shm_total_bytes is None and facts.kv_cache_memory_bytes is None


def test_concurrency_below_one_needs_a_real_length():
    line = f"INFO Maximum concurrency for {'9' * 400} tokens per request: 0.50x"  # int(length * ratio): OverflowError
    assert "KV_CACHE_CONCURRENCY_BELOW_ONE" not in [f.rule for f in _analyzed(line).diagnoses]
    line = "INFO Maximum concurrency for 32,768 tokens per request: 0.50x"
    assert "KV_CACHE_CONCURRENCY_BELOW_ONE" in [f.rule for f in _analyzed(line).diagnoses]


def test_frame_with_an_absurd_line_number_is_not_a_frame():
    text = (
        f'Traceback (most recent call last):\n  File "x.py", line {LONGER_THAN_INT_ALLOWS}, in f\n    g()\n'
        '  File "y.py", line 7, in g\n    h()\nRuntimeError: CUDA error: an illegal memory access was encountered\n'
    )
    facts = _analyzed(text).facts
    root = facts.tracebacks[-1]
    assert [f.line for f in root.frames] == [7]


def test_compute_capability_with_absurd_digits_is_unknown():
    from vllm_bug.analyzer.gpus import parse_compute_capability

    assert parse_compute_capability(f"{LONGER_THAN_INT_ALLOWS}.0") is None
    assert parse_compute_capability("9.0") == (9, 0)


def _rules(text: str) -> list[str]:
    return [f.rule for f in _analyzed(text).diagnoses]


def test_an_absurd_parallel_size_does_not_hang_the_visible_devices_rule():
    # range(10**17) was spelled out as the CUDA_VISIBLE_DEVICES to set: analyze never finished
    analysis = _analyzed("CUDA_VISIBLE_DEVICES=0 vllm serve m --tensor-parallel-size 100000000000000000")
    finding = next(f for f in analysis.diagnoses if f.rule == "CUDA_VISIBLE_DEVICES_HIDES_GPUS")
    assert "CUDA_VISIBLE_DEVICES=0,1,...,99999999999999999" in finding.fixes[0]
    finding = next(
        f
        for f in _analyzed("CUDA_VISIBLE_DEVICES=0 vllm serve m --tensor-parallel-size 4").diagnoses
        if f.rule == "CUDA_VISIBLE_DEVICES_HIDES_GPUS"
    )
    assert "CUDA_VISIBLE_DEVICES=0,1,2,3)" in finding.fixes[0]


@pytest.mark.parametrize(
    "text",
    [
        "CUDA_VISIBLE_DEVICES=0 vllm serve m --tensor-parallel-size 1e999",  # inf: int(inf) OverflowError
        "CUDA_VISIBLE_DEVICES=0\nINFO non-default args: {'model': 'm', 'tensor_parallel_size': "
        + "9" * 400
        + "}",  # float(int) overflow
    ],
)
def test_engine_args_too_large_for_a_float_are_not_numbers(text):
    assert "CUDA_VISIBLE_DEVICES_HIDES_GPUS" not in _rules(text)


def test_visible_devices_with_non_ascii_digits():
    gpu = "GPU 0: NVIDIA H100 80GB HBM3\n"
    assert "CUDA_VISIBLE_DEVICES_HIDES_GPUS" not in _rules(
        gpu + "CUDA_VISIBLE_DEVICES=\u00b2 vllm serve m"
    )  # '²'.isdigit(), int('²') raised
    assert "CUDA_VISIBLE_DEVICES_HIDES_GPUS" in _rules(gpu + "CUDA_VISIBLE_DEVICES=3 vllm serve m")


def test_versions_with_absurd_digits_are_unknown():
    from vllm_bug.analyzer.facts import parse_version

    assert parse_version(LONGER_THAN_INT_ALLOWS) is None
    assert parse_version("2.9.0+cu128") == (2, 9, 0)
    _analyzed(f"PyTorch version: {LONGER_THAN_INT_ALLOWS}\nvLLM Version: 0.10.1\nImportError: undefined symbol")


@pytest.mark.parametrize(
    "text",
    [
        # the match lies past the 400 characters evidence keeps of a line
        "ImportError: /" + "x" * 450 + "/libc.so.6: version `GLIBC_2.32' not found (required by vllm/_C.abi3.so)",
        "IMPORTERROR: /LIB/LIBC.SO.6: VERSION `GLIBC_2.32' NOT FOUND",  # rules search case-insensitively
        "Libc version: GLIBC-2.31\nImportError: /lib/libc.so.6: version `GLIBC_2.32' not found",
    ],
)
def test_glibc_rule_reads_the_whole_line_whatever_its_case(text):
    assert "GLIBC_TOO_OLD" in _rules(text)


def test_cuda_mismatch_rule_reads_the_whole_line_whatever_its_case():
    text = (
        "RUNTIMEERROR: THE DETECTED CUDA VERSION (12.1) MISMATCHES THE VERSION THAT WAS USED TO COMPILE PYTORCH (11.8). "
        "PLEASE MAKE SURE TO USE THE SAME CUDA VERSIONS."
    )
    assert "TORCH_CUDA_DETECTED_MISMATCH" in _rules(text)


@pytest.mark.parametrize("size", [".", "1.2.3", "..."])
def test_oom_sizes_that_are_not_numbers(size):
    text = (
        f"torch.OutOfMemoryError: CUDA out of memory. Tried to allocate {size} GiB. GPU 0 has a total capacity of "
        f"{size} GiB of which {size} MiB is free. Process 1 has {size} GiB memory in use. Process 2 has 1.00 GiB memory in use."
    )
    assert _rules(text)[0] == "CUDA_OOM"


def test_free_memory_below_utilization_with_zero_total():
    text = (
        "ValueError: Free memory on device (0.5/0 GiB) on startup is less than desired GPU memory utilization "
        "(0.9, 10 GiB). Decrease GPU memory utilization or reduce GPU memory used by other processes."
    )
    assert "FREE_MEMORY_BELOW_UTILIZATION" in _rules(text)


def test_a_torch_pin_without_a_version_is_no_requirement():
    from vllm_bug.analyzer.analyze import analyze_facts
    from vllm_bug.analyzer.facts import Facts

    facts = Facts(
        torch_version="2.9.0", vllm_version="0.11.0", vllm_requirements=[{"name": "torch", "specifier": "==."}]
    )
    assert "TORCH_NOT_WHAT_VLLM_REQUIRES" not in [f.rule for f in analyze_facts(facts).diagnoses]


# -- the CLI's output files ------------------------------------------------------------------------
def _read_fifo_in_background(fifo):
    import threading

    got: list[bytes] = []
    reader = threading.Thread(target=lambda: got.append(fifo.read_bytes()), daemon=True)
    reader.start()
    return reader, got


def _unblock(fifo, reader) -> None:
    import os

    if reader.is_alive():  # nothing opened the pipe for writing: let the reader go
        with contextlib.suppress(OSError):
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    reader.join(5)


@pytest.mark.parametrize("command", [["analyze"], ["triage"]])
def test_force_writes_into_a_pipe_instead_of_replacing_it(command, tmp_path, capsys):
    # -o /dev/stdout --force (or /dev/null as root) replaced the device node with a regular file
    import os
    import stat

    from vllm_bug.cli import main

    log = tmp_path / "vllm.log"
    log.write_text("RuntimeError: CUDA error: an illegal memory access was encountered\n")
    fifo = tmp_path / "out"
    os.mkfifo(fifo)
    reader, got = _read_fifo_in_background(fifo)
    try:
        with pytest.raises(SystemExit) as exc:
            main([*command, str(log), "-o", str(fifo), "--force"])
    finally:
        _unblock(fifo, reader)
    assert exc.value.code in (0, None)
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    assert got and b"illegal memory access" in got[0].lower().replace(b"_", b" ")


def test_an_existing_pipe_still_needs_force(tmp_path):
    import os

    from vllm_bug.commands.output import write_file
    from vllm_bug.errors import VllmBugError

    fifo = tmp_path / "out"
    os.mkfifo(fifo)
    with pytest.raises(VllmBugError, match="already exists"):
        write_file(fifo, b"x")


def test_upper_case_concurrency_line_still_diagnoses():
    # grep matches case-insensitively; the rule's own search did not, and m.group raised AttributeError
    assert "KV_CACHE_CONCURRENCY_BELOW_ONE" in _rules("MAXIMUM CONCURRENCY FOR 29000 TOKENS PER REQUEST: 0.82X")


def test_ptxas_arch_with_absurd_digits():
    text = (
        "triton.runtime.errors.PTXASError: PTXAS error: Internal Triton PTX codegen error\n"
        "ptxas --gpu-name=sm_" + LONGER_THAN_INT_ALLOWS + " /tmp/x.ptx"
    )
    assert "PTXAS_ARCH_UNSUPPORTED" in _rules(text)


def test_a_utilization_too_large_for_a_float_falls_back_to_the_default():
    # float(10**400) raised OverflowError inside the memory arithmetic of KV_CACHE_NO_BLOCKS
    text = (
        "GPU 0: NVIDIA H100 80GB HBM3\nINFO non-default args: {'model': 'meta-llama/Llama-3.1-8B-Instruct', "
        f"'gpu_memory_utilization': {HUGE}}}\nValueError: No available memory for the cache blocks. "
        "Try increasing gpu_memory_utilization when initializing the engine."
    )
    finding = next(f for f in _analyzed(text).diagnoses if f.rule == "KV_CACHE_NO_BLOCKS")
    assert any("gpu_memory_utilization not given" in note for note in finding.details["memory"]["notes"])


def test_memory_ignores_a_parameter_count_too_large_for_a_float(tmp_path, capsys):
    # "num_parameters": 10**400 made the weight arithmetic raise OverflowError (an "internal error")
    import json

    from vllm_bug.cli import main

    config = {
        "num_hidden_layers": 32,
        "num_attention_heads": 32,
        "num_key_value_heads": 8,
        "hidden_size": 4096,
        "intermediate_size": 14336,
        "vocab_size": 128256,
        "torch_dtype": "bfloat16",
        "num_parameters": 10**400,
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    with pytest.raises(SystemExit) as exc:
        main(["memory", "--config", str(tmp_path), "--gpu", "H100", "--max-model-len", "4096", "--format", "json"])
    out, err = capsys.readouterr()
    assert exc.value.code == 0, err
    assert 8_000_000_000 < json.loads(out)["parameters"] < 8_100_000_000  # counted from the shape instead


# -- vllm-bug run ------------------------------------------------------------------------------------
def test_run_does_not_wait_for_processes_the_command_left_behind(monkeypatch):
    # a hung worker holding the command's stdout kept `vllm-bug run` waiting (for ever) after the command exited
    import io
    import time

    from vllm_bug.bundler import supervise

    monkeypatch.setattr(supervise, "ORPHAN_QUIET_S", 0.3)
    started = time.monotonic()
    finished = supervise.run_child(
        ["sh", "-c", "sleep 8 & echo started; echo 'RuntimeError: boom' >&2; exit 3"], io.BytesIO(), io.BytesIO()
    )
    assert time.monotonic() - started < 5
    assert finished.exit_code == 3
    text = finished.log.finish("command", "sh").text
    assert "started" in text and "RuntimeError: boom" in text


def test_run_still_reads_output_written_just_after_the_command_exits(monkeypatch):
    import io

    from vllm_bug.bundler import supervise

    monkeypatch.setattr(
        supervise, "ORPHAN_QUIET_S", 5.0
    )  # generous: a loaded CI machine may start the late writer slowly
    sink = io.BytesIO()
    finished = supervise.run_child(["sh", "-c", "(sleep 0.3; echo late line) & echo first; exit 1"], sink, io.BytesIO())
    assert finished.exit_code == 1
    assert finished.log.finish("command", "sh").text == "first\nlate line\n"
    assert sink.getvalue() == b"first\nlate line\n"


def test_triage_never_writes_its_table_over_an_input(tmp_path, capsys):
    # `triage DIR -o DIR/a.log --force` replaced the input a.log with the table
    from vllm_bug.cli import main

    log = tmp_path / "a.log"
    log.write_text("RuntimeError: CUDA error: an illegal memory access was encountered\n")
    with pytest.raises(SystemExit) as exc:
        main(["triage", str(tmp_path), "-o", str(log), "--force"])
    err = capsys.readouterr().err
    assert exc.value.code == 1 and "over the input" in err and err.count("\n") == 1
    assert log.read_text().startswith("RuntimeError")
