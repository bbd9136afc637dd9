"""The machine around the GPUs in the report: interconnect, CPU, NUMA, cuDNN files, conda, the interpreter.

Built on the real 2-GPU H200 bundle, with the fields newer collectors add set as the H200 host
fixtures and torch's collect_env from there show them.
"""

from __future__ import annotations

import copy
import hashlib

import pytest
from markdown_it import MarkdownIt

from conftest import FIXTURES
from test_render_markdown import check_safe
from vllm_bug.analyzer.analyze import analyze_loaded
from vllm_bug.analyzer.load import LoadedInput, load_input
from vllm_bug.analyzer.render_markdown import render_report
from vllm_bug.analyzer.topology import interconnect_summary, parse_topology
from vllm_bug.schema.bundle import validate

TWO_GPUS = str(FIXTURES / "bundles" / "h200-2gpu-run-nccl-fail.zst")
ONE_GPU = str(FIXTURES / "bundles" / "h200-1gpu-run-oom.zst")
CUDNN = [f"/usr/lib/x86_64-linux-gnu/libcudnn{n}.so.9.14.0" for n in ("", "_adv", "_cnn", "_ops")]


def fences(text: str) -> list[str]:
    return [t.content for t in MarkdownIt("commonmark").parse(text) if t.type == "fence"]


def environment_block(report) -> str:
    return next(f for f in fences(report.environment) if f.startswith("GPU:"))


def with_new_fields(doc: dict, conda: bool = False) -> dict:
    doc = copy.deepcopy(doc)
    host = doc["payload"]["host"]
    host["python"].update(
        {
            "build": "3.12.3 (main, Aug 31 2026, 10:18:26) [GCC 13.3.0]",
            "bits": 64,
            "platform": "Linux-6.18.44-fc-v657-gpu-x86_64-with-glibc2.39",
            "chosen_by": "virtual_env",
            "chosen_because": "VIRTUAL_ENV is /opt/torch/.venv",
            "warnings": [
                (
                    "vLLM is not installed in /opt/torch/.venv/bin/python (VIRTUAL_ENV is /opt/torch/.venv), but "
                    "/opt/vllm/bin/python has vLLM 0.11.0, torch 2.8.0: if that is the environment vLLM runs in, "
                    "collect again with --python /opt/vllm/bin/python"
                )
            ],
        }
    )
    host["cpu"].update({"sockets": 1, "flags": ["amx_bf16", "amx_int8", "amx_tile", "avx2", "avx512f"]})
    host["numa_nodes"] = [
        {"node": 0, "cpus": "0-15", "memory_total_bytes": 4550128 * 1024},
        {"node": 1, "cpus": "16-31", "memory_total_bytes": None},
    ]
    host["cudnn_libraries"] = CUDNN
    if conda:
        doc["payload"]["conda_packages"] = {
            "pytorch": "2.5.1",
            "pytorch-cuda": "12.4",
            "zlib": "1.3.1",
            "nccl": "2.21.5.1",
            "python": "3.12.7",
            "tk": "8.6.13",
        }
    validate(doc)
    return doc


def report_for(doc: dict):
    data = repr(doc).encode()
    return render_report(analyze_loaded(LoadedInput("bundle", hashlib.sha256(data).hexdigest(), doc, None, "t")))


@pytest.fixture(scope="module")
def two_gpu_doc():
    return load_input(TWO_GPUS).doc


def test_two_gpus_show_the_interconnect_folded_in_the_environment_part():
    report = render_report(analyze_loaded(load_input(TWO_GPUS)))
    summary = "<summary>GPU interconnect (nvidia-smi topo -m): GPU0-GPU1 NV18; NUMA node 0</summary>"
    assert summary in report.environment
    matrix = next(f for f in fences(report.environment) if "CPU Affinity" in f)
    assert matrix.splitlines()[:3] == [
        "\tGPU0\tGPU1\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID",
        "GPU0\t X \tNV18\t0-31\t0\t\tN/A",
        "GPU1\tNV18\t X \t0-31\t0\t\tN/A",
    ]
    assert "\x1b" not in report.text  # nvidia-smi underlines the header with ANSI codes
    assert "CPU:                Intel(R) Xeon(R) Processor, 32 CPUs\n" in environment_block(report)
    check_safe(report.text)


def test_one_gpu_has_no_interconnect_block():
    report = render_report(analyze_loaded(load_input(ONE_GPU)))
    assert "GPU interconnect" not in report.text and "NUMA:" not in report.text


