"""GPU and MIG UUIDs are hashed in every shape a bundle quotes them, the way its GPU entries record them."""

from __future__ import annotations

from vllm_bug.bundler.nvidia_smi import scrub_identifiers
from vllm_bug.schema.identifiers import hash_gpu_uuids, identifier_hash
from vllm_bug.schema.redact import Redactor

UUID = "GPU-8932f937-d72c-4106-c12f-20bd9faed9f6"
MIG = "MIG-4a1f2c3d-0e9b-5c7d-8e6f-a1b2c3d4e5f6"
HASHED = f"GPU-<hashed:{identifier_hash(UUID)}>"


def redact(text: str) -> str:
    return Redactor(home=None).text(text)


def test_a_uuid_in_a_log_line_is_hashed():
    line = f"INFO 06-01 12:00:00 [worker.py:12] using device {UUID} for rank 0"
    assert redact(line) == f"INFO 06-01 12:00:00 [worker.py:12] using device {HASHED} for rank 0"


def test_a_uuid_in_a_traceback_is_hashed():
    tb = (
        "Traceback (most recent call last):\n"
        '  File "/x/worker.py", line 3, in init\n'
        f"RuntimeError: device {UUID.lower()} is not visible (CUDA_VISIBLE_DEVICES={UUID})\n"
    )
    out = redact(tb)
    assert UUID[4:] not in out.lower()
    assert f"(CUDA_VISIBLE_DEVICES={HASHED})" in out
    assert f"device gpu-<hashed:{identifier_hash(UUID.lower())}>" in out  # the digest of the text as written


def test_a_uuid_in_argv_is_hashed():
    argv = ["env", f"CUDA_VISIBLE_DEVICES={UUID}", "vllm", "serve", "m", "--device", UUID]
    assert Redactor(home=None).argv(argv) == [
        "env",
        f"CUDA_VISIBLE_DEVICES={HASHED}",
        "vllm",
        "serve",
        "m",
        "--device",
        HASHED,
    ]


def test_a_uuid_in_an_env_value_is_hashed():
    env = Redactor(home=None).env({"CUDA_VISIBLE_DEVICES": f"{UUID},1", "VLLM_DEVICE_NOTE": f"on {UUID}"})
    assert env == {"CUDA_VISIBLE_DEVICES": f"{HASHED},1", "VLLM_DEVICE_NOTE": f"on {HASHED}"}


def test_a_uuid_anywhere_in_a_payload_is_hashed():
    payload = {"log": {"tracebacks": [f"x {UUID}"]}, "command": {"argv": ["a", UUID]}, "note": {UUID: 1}}
    scrubbed = Redactor(home=None).scrub(payload)
    assert scrubbed == {"log": {"tracebacks": [f"x {HASHED}"]}, "command": {"argv": ["a", HASHED]}, "note": {HASHED: 1}}


def test_a_mig_uuid_keeps_its_kind_and_the_legacy_mig_form_hides_its_gpu():
    assert redact(MIG) == f"MIG-<hashed:{identifier_hash(MIG)}>"
    assert redact(f"MIG-{UUID}/1/0") == f"MIG-{HASHED}/1/0"


def test_hashing_twice_changes_nothing_and_near_uuids_are_kept():
    once = redact(f"{UUID} {MIG}")
    assert redact(once) == once
    for kept in (
        "GPU-8932f937",
        "GPU-8932f937-d72c-4106-c12f-20bd9faed9f6x",
        "xGPU-8932f937-d72c-4106-c12f-20bd9faed9f6",
    ):
        assert redact(kept) == kept


def test_nvidia_smi_text_hashes_uuids_the_same_way():
    listing = f"GPU 0: NVIDIA H200 (UUID: {UUID})"
    assert scrub_identifiers(listing) == f"GPU 0: NVIDIA H200 (UUID: {HASHED})" == hash_gpu_uuids(listing)


def test_the_prefix_may_be_in_any_case_but_must_name_a_gpu_or_a_mig_device():
    for prefix in ("GPU", "gpu", "Gpu", "MIG", "mig"):
        assert redact(f"{prefix}{UUID[3:]}") == f"{prefix}-<hashed:{identifier_hash(prefix + UUID[3:])}>"
    for kept in ("GIG" + UUID[3:], "MPU" + UUID[3:], "aGPU" + UUID[3:], "_MIG" + UUID[3:]):
        assert redact(kept) == kept
    assert redact("(" + UUID + ")") == f"({HASHED})"
