"""The target-interpreter probes, against fake interpreters and fake torch/vllm packages on disk."""

from __future__ import annotations

import shutil
import stat
import sys
import textwrap
from pathlib import Path

import pytest

from vllm_bug.bundler import probes_python as pp
from vllm_bug.bundler.runner import Manifest

FAKE_TORCH = """
import types
__version__ = "2.9.0+cu128"
__file__ = __file__
version = types.SimpleNamespace(cuda="12.8", hip=None, debug=False, git_version="abc123")
from . import backends  # like the real torch: backends.xnnpack is a submodule not imported here
class _Nccl:
    @staticmethod
    def version():
        return (2, 27, 3)
class cuda:
    nccl = _Nccl
    @staticmethod
    def get_arch_list():
        return ["sm_80", "sm_90", "sm_100"]
    @staticmethod
    def is_available():
        return False
    @staticmethod
    def device_count():
        return 0
    @staticmethod
    def init():
        raise AssertionError("the probe must never create a CUDA context")
"""


def make_interpreter(tmp_path: Path, body: str, name: str = "python") -> str:
    """A shell script standing in for a target interpreter."""
    path = tmp_path / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(path.stat().st_mode | stat.S_IXUSR)
    return str(path)


def python_with(tmp_path: Path, site: Path, flags: str = "") -> str:
    return make_interpreter(tmp_path, f'PYTHONPATH="{site}" exec "{sys.executable}" {flags} "$@"')


FAKE_TORCH_BACKENDS = {
    "backends/__init__.py": "class cudnn:\n    @staticmethod\n    def version():\n        return 91002\n",
    "backends/xnnpack.py": "enabled = True\n",
}


def write_fake_torch(site: Path, init_text: str = FAKE_TORCH) -> None:
    write_pkg(site, "torch", {"__init__.py": init_text, **FAKE_TORCH_BACKENDS})


def write_pkg(site: Path, name: str, files: dict[str, str]) -> None:
    for rel, text in files.items():
        target = site / name / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(textwrap.dedent(text))


def write_dist(
    site: Path, name: str, version: str, requires: list[str] = (), direct_url: str | None = None, record: list[str] = ()
) -> None:
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(parents=True)
    lines = ["Metadata-Version: 2.1", f"Name: {name}", f"Version: {version}"]
    lines += [f"Requires-Dist: {r}" for r in requires]
    (info / "METADATA").write_text("\n".join(lines) + "\n")
    if direct_url:
        (info / "direct_url.json").write_text(direct_url)
    if record:
        (info / "RECORD").write_text("\n".join(record) + "\n")


@pytest.fixture
def site(tmp_path):
    site = tmp_path / "site"
    site.mkdir()
    return site


def test_torch_facts_without_a_cuda_context(tmp_path, site):
    write_fake_torch(site)
    manifest = Manifest()
    imports = pp.collect_imports(python_with(tmp_path, site), manifest, timeout_s=20)
    torch = pp.build_torch_section({"torch": {"installed": True, "version": "2.9.0+cu128"}}, imports)
    assert torch["version"] == "2.9.0+cu128"
    assert torch["cuda"] == "12.8"
    assert torch["cudnn"] == "91002"
    assert torch["arch_list"] == ["sm_80", "sm_90", "sm_100"]
    assert torch["cuda_available"] is False and torch["device_count"] == 0
    assert torch["nccl_version"] == "2.27.3"
    assert torch["xnnpack"] is True
    assert torch["import_ok"] is True
    assert "errors" not in torch  # init() was never called
    assert [r.status for r in manifest.records] == ["ok"]


def test_torch_and_vllm_not_installed(tmp_path, site):
    manifest = Manifest()
    python = python_with(tmp_path, site, "-S")
    metadata = pp.collect_metadata(python, manifest, timeout_s=20)
    imports = pp.collect_imports(python, manifest, timeout_s=20)
    torch = pp.build_torch_section(metadata, imports)
    vllm = pp.build_vllm_section(metadata, imports)
    assert torch["installed"] is False and torch["import_ok"] is None
    assert "not installed" in torch["error"]
    assert vllm["installed"] is False and vllm["import_ok"] is None
    assert {r.status for r in manifest.records} == {"ok"}