def test_what_collect_env_prints_is_in_the_environment_block(two_gpu_doc):
    block = environment_block(report_for(with_new_fields(two_gpu_doc)))
    lines = block.splitlines()
    assert "Python:             3.12.3 (main, Aug 31 2026, 10:18:26) [GCC 13.3.0], 64-bit" in lines
    assert "Python inspected:   /opt/torch/.venv/bin/python (VIRTUAL_ENV is /opt/torch/.venv)" in lines
    assert any(
        line.startswith("Collector warning:  vLLM is not installed in /opt/torch/.venv/bin/python") for line in lines
    )
    assert "Platform:           Linux-6.18.44-fc-v657-gpu-x86_64-with-glibc2.39" in lines
    assert "CPU:                Intel(R) Xeon(R) Processor, 32 CPUs, 1 socket" in lines
    assert "CPU flags:          amx_bf16 amx_int8 amx_tile avx2 avx512f" in lines
    assert "NUMA:               2 nodes: node0 CPUs 0-15 (4.3 GiB); node1 CPUs 16-31" in lines
    at = lines.index("cuDNN libraries the dynamic linker finds:")
    assert lines[at + 1 : at + 5] == [f"  {path}" for path in CUDNN]
    assert "Conda packages" not in block  # not a conda environment


def test_conda_packages_that_matter_are_listed_only_for_conda(two_gpu_doc):
    block = environment_block(report_for(with_new_fields(two_gpu_doc, conda=True)))
    lines = block.splitlines()
    at = lines.index("Conda packages (4 of 6):")
    assert lines[at + 1] == "  nccl=2.21.5.1 python=3.12.7 pytorch=2.5.1 pytorch-cuda=12.4"


def test_numa_is_left_out_for_one_gpu(two_gpu_doc):
    doc = with_new_fields(two_gpu_doc)
    doc["payload"]["gpus"] = doc["payload"]["gpus"][:1]
    report = report_for(doc)
    assert "NUMA:" not in report.text and "GPU interconnect" not in report.text
    assert "CPU flags:" in report.text  # the CPU matters with one GPU too


def test_hostile_machine_fields_neither_crash_nor_leak_markup(two_gpu_doc):
    doc = with_new_fields(two_gpu_doc)
    host = doc["payload"]["host"]
    host["cpu"]["flags"] = ["</details>", "<!--"]
    host["numa_nodes"] = [{"node": 0, "cpus": "```\n</details>", "memory_total_bytes": None}]
    host["cudnn_libraries"] = ["/x/````/<b>@alice"]
    host["python"]["warnings"] = ["</details><img src=x> @alice #1"]
    doc["payload"]["nvidia_smi"]["topo"] = "\tGPU0\tGPU1\nGPU0\t X \t</details>\nGPU1\t```\t X \n"
    report = report_for(doc)
    for text in (report.text, report.environment, report.describe):
        check_safe(text)


# -- the topology parser -------------------------------------------------------------------------

PCIE_4_GPUS_AND_A_NIC = (
    "\tGPU0\tGPU1\tGPU2\tGPU3\tNIC0\tCPU Affinity\tNUMA Affinity\tGPU NUMA ID\n"
    "GPU0\t X \tPIX\tSYS\tSYS\tNODE\t0-23\t0\t\tN/A\n"
    "GPU1\tPIX\t X \tSYS\tSYS\tNODE\t0-23\t0\t\tN/A\n"
    "GPU2\tSYS\tSYS\t X \tPIX\tSYS\t24-47\t1\t\tN/A\n"
    "GPU3\tSYS\tSYS\tPIX\t X \tSYS\t24-47\t1\t\tN/A\n"
    "NIC0\tNODE\tNODE\tSYS\tSYS\t X \t\t\t\t\n\nLegend:\n\n  X    = Self\n"
)


def test_topology_of_pcie_gpus_on_two_numa_nodes():
    topology = parse_topology(PCIE_4_GPUS_AND_A_NIC)
    assert topology.links == {
        ("GPU0", "GPU1"): "PIX",
        ("GPU0", "GPU2"): "SYS",
        ("GPU0", "GPU3"): "SYS",
        ("GPU1", "GPU2"): "SYS",
        ("GPU1", "GPU3"): "SYS",
        ("GPU2", "GPU3"): "PIX",
    }
    assert topology.numa == {"GPU0": "0", "GPU1": "0", "GPU2": "1", "GPU3": "1"}
    assert interconnect_summary(PCIE_4_GPUS_AND_A_NIC) == "SYS for 4 pairs, PIX for 2 pairs; NUMA nodes 0, 1"


def test_topology_summary_of_eight_nvlinked_gpus():
    names = [f"GPU{i}" for i in range(8)]
    rows = ["\t" + "\t".join(names) + "\tCPU Affinity\tNUMA Affinity"]
    rows += [
        name + "\t" + "\t".join(" X " if a == b else "NV18" for b in names) + "\t0-111\tN/A"
        for a, name in enumerate(names)
    ]
    assert interconnect_summary("\n".join(rows)) == "NV18 for all 28 GPU pairs"


@pytest.mark.parametrize("text", ["", "nvidia-smi: command not found", "\tGPU0\tCPU Affinity\nGPU0\t X \t0-15\n"])
def test_topology_without_gpu_pairs_has_no_summary(text):
    assert interconnect_summary(text) is None
