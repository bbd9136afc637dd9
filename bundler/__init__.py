"""Collect side: probes, redaction, log capture and bundle writing. Never imports vllm or torch."""
