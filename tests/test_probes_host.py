"""Host facts from a fake root: /etc/os-release, /proc, a libstdc++ with several GLIBCXX versions."""

import os
import platform
import sys
from pathlib import Path

from conftest import FIXTURES, minimal_payload
from vllm_bug.bundler import probes_host as H
from vllm_bug.bundler.runner import Manifest
from vllm_bug.schema.bundle import make_envelope, validate

# PRETTY_NAME block exactly as the H200 machine printed it.
OS_RELEASE = (FIXTURES / "device" / "h200" / "basics.txt").read_text().split("== os-release\n")[1].split("== which")[0]
CPUINFO = """processor\t: 0
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9454 48-Core Processor
flags\t\t: fpu vme

processor\t: 1
vendor_id\t: AuthenticAMD
model name\t: AMD EPYC 9454 48-Core Processor
"""
MEMINFO = "MemTotal:       131907576 kB\nMemFree:        120000000 kB\n"


def fake_libstdcxx(path: Path, versions) -> Path:
    """An ELF-ish blob with version strings scattered between binary noise, as in a real .so."""
    path.parent.mkdir(parents=True, exist_ok=True)
    blob = b"\x7fELF\x02\x01\x01" + bytes(range(256))
    for version in versions:
        blob += b"\x00" + version.encode() + b"\x00" + bytes(range(200, 256))
    path.write_bytes(blob + b"GLIBCXX_TUNABLES\x00CXXABI_1.3.15\x00")
    return path


def fake_root(
    tmp_path: Path, libstdcxx_versions=("GLIBCXX_3.4", "GLIBCXX_3.4.9", "GLIBCXX_3.4.30", "GLIBCXX_3.4.29")
) -> Path:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/os-release").write_text(OS_RELEASE)
    (root / "proc/self").mkdir(parents=True)
    (root / "proc/cpuinfo").write_text(CPUINFO)
    (root / "proc/meminfo").write_text(MEMINFO)
    (root / "proc/version").write_text("Linux version 6.18.44 (gcc 13.3.0) #1 SMP\n")
    (root / "dev/shm").mkdir(parents=True)
    lib = fake_libstdcxx(root / "usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.33", libstdcxx_versions)
    (root / "proc/self/maps").write_text(
        "7f0000000000-7f0000100000 r--p 00000000 08:01 1 /usr/lib/x86_64-linux-gnu/libc.so.6\n"
        f"7f0000200000-7f0000300000 r-xp 00000000 08:01 2 /{lib.relative_to(root)}\n"
        "7ffd00000000-7ffd00021000 rw-p 00000000 00:00 0 [stack]\n"
    )
    return root


def assert_valid(host):
    payload = minimal_payload()
    payload["host"] = host
    validate(make_envelope(payload))


def test_host_section_from_a_fake_root(tmp_path):
    root = fake_root(tmp_path)
    manifest = Manifest()
    host = H.collect_host(manifest, environ={}, root=root)
    assert host["os"] == "Ubuntu 24.04.3 LTS"
    assert host["kernel"] == platform.release() and host["arch"] == platform.machine()
    assert host["glibcxx_max"] == "3.4.30"
    assert host["glibcxx_path"] == str(root / "usr/lib/x86_64-linux-gnu/libstdc++.so.6.0.33")
    assert host["cpu"]["model"] == "AMD EPYC 9454 48-Core Processor" and host["cpu"]["count"] == os.cpu_count()
    assert host["memory_total_bytes"] == 131907576 * 1024
    assert host["shm_total_bytes"] == os.statvfs(root / "dev/shm").f_blocks * os.statvfs(root / "dev/shm").f_frsize
    assert host["container"] == {"docker": False, "podman": False, "kubernetes": False, "wsl": False}
    assert host["python"]["version"] == platform.python_version()
    assert host["python"]["executable"] == sys.executable
    assert manifest.to_json() == [{"name": "host", "status": "ok", "duration_s": manifest.to_json()[0]["duration_s"]}]
    assert_valid(host)


def test_an_empty_root_gives_unknowns_not_errors(tmp_path):
    manifest = Manifest()
    host = H.collect_host(manifest, environ={}, root=tmp_path)
    assert host["os"] is None and host["memory_total_bytes"] is None and host["shm_total_bytes"] is None
    assert host["cpu"]["model"] is None
    assert manifest.to_json()[0]["status"] == "ok"
    assert_valid(host)


def test_glibcxx_versions_sort_numerically_not_as_text(tmp_path):
    lib = fake_libstdcxx(
        tmp_path / "libstdc++.so.6", ["GLIBCXX_3.4.9", "GLIBCXX_3.4.32", "GLIBCXX_3.4.4", "GLIBCXX_3.4"]
    )
    assert H.glibcxx_versions(lib) == ["3.4", "3.4.4", "3.4.9", "3.4.32"]


def test_glibcxx_read_is_capped(tmp_path):
    lib = tmp_path / "libstdc++.so.6"
    lib.write_bytes(b"GLIBCXX_3.4.20\x00" + b"\x00" * 5000 + b"GLIBCXX_3.4.33\x00")
    assert H.glibcxx_versions(lib, cap=1000) == ["3.4.20"]
    assert H.glibcxx_versions(lib) == ["3.4.20", "3.4.33"]