def test_vllm_import_failure_is_kept_with_its_traceback(tmp_path, site):
    write_fake_torch(site)
    write_pkg(
        site,
        "vllm",
        {
            "__init__.py": """
        def _load():
            raise ImportError("libcudart.so.12: cannot open shared object file: No such file or directory")
        _load()
        """
        },
    )
    imports = pp.collect_imports(python_with(tmp_path, site), Manifest(), timeout_s=20)
    vllm = pp.build_vllm_section({}, imports)
    assert vllm["import_ok"] is False
    assert "libcudart.so.12" in vllm["import_error"]
    assert vllm["import_error"].startswith("ImportError")
    assert "in _load" in vllm["import_traceback"]
    assert pp.build_torch_section({}, imports)["version"] == "2.9.0+cu128"


def test_vllm_C_segfault_keeps_torch_facts(tmp_path, site):
    write_fake_torch(site)
    write_pkg(
        site,
        "vllm",
        {
            "__init__.py": "__version__ = '0.11.0'\n",
            "_C.py": "import os, signal\nos.kill(os.getpid(), signal.SIGSEGV)\n",
        },
    )
    manifest = Manifest()
    imports = pp.collect_imports(python_with(tmp_path, site), manifest, timeout_s=20)
    assert imports["stalled_in"] == "vllm_c_start"
    torch = pp.build_torch_section({}, imports)
    vllm = pp.build_vllm_section({}, imports)
    assert torch["cuda"] == "12.8"
    assert vllm["import_ok"] is True and vllm["c_import_ok"] is False
    assert "SIGSEGV" in vllm["c_import_error"]
    (record,) = manifest.records
    assert record.status == "error" and record.exit_code == -signal_number("SIGSEGV")
    assert "crashed" in record.error


def signal_number(name: str) -> int:
    import signal

    return int(getattr(signal, name))


def test_hang_importing_torch_is_a_timeout(tmp_path, site):
    write_pkg(site, "torch", {"__init__.py": "import time\ntime.sleep(60)\n"})
    manifest = Manifest()
    imports = pp.collect_imports(python_with(tmp_path, site), manifest, timeout_s=1.5)
    torch = pp.build_torch_section({"torch": {"installed": True, "version": "2.9.0"}}, imports)
    assert torch["import_ok"] is False
    assert "hung" in torch["error"] and "while importing torch" in torch["error"]
    assert torch["version"] == "2.9.0"  # from metadata, still there
    (record,) = manifest.records
    assert record.status == "timeout" and record.duration_s < 10


def test_hang_importing_vllm_keeps_the_torch_line(tmp_path, site):
    write_fake_torch(site)
    write_pkg(site, "vllm", {"__init__.py": "import time\ntime.sleep(60)\n"})
    manifest = Manifest()
    imports = pp.collect_imports(python_with(tmp_path, site), manifest, timeout_s=3)
    torch = pp.build_torch_section({}, imports)
    vllm = pp.build_vllm_section({}, imports)
    assert torch["version"] == "2.9.0+cu128" and torch["import_ok"] is True
    assert vllm["import_ok"] is False and "did not finish" in vllm["import_error"]
    assert manifest.records[0].status == "timeout"


def test_library_prints_on_stdout_do_not_confuse_the_probe(tmp_path, site):
    write_fake_torch(site, 'print(\'INFO noisy torch import {"stage": "torch"}\')\n' + FAKE_TORCH)
    manifest = Manifest()
    imports = pp.collect_imports(python_with(tmp_path, site), manifest, timeout_s=20)
    assert imports["torch"]["version"] == "2.9.0+cu128"
    assert "noisy torch import" in imports["stderr_tail"]
    assert manifest.records[0].status == "ok" and not manifest.records[0].error


