"""The package list: name normalisation, the packages that matter, schema caps."""

from __future__ import annotations

from pathlib import Path

from vllm_bug.bundler import packages as pk

PIP_LIST = Path(__file__).parent / "fixtures" / "device" / "h200" / "pip-list.txt"


def real_pip_list() -> dict[str, str]:
    rows = PIP_LIST.read_text().splitlines()[2:]  # skip the header and its dashes
    return dict(line.split()[:2] for line in rows if line.strip())


def test_normalise_name():
    assert pk.normalise_name("Flash_Attn") == "flash-attn"
    assert pk.normalise_name("huggingface.hub") == "huggingface-hub"
    assert pk.normalise_name("nvidia-nccl-cu12") == "nvidia-nccl-cu12"


def test_key_versions_from_a_real_h200_pip_list():
    packages = pk.clean_packages(real_pip_list())
    keys = pk.key_versions(packages)
    assert keys["torch"] == "2.11.0"
    assert keys["nvidia-cudnn-cu13"] == "9.19.0.56"
    assert "numpyro" not in keys and "accelerate" not in keys
    assert list(keys)[:2] == [k for k in pk.KEY_PACKAGES if k in keys][:2]
    nvidia = [k for k in keys if k.startswith("nvidia-") and k not in pk.KEY_PACKAGES]
    assert nvidia == sorted(nvidia) and len(nvidia) >= 10


def test_clean_packages_caps_and_keeps_key_packages(monkeypatch):
    monkeypatch.setattr(pk, "MAX_PACKAGES", 10)
    many = {f"pkg{i:03d}": "1.0" for i in range(50)}
    many.update({"torch": "2.9.0", "nvidia-nccl-cu12": "2.27.3", "Weird_Name": "x" * 500})
    cleaned = pk.clean_packages(many)
    assert len(cleaned) == 10
    assert cleaned["torch"] == "2.9.0" and cleaned["nvidia-nccl-cu12"] == "2.27.3"
    assert list(cleaned) == sorted(cleaned)


def test_clean_packages_truncates_long_versions():
    cleaned = pk.clean_packages({"Odd.Pkg": "1" * 1000, "": "1", 3: "x"})
    assert cleaned == {"odd-pkg": "1" * pk.MAX_VERSION_CHARS}