def test_libstdcxx_search_order_when_none_is_loaded(tmp_path):
    root = fake_root(tmp_path)
    (root / "proc/self/maps").write_text("")
    conda_prefix = tmp_path / "conda-env"
    fake_libstdcxx(conda_prefix / "lib/libstdc++.so.6", ["GLIBCXX_3.4.29"])
    ld_dir = root / "opt/custom/lib"
    fake_libstdcxx(ld_dir / "libstdc++.so.6", ["GLIBCXX_3.4.26"])
    # LD_LIBRARY_PATH beats the conda prefix, which beats the linker cache
    assert H.glibcxx_max(root, {"LD_LIBRARY_PATH": "/opt/custom/lib"}, str(conda_prefix))[0] == "3.4.26"
    assert H.glibcxx_max(root, {}, str(conda_prefix))[0] == "3.4.29"
    cache_lib = fake_libstdcxx(root / "usr/lib/x86_64-linux-gnu/libstdc++.so.6", ["GLIBCXX_3.4.32"])
    (root / "etc/ld.so.cache").write_bytes(
        b"glibc-ld.so.cache1.1\x00\x00libstdc++.so.6\x00/usr/lib/i386-linux-gnu/libstdc++.so.6\x00"
        b"libstdc++.so.6\x00/usr/lib/x86_64-linux-gnu/libstdc++.so.6\x00"
    )
    assert H.ld_cache_libstdcxx(root)[0] == "/usr/lib/x86_64-linux-gnu/libstdc++.so.6"
    assert H.glibcxx_max(root, {}, str(tmp_path / "no-env")) == ("3.4.32", str(cache_lib))


def test_container_hints(tmp_path):
    root = fake_root(tmp_path)
    assert not any(H.container_hints(root, {}, "6.8.0-45-generic").values())
    (root / ".dockerenv").write_text("")
    (root / "run").mkdir()
    (root / "run/.containerenv").write_text("engine=podman\n")
    hints = H.container_hints(root, {"KUBERNETES_SERVICE_HOST": "10.0.0.1"}, "5.15.167.4-microsoft-standard-WSL2")
    assert hints == {"docker": True, "podman": True, "kubernetes": True, "wsl": True}


def test_docker_seen_through_cgroups_and_wsl_through_proc_version(tmp_path):
    root = fake_root(tmp_path)
    (root / "proc/1").mkdir()
    (root / "proc/1/cgroup").write_text("12:memory:/docker/3f2a9c\n")
    (root / "proc/version").write_text("Linux version 5.15.153.1-microsoft-standard-WSL2 (root@1c602f52c2e4)\n")
    hints = H.container_hints(root, {}, "5.15.153.1")
    assert hints["docker"] and hints["wsl"] and not hints["podman"]


def test_python_env_kinds(tmp_path):
    system = tmp_path / "usr"
    system.mkdir()
    assert H.python_env_kind(str(system), str(system), {}) == "system"
    venv = tmp_path / "venv"
    venv.mkdir()
    (venv / "pyvenv.cfg").write_text("home = /usr/bin\ninclude-system-site-packages = false\nversion = 3.12.3\n")
    assert H.python_env_kind(str(venv), str(system), {}) == "venv"
    uv = tmp_path / "uv"
    uv.mkdir()
    (uv / "pyvenv.cfg").write_text("home = /usr/bin\nimplementation = CPython\nuv = 0.5.11\nversion_info = 3.12.3\n")
    assert H.python_env_kind(str(uv), str(system), {}) == "uv"
    conda = tmp_path / "miniconda3/envs/vllm"
    (conda / "conda-meta").mkdir(parents=True)
    assert H.python_env_kind(str(conda), str(conda), {}) == "conda"


def test_memory_limit_from_cgroups(tmp_path):
    root = fake_root(tmp_path)
    assert H.memory_limit_bytes(root) is None
    (root / "sys/fs/cgroup").mkdir(parents=True)
    (root / "sys/fs/cgroup/memory.max").write_text("max\n")
    assert H.memory_limit_bytes(root) is None
    (root / "sys/fs/cgroup/memory.max").write_text("68719476736\n")
    assert H.memory_limit_bytes(root) == 64 << 30


def test_a_failing_fact_is_recorded_and_the_rest_kept(tmp_path, monkeypatch):
    def broken(_root):
        raise PermissionError("cpuinfo is guarded")

    monkeypatch.setattr(H, "cpu_facts", broken)
    manifest = Manifest()
    host = H.collect_host(manifest, environ={}, root=fake_root(tmp_path))
    assert host["cpu"] == {} and host["os"] == "Ubuntu 24.04.3 LTS" and host["glibcxx_max"] == "3.4.30"
    (record,) = manifest.to_json()
    assert record["status"] == "error" and "cpuinfo is guarded" in record["error"]
    assert_valid(host)


