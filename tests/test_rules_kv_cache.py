from rule_helpers import facts, fire, gpu, root, text_of

V1 = (
    "ValueError: To serve at least one request with the model's max seq len (131072), (16.00 GiB KV cache is "
    "needed, which is larger than the available KV cache memory (5.23 GiB). Based on the available memory, the "
    "estimated maximum model length is 42816. Try increasing `gpu_memory_utilization` or decreasing `max_model_len`"
)
V0 = (
    "ValueError: The model's max seq len (56000) is larger than the maximum number of tokens that can be stored in "
    "KV cache (43328). Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the "
    "engine."
)


def test_v1_message_uses_the_engines_estimate():
    # textfacts reads the estimate into facts.estimated_max_model_len; the rule reads that fact
    finding = fire(
        "KV_CACHE_TOO_SMALL_FOR_MAX_LEN",
        facts(V1, estimated_max_model_len=42816, root_cause=root("ValueError", V1[12:])),
    )
    assert finding.category == "kv_cache_insufficient" and finding.confidence >= 0.9
    assert "--max-model-len 41984" in text_of(finding)  # 42816 rounded down to a multiple of 1024
    assert finding.details["estimated_max_model_len"] == 42816


def test_v0_and_old_typo_wordings():
    finding = fire("KV_CACHE_TOO_SMALL_FOR_MAX_LEN", facts(V0, kv_cache_tokens=43328))
    assert (
        finding.details["kv_cache_tokens"] == 43328 and "56000" in finding.title and "about 43328 fit" in finding.title
    )
    typo = V1.replace("model's", "models's")
    assert fire("KV_CACHE_TOO_SMALL_FOR_MAX_LEN", facts(typo)) is not None


def test_no_blocks_with_low_utilization_says_raise_it():
    f = facts(
        "ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization`",
        "--gpu-memory-utilization 0.4",
    )
    finding = fire("KV_CACHE_NO_BLOCKS", f)
    assert finding.category == "kv_cache_insufficient"
    assert finding.fixes[0].startswith("raise --gpu-memory-utilization (now 0.4)")


def test_no_blocks_silent_without_the_message():
    assert fire("KV_CACHE_NO_BLOCKS", facts("INFO # GPU blocks: 3852, # CPU blocks: 4096")) is None


def test_fp8_kv_advice_respects_gpu_generation():
    assert "--kv-cache-dtype fp8" not in text_of(
        fire("KV_CACHE_TOO_SMALL_FOR_MAX_LEN", facts(V0, gpus=[gpu("V100", (7, 0))]))
    )
    assert "--kv-cache-dtype fp8" in text_of(
        fire("KV_CACHE_TOO_SMALL_FOR_MAX_LEN", facts(V0, gpus=[gpu("L40S", (8, 9))]))
    )


def test_concurrency_below_one():
    f = facts("INFO Maximum concurrency for 40000 tokens per request: 0.82x")
    finding = fire("KV_CACHE_CONCURRENCY_BELOW_ONE", f)
    assert finding is not None and "--max-model-len 32768" in text_of(finding)
    assert (
        fire("KV_CACHE_CONCURRENCY_BELOW_ONE", facts("Maximum concurrency for 40000 tokens per request: 1.54x")) is None
    )


def test_numbers_grouped_with_commas_are_read_whole():
    # The rule read "42,816" as 42 (\b after the first digits) and advised --max-model-len 42, while
    # textfacts read 42816; the rule now takes the estimate from facts and reads "131,072" in the message.
    from vllm_bug.analyzer.complete import complete_facts
    from vllm_bug.analyzer.textfacts import facts_from_text

    text = V1.replace("(131072)", "(131,072)").replace("is 42816.", "is 42,816.")
    finding = fire("KV_CACHE_TOO_SMALL_FOR_MAX_LEN", complete_facts(facts_from_text(text)))
    assert "(131072 tokens; about 42816 fit)" in finding.title and "--max-model-len 41984" in text_of(finding)
    assert finding.details["needed_gib"] == 16.0 and finding.details["available_gib"] == 5.23


def test_the_message_without_parsed_facts_still_diagnoses_without_numbers():
    finding = fire("KV_CACHE_TOO_SMALL_FOR_MAX_LEN", facts(V1))
    assert finding.title.endswith("max_model_len.") and finding.details["max_model_len"] == 131072
    assert "lower --max-model-len to the length you actually need" in text_of(finding)


def test_concurrency_with_a_grouped_length_and_a_count_too_long_to_be_real():
    assert "--max-model-len 26624" in text_of(
        fire("KV_CACHE_CONCURRENCY_BELOW_ONE", facts("Maximum concurrency for 32,768 tokens per request: 0.82x"))
    )
    assert (
        fire("KV_CACHE_CONCURRENCY_BELOW_ONE", facts(f"Maximum concurrency for {'9' * 19} tokens per request: 0.82x"))
        is None
    )
