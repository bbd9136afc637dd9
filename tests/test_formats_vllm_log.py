"""vLLM's memory log lines and version line, read from real reports."""

from pathlib import Path

from vllm_bug.formats.units import GIB
from vllm_bug.formats.vllm_log import MemoryLog, parse_memory_log, parse_version_line

FIXTURES = Path(__file__).parent / "fixtures" / "reports" / "excerpts"


def test_v0_numbers_from_a_real_report():
    log = parse_memory_log((FIXTURES / "kv_cache_v0.txt").read_text())
    assert log == MemoryLog(
        max_concurrency=0.82,
        concurrency_request_tokens=29000,
        too_small_max_seq_len=29000,
        too_small_kv_tokens=23648,
        available_kv_cache_bytes=int(2.89 * GIB),  # kv_cache_size=2.89GiB
        gpu_blocks=1478,
        model_weights_bytes=int(14.9888 * GIB),
    )


def test_v1_numbers_from_a_real_report():
    log = parse_memory_log((FIXTURES / "kv_cache_size_tokens.txt").read_text())
    assert log.kv_cache_tokens == 150745 and log.available_kv_cache_bytes == int(2.97 * GIB)


def test_v1_kv_cache_too_small_error():
    log = parse_memory_log(
        "ValueError: To serve at least one request with the models's max seq len (131072), (16.0 GiB KV cache is "
        "needed, which is larger than the available KV cache memory (-1.5 GiB). Based on the available memory, "
        "the estimated maximum model length is 102400."
    )
    assert log.needed_max_seq_len == 131072 and log.needed_available_bytes == int(-1.5 * GIB)
    assert log.estimated_max_model_len == 102400


def test_nothing_logged():
    assert parse_memory_log("RuntimeError: CUDA error: an illegal memory access was encountered") is None
    assert parse_memory_log("the KV cache was fine") is None


def test_absurd_numbers_are_not_facts():
    log = parse_memory_log(
        "GPU KV cache size: " + "9" * 40 + " tokens\nAvailable KV cache memory: " + "9" * 400 + " GiB"
    )
    assert log.kv_cache_tokens is None and log.available_kv_cache_bytes is None


def test_version_lines():
    assert parse_version_line("INFO 06-01 10:00:00 [api_server.py:1900] vLLM API server version 0.19.0") == "0.19.0"
    assert parse_version_line("Initializing a V1 LLM engine (v0.11.0) with config: model='m'") == "0.11.0"
    assert parse_version_line("vllm 0.11.0") is None
