"""What the estimate assumes about vLLM, as named numbers; the explanation prints them as assumptions.

- the activation/overhead allowance: a fixed part for the CUDA context, CUDA graphs and memory
  outside torch; NCCL buffers when more than one GPU; the activation peak of one forward pass of
  ASSUMED_BATCHED_TOKENS tokens; the sampler's float32 logits for max_num_seqs requests;
- FP8 KV cache support: `--kv-cache-dtype fp8` (e4m3) is suggested only on compute capability
  >= FP8_KV_MIN_CC. On Ampere, vLLM V1's Triton attention path fails with "type fp8e4nv not
  supported in this architecture" (vllm-project/vllm#26431); e5m2 is a storage-only format that has
  worked on A100 in the past, so it is mentioned as a caveat, never suggested.
"""

from __future__ import annotations

from vllm_bug.analyzer.memory.units import GIB

BLOCK_TOKENS = 16  # vLLM's default KV block size: token capacity comes in whole blocks
FIXED_OVERHEAD_BYTES = int(1.5 * GIB)  # CUDA context, CUDA graphs, allocations outside torch
MULTI_GPU_OVERHEAD_BYTES = int(0.5 * GIB)  # NCCL / custom all-reduce buffers
ASSUMED_BATCHED_TOKENS = 8192  # tokens in vLLM's profiling forward pass (max_num_batched_tokens)
SAMPLER_LOGIT_BYTES = 4  # the sampler warm-up holds float32 logits for max_num_seqs requests
FP8_KV_MIN_CC = (8, 9)
DEFAULT_GPU_MEMORY_UTILIZATION = 0.92  # vLLM's default since it moved from 0.90
MAX_TP_SEARCHED = 64
