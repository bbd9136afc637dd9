"""Memory arithmetic for serving a model with vLLM: weights per GPU, KV cache per token, what fits.

Units: sizes are bytes; they are printed in GiB (2**30 bytes), the unit nvidia-smi's MiB and
vLLM's log lines use. Vendors' "80GB" is a marketing number: an A100-80GB reports 81920 MiB
(80.0 GiB), an H100 80GB HBM3 81559 MiB (79.6 GiB), an H200 143771 MiB (140.4 GiB).

Modules, each with one job (this package imports none of them, so importing one stays cheap):
- shape: a model's shape from a Hugging Face config.json (ModelShape, ShapeError)
- catalogue: the built-in models (data/models.json), looked up by name
- dtypes: bytes per element of each dtype vLLM accepts
- weights: parameter counts and the bytes of weights
- estimate: KV cache per token, valid parallel sizes, overhead, what fits (MemoryEstimate)
- explain: the arithmetic written out for people, suggestions and notes
- gpu_size: a GPU's memory from its name
- from_facts: the estimate for an analysed report's model, GPUs and engine arguments
- oom_phase: what vLLM was doing when the GPU ran out of memory
"""
