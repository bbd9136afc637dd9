from rule_helpers import facts, fire, gpu, root, text_of

V1 = ("ValueError: To serve at least one request with the model's max seq len (131072), (16.00 GiB KV cache is "
      "needed, which is larger than the available KV cache memory (5.23 GiB). Based on the available memory, the "
      "estimated maximum model length is 42816. Try increasing `gpu_memory_utilization` or decreasing `max_model_len`")
V0 = ("ValueError: The model's max seq len (56000) is larger than the maximum number of tokens that can be stored in "
      "KV cache (43328). Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine.")


def test_v1_message_uses_the_engines_estimate():
    finding = fire("KV_CACHE_TOO_SMALL_FOR_MAX_LEN", facts(V1, root_cause=root("ValueError", V1[12:])))
    assert finding.category == "kv_cache_insufficient" and finding.confidence >= 0.9
    assert "--max-model-len 41984" in text_of(finding)  # 42816 rounded down to a multiple of 1024
    assert finding.details["estimated_max_model_len"] == 42816


def test_v0_and_old_typo_wordings():
    finding = fire("KV_CACHE_TOO_SMALL_FOR_MAX_LEN", facts(V0))
    assert finding.details["kv_cache_tokens"] == 43328 and "56000" in finding.title
    typo = V1.replace("model's", "models's")
    assert fire("KV_CACHE_TOO_SMALL_FOR_MAX_LEN", facts(typo)) is not None


def test_no_blocks_with_low_utilization_says_raise_it():
    f = facts("ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization`",
              "--gpu-memory-utilization 0.4")
    finding = fire("KV_CACHE_NO_BLOCKS", f)
    assert finding.category == "kv_cache_insufficient"
    assert finding.fixes[0].startswith("raise --gpu-memory-utilization (now 0.4)")


def test_no_blocks_silent_without_the_message():
    assert fire("KV_CACHE_NO_BLOCKS", facts("INFO # GPU blocks: 3852, # CPU blocks: 4096")) is None


def test_fp8_kv_advice_respects_gpu_generation():
    assert "--kv-cache-dtype fp8" not in text_of(fire("KV_CACHE_TOO_SMALL_FOR_MAX_LEN", facts(V0, gpus=[gpu("V100", (7, 0))])))
    assert "--kv-cache-dtype fp8" in text_of(fire("KV_CACHE_TOO_SMALL_FOR_MAX_LEN", facts(V0, gpus=[gpu("L40S", (8, 9))])))


def test_concurrency_below_one():
    f = facts("INFO Maximum concurrency for 40000 tokens per request: 0.82x")
    finding = fire("KV_CACHE_CONCURRENCY_BELOW_ONE", f)
    assert finding is not None and "--max-model-len 32768" in text_of(finding)
    assert fire("KV_CACHE_CONCURRENCY_BELOW_ONE", facts("Maximum concurrency for 40000 tokens per request: 1.54x")) is None


def test_max_model_len_above_derived():
    line = ("ValueError: User-specified max_model_len (65536) is greater than the derived max_model_len "
            "(max_position_embeddings=32768 or model_max_length=None in model's config.json).")
    finding = fire("MAX_MODEL_LEN_ABOVE_DERIVED", facts(line))
    assert "at most 32768" in text_of(finding) and "VLLM_ALLOW_LONG_MAX_MODEL_LEN=1" in text_of(finding)
