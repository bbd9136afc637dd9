"""vllm-bug: collect complete, redacted bug bundles from failed vLLM runs and diagnose them offline."""

__version__ = "0.1.0"