# -- what torch's collect_env prints that the bundle lacked: CPU flags, sockets, NUMA, cuDNN files --------
# host-root holds /proc/cpuinfo, /etc/ld.so.cache and /sys/devices/system/node as read on an H200 machine;
# h200-torch-collect-env.txt is torch's collect_env on that same kind of machine.
H200_ROOT = FIXTURES / "device" / "h200" / "host-root"
TORCH_COLLECT_ENV = (FIXTURES / "device" / "h200" / "torch-collect-env.txt").read_text()


def h200_root(tmp_path: Path) -> Path:
    """The recorded H200 files, plus the cuDNN files the linker cache points at, laid out as on Ubuntu 24.04
    (/lib is a link to usr/lib, libcudnn*.so and .so.9 are links to the versioned file)."""
    import shutil

    root = tmp_path / "h200"
    shutil.copytree(H200_ROOT, root)
    lib = root / "usr/lib/x86_64-linux-gnu"
    lib.mkdir(parents=True)
    (root / "lib").symlink_to("usr/lib")
    names = ("", "_adv", "_cnn", "_engines_precompiled", "_engines_runtime_compiled", "_graph", "_heuristic", "_ops")
    for name in names:
        (lib / f"libcudnn{name}.so.9.14.0").write_bytes(b"\x7fELF")
        (lib / f"libcudnn{name}.so.9").symlink_to(f"libcudnn{name}.so.9.14.0")
        (lib / f"libcudnn{name}.so").symlink_to(f"libcudnn{name}.so.9")
    return root


def test_cudnn_libraries_are_the_files_torch_collect_env_lists(tmp_path):
    listed = [line for line in TORCH_COLLECT_ENV.splitlines() if line.startswith("/usr/lib/x86_64-linux-gnu/libcudnn")]
    assert len(listed) == 8
    assert H.cudnn_libraries(h200_root(tmp_path), {}) == sorted(listed)


def test_every_cudnn_entry_of_the_real_linker_cache_is_read():
    # ldconfig -p printed 16 libcudnn entries there; adjacent paths in the string table share one NUL
    assert len(H.ld_cache_paths(H200_ROOT, H._LD_CACHE_CUDNN)) == 16


def test_cudnn_library_falls_back_to_cudnn_library_variable(tmp_path):
    (tmp_path / "opt").mkdir()
    (tmp_path / "opt/libcudnn.so.8.9.7").write_bytes(b"\x7fELF")
    assert H.cudnn_libraries(tmp_path, {"CUDNN_LIBRARY": "/opt/libcudnn.so.8.9.7"}) == ["/opt/libcudnn.so.8.9.7"]
    assert H.cudnn_libraries(tmp_path, {"CUDNN_LIBRARY": "/opt/missing.so"}) == []


def test_cpu_flags_sockets_and_numa_from_a_real_h200_host(tmp_path):
    host = H.collect_host(Manifest(), environ={}, root=h200_root(tmp_path))
    flags_line = next(line for line in TORCH_COLLECT_ENV.splitlines() if line.startswith("Flags:")).split()[1:]
    expected = sorted(f for f in flags_line if f == "avx2" or f.startswith(("avx512", "avx_vnni", "amx")))
    assert host["cpu"]["flags"] == expected
    assert {"avx512f", "avx512_bf16", "amx_bf16", "amx_int8", "amx_tile"} <= set(expected)
    assert host["cpu"]["sockets"] == 1 and host["cpu"]["model"] == "Intel(R) Xeon(R) Processor"
    # collect_env there: "NUMA node(s): 1", "NUMA node0 CPU(s): 0-15"
    assert host["numa_nodes"] == [{"node": 0, "cpus": "0-15", "memory_total_bytes": 4550128 * 1024}]
    assert len(host["cudnn_libraries"]) == 8
    assert_valid(host)


def test_arm_features_and_two_numa_nodes(tmp_path):
    (tmp_path / "proc").mkdir()
    (tmp_path / "proc/cpuinfo").write_text(
        "processor\t: 0\nBogoMIPS\t: 2000.00\nFeatures\t: fp asimd evtstrm aes sve sve2 bf16 i8mm svebf16\n"
    )
    for node, cpus in ((0, "0-71"), (1, "72-143")):
        folder = tmp_path / f"sys/devices/system/node/node{node}"
        folder.mkdir(parents=True)
        (folder / "cpulist").write_text(cpus + "\n")
        (folder / "meminfo").write_text(f"Node {node} MemTotal:       10 kB\n")
    (tmp_path / "sys/devices/system/node/node10").mkdir()  # a node without its files
    host = H.collect_host(Manifest(), environ={}, root=tmp_path)
    assert host["cpu"]["flags"] == ["asimd", "bf16", "i8mm", "sve", "sve2", "svebf16"]
    assert host["numa_nodes"] == [
        {"node": 0, "cpus": "0-71", "memory_total_bytes": 10240},
        {"node": 1, "cpus": "72-143", "memory_total_bytes": 10240},
        {"node": 10, "cpus": None, "memory_total_bytes": None},
    ]
    assert_valid(host)