def test_garbage_output_is_an_error_record(tmp_path):
    python = make_interpreter(tmp_path, 'echo "Segmentation fault? {not json"; echo "@@vllm-bug-probe@@ [1,2]"')
    manifest = Manifest()
    metadata = pp.collect_metadata(python, manifest, timeout_s=5)
    assert "error" in metadata
    (record,) = manifest.records
    assert record.status == "error" and "no usable record" in record.error


def test_interpreter_that_segfaults_at_start(tmp_path):
    python = make_interpreter(tmp_path, f'exec "{sys.executable}" -c "import os; os.kill(os.getpid(), 11)"')
    manifest = Manifest()
    imports = pp.collect_imports(python, manifest, timeout_s=5)
    torch = pp.build_torch_section({}, imports)
    assert "crashed" in torch["error"] and "SIGSEGV" in torch["error"]
    assert manifest.records[0].exit_code == -11


def test_missing_interpreter_is_recorded(tmp_path):
    manifest = Manifest()
    metadata = pp.collect_metadata(str(tmp_path / "no-python"), manifest, timeout_s=5)
    assert "not found" in metadata["error"]
    assert manifest.records[0].status == "missing"


def test_metadata_versions_requirements_and_build_variant(tmp_path, site):
    write_dist(
        site,
        "vllm",
        "0.11.0+cu128",
        requires=[
            "torch==2.8.0",
            "transformers>=4.56.0",
            "ray[cgraph]>=2.48.0",
            'pytest; extra == "test"',
            'pywin32; sys_platform == "win32"',
            "xgrammar==0.1.25",
        ],
        direct_url='{"url": "file:///src/vllm", "dir_info": {"editable": true}}',
    )
    write_dist(site, "torch", "2.9.0+cu128")
    write_dist(site, "transformers", "4.57.1")
    write_dist(site, "Flash_Attn", "2.8.3")
    write_dist(site, "nvidia-nccl-cu12", "2.27.3")
    write_dist(site, "ray", "2.40.0")  # ahead of any real Ray on the path (the test extra installs one)
    write_pkg(site, "vllm", {"__init__.py": ""})
    metadata = pp.collect_metadata(python_with(tmp_path, site), Manifest(), timeout_s=20)
    packages = metadata["packages"]
    assert packages["flash-attn"] == "2.8.3" and packages["nvidia-nccl-cu12"] == "2.27.3"
    vllm = pp.build_vllm_section(metadata, {})
    assert vllm["version"] == "0.11.0+cu128"
    assert vllm["build_variant"] == "cu128"
    assert vllm["editable"] is True
    assert vllm["location"] == str(site / "vllm")
    by_name = {r["name"]: r for r in vllm["requirements"]}
    assert set(by_name) == {"torch", "transformers", "ray", "xgrammar"}  # extras and win32 dropped
    assert by_name["torch"]["satisfied"] is False and by_name["torch"]["installed"] == "2.9.0+cu128"
    assert by_name["transformers"]["satisfied"] is True
    assert by_name["ray"]["satisfied"] is False and by_name["ray"]["installed"] == "2.40.0"
    assert by_name["xgrammar"]["satisfied"] is False and by_name["xgrammar"]["installed"] is None
    assert "torch==2.8.0" in vllm["requirements_unmet"]


def test_build_variant_from_torch_pin_and_no_packaging(tmp_path, site):
    write_dist(site, "vllm", "0.11.0", requires=["torch==2.8.0", 'pytest; extra == "test"'])
    write_dist(site, "torch", "2.8.0")
    # -S: no site-packages, so neither packaging nor pip's vendored copy can be imported
    metadata = pp.collect_metadata(python_with(tmp_path, site, "-S"), Manifest(), timeout_s=20)
    vllm = pp.build_vllm_section(metadata, {})
    assert vllm["requirement_parser"] == "bundled"  # the probe's own evaluator stands in for packaging
    assert vllm["build_variant"] == "default wheel (torch==2.8.0)"
    assert [r["satisfied"] for r in vllm["requirements"]] == [True]
    assert vllm["requirements"][0]["installed"] == "2.8.0"


