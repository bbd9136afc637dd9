"""vLLM's facts without its package import (the fast path), and the full import when something looks wrong.

The fake vLLM is shaped like the real 0.22.0 wheel: its _version.py is the real file, its torch pin and
_C.abi3.so name come from a bundle collected on an H200 with that wheel installed, and its __init__.py
raises, so a test shows whether the probe ran it. Its _C is a compiled stub (the C compiler and Python's
headers are needed; without them these tests skip and say so).
"""

from __future__ import annotations

import importlib.machinery
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from test_probes_python import FAKE_TORCH, python_with, write_dist, write_fake_torch, write_pkg
from vllm_bug.bundler import probes_python as pp
from vllm_bug.bundler.runner import Manifest
from vllm_bug.schema.bundle import read_bundle

FIXTURES = Path(__file__).parent / "fixtures"
REAL_DIR = FIXTURES / "device" / "h200-vllm"
REAL_BUNDLE = FIXTURES / "bundles" / "h200-1gpu-vllm-collect.zst"
REAL_VERSION_FILE = (REAL_DIR / "vllm-0.22.0-_version.py.txt").read_text()
INIT_THAT_MUST_NOT_RUN = "raise RuntimeError('vllm/__init__.py ran')\n"

STUB_C = r"""
#include <Python.h>
%(declare)s
static struct PyModuleDef definition = {PyModuleDef_HEAD_INIT, "_C", NULL, -1, NULL};
PyMODINIT_FUNC PyInit__C(void) { %(body)s return PyModule_Create(&definition); }
"""


def real_vllm_facts() -> dict:
    return read_bundle(REAL_BUNDLE)["payload"]["vllm"]


def extension_suffix() -> str:
    suffixes = importlib.machinery.EXTENSION_SUFFIXES
    return ".abi3.so" if ".abi3.so" in suffixes else suffixes[0]


def compile_stub(target: Path, declare: str = "", body: str = "") -> None:
    compiler = shutil.which("cc") or shutil.which("gcc")
    include = Path(sysconfig.get_paths()["include"])
    if not compiler or not (include / "Python.h").exists():
        pytest.skip("needs a C compiler and Python's headers to build a stand-in for vllm/_C")
    source = target.with_suffix(".c")
    source.write_text(STUB_C % {"declare": declare, "body": body})
    subprocess.run([compiler, "-shared", "-fPIC", f"-I{include}", str(source), "-o", str(target)], check=True)
    source.unlink()


def real_torch_pin() -> str:
    return real_vllm_facts()["torch_requirement"]


def install_fake_vllm(
    site: Path,
    *,
    init: str = INIT_THAT_MUST_NOT_RUN,
    version_file: str | None = REAL_VERSION_FILE,
    dist_version: str | None = "0.22.0",
    torch_version: str = "2.11.0+cu130",
    c_declare: str = "",
    c_body: str = "",
    with_c: bool = True,
) -> Path:
    write_fake_torch(site, FAKE_TORCH.replace('"2.9.0+cu128"', repr(torch_version)))
    files = {"__init__.py": init}
    if version_file is not None:
        files["_version.py"] = version_file
    write_pkg(site, "vllm", files)
    if dist_version is not None:
        write_dist(site, "vllm", dist_version, requires=[real_torch_pin(), "numpy"])
    if with_c:
        compile_stub(site / "vllm" / ("_C" + extension_suffix()), c_declare, c_body)
    return site / "vllm"


@pytest.fixture
def site(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    return site


def probe(tmp_path: Path, site: Path, reason: str | None = None) -> tuple[dict, dict]:
    imports = pp.collect_imports(python_with(tmp_path, site), Manifest(), timeout_s=30, full_import_reason=reason)
    return imports, pp.build_vllm_section({}, imports)


def test_a_sound_install_is_read_without_running_vllms_package_import(tmp_path, site):
    package = install_fake_vllm(site)
    imports, vllm = probe(tmp_path, site)
    assert imports["error"] is None
    assert vllm["import_path"] == "fast" and "full_import_reasons" not in vllm
    assert vllm["import_ok"] is True and vllm["c_import_ok"] is True
    assert vllm["version"] == "0.22.0" and vllm["commit"] == real_vllm_facts()["commit"]
    assert imports["vllm"]["location"] == str(package)
    assert vllm["c_path"] == str(package / ("_C" + extension_suffix()))
    assert isinstance(vllm["c_load_s"], float)


def test_the_real_probe_output_from_an_h200_with_vllm_0_22(tmp_path):
    text = (REAL_DIR / "probe-imports.txt").read_text()
    fast_text, full_text = text.split("== imports forced full")
    for chunk, path in ((fast_text, "fast"), (full_text, "full")):
        records, garbage = pp.parse_records(chunk)
        assert [g for g in garbage if not g.startswith(("==", "exit"))] == []
        imports = {"vllm": [r for r in records if r["stage"] == "vllm"][0]["vllm"], "error": None}
        vllm = pp.build_vllm_section({}, imports)
        assert vllm["import_path"] == path
        assert vllm["import_ok"] is True and vllm["c_import_ok"] is True
        assert vllm["version"] == "0.22.0" and vllm["commit"] == "g0b3ba88f1"
    assert "vllm_start" not in fast_text and "vllm_c_direct_start" in fast_text
    assert '"full_import_reasons": ["forced by the benchmark"]' in full_text


def test_the_fast_bundle_keeps_every_fact_the_full_import_gave(tmp_path):
    before = read_bundle(REAL_DIR / "collect-before-e382ce7.zst")["payload"]["vllm"]
    after = real_vllm_facts()
    assert set(before) - set(after) == {"import_s"}  # the full import's time; the fast path has c_load_s
    for key in set(before) - {"import_s"}:
        assert after[key] == before[key], key
    assert after["import_path"] == "fast"


def test_a_torch_pin_that_the_imported_torch_misses_imports_vllm_fully(tmp_path, site):
    install_fake_vllm(site, torch_version="2.10.0+cu128")
    _, vllm = probe(tmp_path, site)
    assert vllm["import_path"] == "full"
    assert vllm["full_import_reasons"] == ["vllm requires torch==2.11.0; torch 2.10.0+cu128 imported"]
    assert vllm["import_ok"] is False
    assert "vllm/__init__.py ran" in vllm["import_error"] and "Traceback" in vllm["import_traceback"]


def test_an_extension_that_does_not_load_keeps_both_tracebacks(tmp_path, site):
    install_fake_vllm(
        site,
        init="__version__ = '0.22.0'\n",
        c_declare="int _ZN3c1017missing_in_this_torchEv(void);",
        c_body="_ZN3c1017missing_in_this_torchEv();",
    )
    _, vllm = probe(tmp_path, site)
    assert vllm["import_path"] == "full"
    assert vllm["full_import_reasons"] == [f"loading _C{extension_suffix()} failed"]
    assert "undefined symbol: _ZN3c1017missing_in_this_torchEv" in vllm["c_direct_error"]
    assert vllm["import_ok"] is True and vllm["c_import_ok"] is False
    assert "undefined symbol" in vllm["c_import_error"] and "_vllm_full_import" in vllm["c_import_traceback"]


def test_an_extension_that_crashes_while_loading_is_blamed_on_the_extension(tmp_path, site):
    install_fake_vllm(site, c_declare="#include <signal.h>", c_body="raise(SIGSEGV);")
    imports, vllm = probe(tmp_path, site)
    assert imports["stalled_in"] == "vllm_c_direct_start"
    assert vllm["import_path"] == "fast" and vllm["import_ok"] is None
    assert vllm["c_import_ok"] is False
    assert "did not finish" in vllm["c_import_error"] and "SIGSEGV" in vllm["c_import_error"]


@pytest.mark.parametrize(
    "change, reason",
    [
        ({"with_c": False}, "no compiled extension vllm/_C* in "),
        ({"version_file": None}, "vllm/_version.py is missing or holds no version"),
        ({"dist_version": "0.21.0"}, "vllm/_version.py says 0.22.0, the installed metadata 0.21.0"),
        ({"dist_version": None}, "no installed vllm distribution describes "),
    ],
)
def test_signs_of_a_broken_install_send_the_probe_down_the_full_import(tmp_path, site, change, reason):
    install_fake_vllm(site, **change)
    _, vllm = probe(tmp_path, site)
    assert vllm["import_path"] == "full"
    assert vllm["full_import_reasons"][0].startswith(reason)
    assert vllm["import_ok"] is False and "vllm/__init__.py ran" in vllm["import_error"]


def test_a_source_tree_shadowing_the_installed_vllm_is_imported_fully(tmp_path, site):
    install_fake_vllm(site)
    checkout = tmp_path / "checkout"  # a clone of vLLM's repository: its package folder, no installed metadata
    install_fake_vllm(checkout, dist_version=None)
    python = python_with(tmp_path, Path(f"{checkout}:{site}"))
    imports = pp.collect_imports(python, Manifest(), timeout_s=30)
    vllm = pp.build_vllm_section({}, imports)
    assert imports["vllm"]["location"] == str(checkout / "vllm")
    assert vllm["full_import_reasons"] == [
        f"vllm imports from {checkout / 'vllm'}, but the installed distribution is in {site / 'vllm'}"
    ]


def test_a_namespace_package_named_vllm_is_imported_fully(tmp_path, site):
    write_fake_torch(site)
    (site / "vllm").mkdir()
    _, vllm = probe(tmp_path, site)
    assert vllm["import_path"] == "full"
    assert vllm["full_import_reasons"][0].startswith("vllm is not a regular package here")
    assert vllm["import_ok"] is True and vllm["c_import_ok"] is False  # what `import vllm` says of such a folder


def test_a_missing_logging_config_is_a_reason_to_import_fully(tmp_path, site, monkeypatch):
    install_fake_vllm(site)
    monkeypatch.setenv("VLLM_LOGGING_CONFIG_PATH", str(tmp_path / "absent.json"))
    _, vllm = probe(tmp_path, site)
    assert vllm["full_import_reasons"] == ["VLLM_LOGGING_CONFIG_PATH names no file (vLLM's import reads it)"]


def test_a_reason_from_the_caller_forces_the_full_import(tmp_path, site):
    install_fake_vllm(site, init="__version__ = '0.22.0'\n")
    _, vllm = probe(tmp_path, site, reason="the log reports: ImportError: libcudart.so.13")
    assert vllm["import_path"] == "full"
    assert vllm["full_import_reasons"] == ["the log reports: ImportError: libcudart.so.13"]
    assert vllm["import_ok"] is True and vllm["c_import_ok"] is True and isinstance(vllm["import_s"], float)


@pytest.mark.parametrize(
    "text, expected",
    [
        (None, None),
        ("INFO loading weights\nINFO done\n", None),
        (
            "x\n  ImportError: /venv/vllm/_C.abi3.so: undefined symbol: _ZN3c10\nmore",
            "the log reports: ImportError: /venv/vllm/_C.abi3.so: undefined symbol: _ZN3c10",
        ),
        (
            "ModuleNotFoundError: No module named 'vllm._C'",
            "the log reports: ModuleNotFoundError: No module named 'vllm._C'",
        ),
        (
            "OSError: libcudart.so.12: cannot open shared object file",
            "the log reports: OSError: libcudart.so.12: cannot open shared object file",
        ),
        ("an ImportErrorless line", None),
    ],
)
def test_import_trouble_in_a_log(text, expected):
    assert pp.import_trouble_in_log(text) == expected


@pytest.mark.parametrize(
    "log_text, tracebacks, expected",
    [
        (None, None, None),
        ("INFO Started server process\n", [], None),
        (
            "INFO x\n",
            [
                'Traceback (most recent call last):\n  File "a.py", line 1\nImportError: libcudart.so.13: '
                "cannot open shared object file"
            ],
            "the log reports: ImportError: libcudart.so.13: cannot open shared object file",
        ),
        (
            "(EngineCore pid=7) ModuleNotFoundError: No module named 'flash_attn'\n",
            [],
            "the log reports: (EngineCore pid=7) ModuleNotFoundError: No module named 'flash_attn'",
        ),
    ],
)
def test_collect_asks_for_the_full_import_when_the_log_shows_import_trouble(
    monkeypatch, log_text, tracebacks, expected
):
    from vllm_bug.bundler import collect
    from vllm_bug.bundler.logcapture import LogCapture

    seen = {}
    monkeypatch.setattr(pp, "collect_imports", lambda *args, **kwargs: seen.update(kwargs) or {})
    log = None
    if log_text is not None:
        log = LogCapture(
            source="file",
            name="serve.log",
            text=log_text,
            original_bytes=len(log_text),
            original_lines=log_text.count("\n"),
            truncated=False,
            tracebacks=tracebacks,
        )
    options = collect.CollectOptions(log=log, python_exe=sys.executable)
    collect.probe_functions(options, Manifest(), deadline=1e12)["python-imports"]()
    assert seen["full_import_reason"] == expected