def write_broken_environment(site: Path) -> None:
    """vLLM without two of its requirements, and xgrammar beside an apache-tvm-ffi older than it needs."""
    write_dist(
        site,
        "vllm",
        "0.22.0",
        requires=[
            "flashinfer-python==0.5.3",
            "torch==2.9.0",
            'llguidance<1.8.0,>=1.7.0; platform_machine == "x86_64" or platform_machine == "arm64" or '
            'platform_machine == "aarch64" or platform_machine == "ppc64le"',
            'pywin32; sys_platform == "win32"',
            'pytest; extra == "test"',
            "xgrammar==0.1.27",
        ],
    )
    write_dist(site, "torch", "2.9.0")
    write_dist(
        site,
        "xgrammar",
        "0.1.27",
        requires=["apache-tvm-ffi>=0.1.5", "torch>=1.10.0"],
        record=["xgrammar/__init__.py,,", "xgrammar-0.1.27.dist-info/METADATA,,"],
    )
    write_dist(
        site,
        "apache-tvm-ffi",
        "0.1.0",
        record=[
            "tvm_ffi/__init__.py,,",
            "tvm_ffi/libtvm_ffi.so,,",
            "apache_tvm_ffi-0.1.0.dist-info/METADATA,,",
            "../../bin/tvm-ffi-config,,",
        ],
    )


def pip_check_lines(python: str) -> set[str]:
    import subprocess

    done = subprocess.run([python, "-m", "pip", "check"], capture_output=True, text=True, timeout=120)
    return {line.strip() for line in done.stdout.splitlines() if "requires" in line or "has requirement" in line}


def pip_check_wording(problem: dict) -> str:
    """A problem as `pip check` prints it, to compare the two."""
    if problem["problem"] == "missing":
        return f"{problem['package']} {problem['version']} requires {problem['name']}, which is not installed."
    return (
        f"{problem['package']} {problem['version']} has requirement {problem['requirement']}, "
        f"but you have {problem['name']} {problem['installed']}."
    )


def test_requirement_problems_are_what_pip_check_reports(tmp_path, site):
    write_broken_environment(site)
    python = python_with(tmp_path, site)
    check = pp.collect_metadata(python, Manifest(), timeout_s=20)["requirements_check"]
    assert check["parser"] in ("packaging", "pip._vendor.packaging")
    problems = {(p["package"], p["name"]): p for p in check["problems"]}
    assert set(problems) == {("vllm", "flashinfer-python"), ("vllm", "llguidance"), ("xgrammar", "apache-tvm-ffi")}
    assert problems["vllm", "llguidance"]["specifier"] in ("<1.8.0,>=1.7.0", ">=1.7.0,<1.8.0")
    assert problems["xgrammar", "apache-tvm-ffi"] == {
        "package": "xgrammar",
        "version": "0.1.27",
        "requirement": "apache-tvm-ffi>=0.1.5",
        "name": "apache-tvm-ffi",
        "specifier": ">=0.1.5",
        "installed": "0.1.0",
        "problem": "conflict",
    }
    assert check["modules"] == {"apache-tvm-ffi": ["tvm_ffi"], "xgrammar": ["xgrammar"]}  # vllm's: no RECORD
    assert {pip_check_wording(p) for p in check["problems"]} == pip_check_lines(python)


def test_bundled_requirement_checks_agree_with_packaging(tmp_path, site):
    write_broken_environment(site)
    with_packaging = pp.collect_metadata(python_with(tmp_path, site), Manifest(), timeout_s=20)
    bundled = pp.collect_metadata(python_with(tmp_path, site, "-S"), Manifest(), timeout_s=20)
    assert bundled["requirements_check"]["parser"] == "bundled"

    def ours(metadata):  # -S also hides the test interpreter's packages, which other distributions may need
        return [p for p in metadata["requirements_check"]["problems"] if p["package"] in ("vllm", "xgrammar")]

    assert len(ours(bundled)) == 3 and ours(bundled) == ours(with_packaging)


def test_parse_records_ignores_foreign_lines():
    records, garbage = pp.parse_records(
        'hello\n@@vllm-bug-probe@@ {"stage": "torch", "torch": {}}\n@@vllm-bug-probe@@ {oops\n'
    )
    assert [r["stage"] for r in records] == ["torch"]
    assert garbage == ["hello", "@@vllm-bug-probe@@ {oops"]


def test_probe_source_is_stdlib_only():
    source = pp.probe_source()
    imports = {
        line.split()[1].split(".")[0]
        for line in source.splitlines()
        if line.startswith(("import ", "from ")) and not line.startswith("from __future__")
    }
    assert imports <= set(sys.stdlib_module_names)


def test_metadata_says_the_interpreters_build_bitness_and_platform(tmp_path, site):
    import platform
    import struct

    python = pp.collect_metadata(python_with(tmp_path, site), Manifest(), timeout_s=20)["python"]
    assert python["build"] == " ".join(sys.version.split())  # "3.12.3 (main, Aug 31 2026, 10:18:26) [GCC 13.3.0]"
    assert python["bits"] == struct.calcsize("P") * 8
    assert python["platform"] == platform.platform()
    assert "conda_packages" not in pp.collect_metadata(python_with(tmp_path, site), Manifest(), timeout_s=20)


def test_conda_packages_come_from_conda_meta_only_in_a_conda_environment(tmp_path):
    import subprocess

    prefix = tmp_path / "conda-env"  # an environment whose sys.prefix holds conda-meta, as conda's do
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(prefix)], check=True, timeout=120)
    (prefix / "conda-meta").mkdir()
    for record in (
        "pytorch-2.5.1-py3.12_cuda12.4_cudnn9.1.0_0.json",
        "cuda-cudart-12.4.127-0.json",
        "python-3.12.7-h2628c8c_0_cpython.json",
        "history",
        "libgcc-ng-14.2.0-h69a702a_1.json",
    ):
        (prefix / "conda-meta" / record).write_text("{}")
    metadata = pp.collect_metadata(str(prefix / "bin" / "python"), Manifest(), timeout_s=20)
    assert pp.conda_packages_of(metadata) == {
        "cuda-cudart": "12.4.127",
        "libgcc-ng": "14.2.0",
        "python": "3.12.7",
        "pytorch": "2.5.1",
    }
    assert pp.conda_packages_of({"packages": {}}) is None


def test_probe_source_is_python_3_8_syntax():
    import ast

    ast.parse(pp.probe_source(), feature_version=(3, 8))


def oldest_python() -> str | None:
    """A Python 3.8 that runs here (on PATH, or one pyenv installed), or None."""
    import subprocess

    candidates = [shutil.which("python3.8"), *sorted(Path.home().glob(".pyenv/versions/3.8*/bin/python3.8"))]
    for candidate in filter(None, candidates):
        if subprocess.run([str(candidate), "-c", "pass"], capture_output=True, timeout=60).returncode == 0:
            return str(candidate)
    return None


def test_metadata_probe_runs_on_python_3_8(tmp_path, site):
    python38 = oldest_python()
    if python38 is None:
        pytest.skip("no Python 3.8 here")
    write_broken_environment(site)
    python = make_interpreter(tmp_path, f'PYTHONPATH="{site}" exec "{python38}" -S "$@"')
    check = pp.collect_metadata(python, Manifest(), timeout_s=30)["requirements_check"]
    assert check["parser"] == "bundled"
    assert {(p["package"], p["name"], p["problem"]) for p in check["problems"]} >= {
        ("vllm", "flashinfer-python", "missing"),
        ("xgrammar", "apache-tvm-ffi", "conflict"),
    }
