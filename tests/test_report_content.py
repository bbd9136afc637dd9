"""What a maintainer reads: the Markdown report and the text summary, checked on real H200 bundles
(tests/fixtures/bundles/, written by `vllm-bug collect`/`run` on real machines) and on built facts."""

import re
from pathlib import Path

import pytest
from markdown_it import MarkdownIt

from report_helpers import analysis_for
from test_render_markdown import check_safe
from vllm_bug.analyzer.analyze import analyze_loaded, analyze_text
from vllm_bug.analyzer.bundlefacts import facts_from_bundle
from vllm_bug.analyzer.facts import Facts, Gpu, Traceback
from vllm_bug.analyzer.findings import Finding
from vllm_bug.analyzer.load import load_input
from vllm_bug.analyzer.render_markdown import render_markdown, suggested_title
from vllm_bug.analyzer.render_text import render_text

BUNDLES = Path(__file__).resolve().parent / "fixtures" / "bundles"
MD = MarkdownIt("commonmark").enable("table")


def analysis_of(name: str):
    return analyze_loaded(load_input(str(BUNDLES / name)))


def fences(report: str) -> list[str]:
    return [t.content for t in MD.parse(report) if t.type == "fence"]


def environment_block(report: str) -> str:
    return next(f for f in fences(report) if f.startswith("GPU:"))


def code_spans(report: str) -> list[str]:
    return [c.content for t in MD.parse(report) for c in (t.children or []) if c.type == "code_inline"]


@pytest.fixture(scope="module")
def oom_report():
    analysis = analysis_of("h200-1gpu-run-oom.zst")
    return analysis, render_markdown(analysis)


def test_title_is_plain_one_line_text_ready_for_githubs_title_field(oom_report):
    analysis, report = oom_report
    title = suggested_title(analysis)
    assert title == "[Bug]: torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 83.88 GiB (NVIDIA H200)"
    assert report.splitlines()[0] == f"**Suggested title:** `{title}`"


def test_environment_labels_the_three_cuda_versions_and_shows_the_gpu(oom_report):
    env = environment_block(oom_report[1])
    lines = env.splitlines()
    assert "GPU:                NVIDIA H200 (compute capability 9.0, 140.4 GiB)" in lines
    assert "CUDA, driver max:   13.0 (newest CUDA the driver supports)" in lines
    assert "CUDA, nvcc toolkit: 13.0 (/usr/local/cuda)" in lines
    assert "CUDA, torch build:  13.0 (torch.version.cuda)" in lines
    assert "vLLM:               not installed" in lines


def test_environment_drops_image_package_pins_and_cuts_long_values(oom_report):
    env = environment_block(oom_report[1])
    assert "NV_LIBNPP_VERSION" not in env and "NV_CUDNN_PACKAGE" not in env
    assert "  (30 NV_* package pins of the CUDA base image not shown)" in env.splitlines()
    require = next(line for line in env.splitlines() if line.startswith("  NVIDIA_REQUIRE_CUDA="))
    assert require.startswith("  NVIDIA_REQUIRE_CUDA=cuda>=13.0 brand=") and re.search(r"…\[\+\d+ chars\]$", require)
    assert len(require) < 160
    assert "  NVIDIA_VISIBLE_DEVICES=0" in env.splitlines()


def test_headline_of_the_collapsed_environment(oom_report):
    summary = re.search(r"<summary>(.*)</summary>", oom_report[1]).group(1)
    assert summary == (
        "NVIDIA H200 · driver 580.159.04 (CUDA 13.0) · torch 2.11.0+cu130 · vLLM not installed "
        "(vllm-bug summary of the bundle)"
    )


def test_xid_lines_are_shown_with_their_codes(oom_report):
    report = oom_report[1]
    assert "The kernel log has 3 NVIDIA Xid lines (Xid 13, 31):" in report
    xid_fence = next(f for f in fences(report) if "NVRM: Xid" in f)
    assert len(xid_fence.splitlines()) == 3


def test_fixes_read_cleanly_with_flags_as_code():
    text = (Path(__file__).resolve().parent / "fixtures" / "reports" / "excerpts" / "oom_two_ranks.txt").read_text()
    report = render_markdown(analyze_text(text))
    fixes = [line for line in report.splitlines() if line.startswith("- ")]
    assert fixes and not any("\\" in line for line in fixes)
    assert "--max-model-len" in code_spans(report) and "--kv-cache-dtype fp8" in code_spans(report)
    assert "`cuda_oom` · rule `CUDA_OOM` · confidence 0.95" in report
    check_safe(report)


def test_oom_outside_vllm_gets_no_vllm_flags(oom_report):
    analysis, report = oom_report
    top = analysis.diagnoses[0]
    assert (top.rule, top.category) == ("CUDA_OOM", "cuda_oom")
    assert "not vLLM (vLLM is not installed there)" in top.title
    assert not any(re.search(r"--[a-z-]+|vLLM", fix) for finding in analysis.diagnoses for fix in finding.fixes)
    assert any("smaller batch size" in fix for fix in top.fixes)
    assert any("already held 84.39 GiB" in fix for fix in top.fixes)
    assert not any("expandable_segments" in fix for fix in top.fixes)  # torch said 0 bytes were reserved but unused
    assert "`torch.cuda.empty_cache()`" in report or "torch.cuda.empty_cache()" in code_spans(report)
    check_safe(report)


def test_a_log_that_only_repeats_the_traceback_is_not_shown_twice():
    report = render_markdown(analysis_of("h200-1gpu-illegal-memory-access.zst"))
    assert "Log excerpt" not in report
    assert sum("Traceback (most recent call last)" in f for f in fences(report)) == 1


def test_a_log_with_more_than_the_traceback_is_kept_collapsed():
    analysis = analysis_of("h200-2gpu-run-nccl-fail.zst")
    report = render_markdown(analysis)
    assert re.search(r"<summary>Log excerpt \([\d,]+ lines", report)
    assert any("NCCL WARN Bootstrap : no socket interface found" in f for f in fences(report))


def test_bundle_without_an_error_says_what_a_diagnosis_needs():
    analysis = analysis_of("h200-2gpu-collect.zst")
    report = render_markdown(analysis)
    assert "Missing from the input, and needed for a diagnosis:\n\n- a Python traceback or an error message\n" in report
    assert "`vllm-bug collect --log LOGFILE`" in report
    assert suggested_title(analysis) == "[Bug]: vLLM failure, no error message found (2 x NVIDIA H200)"
    check_safe(report)


def h100_facts(**extra) -> Facts:
    gpu = Gpu(
        name="NVIDIA H100 80GB HBM3",
        compute_capability=(9, 0),
        memory_total_bytes=80 * 2**30,
        memory_used_bytes=75 * 2**30,
        index=0,
        processes=[
            {"pid": 4242, "name": "python3 -m vllm.entrypoints.openai.api_server", "used_memory_bytes": 70 * 2**30}
        ],
    )
    return Facts(
        input_kind="bundle",
        gpus=[gpu],
        driver_version="570.86.15",
        driver_cuda="12.8",
        torch_version="2.8.0+cu128",
        torch_cuda="12.8",
        **extra,
    )


def test_failed_vllm_import_processes_and_probe_timeouts_are_visible():
    facts = h100_facts(
        vllm_version="0.11.0",
        vllm_import_ok=False,
        vllm_import_error='Traceback (most recent call last):\n  File "x"\nImportError: libcudart.so.12: cannot open shared object file',
        collection_problems=["nvidia-smi: timed out after 10.0 s"],
    )
    report = render_markdown(analysis_for(facts))
    env = environment_block(report).splitlines()
    assert (
        "vLLM:               0.11.0, import FAILED: ImportError: libcudart.so.12: cannot open shared object file" in env
    )
    assert "GPU memory in use:  GPU 0: 75.0 of 80.0 GiB" in env
    assert "GPU process:        GPU 0: pid 4242 python3 -m vllm.entrypoints.openai.api_server (70.0 GiB)" in env
    assert "_vllm-bug could not collect everything:_ `nvidia-smi: timed out after 10.0 s`" in report
    assert "vLLM 0.11.0 import FAILED" in re.search(r"<summary>(.*)</summary>", report).group(1)
    check_safe(report)


def test_bundle_facts_carry_probe_failures_and_an_absent_vllm():
    doc = load_input(str(BUNDLES / "h200-1gpu-run-oom.zst")).doc
    doc["payload"]["manifest"]["probes"] += [
        {"name": "nvidia-smi -q", "status": "timeout", "duration_s": 10.004},
        {"name": "python-imports", "status": "error", "duration_s": 0.2, "error": "exit 1\nmore"},
    ]
    doc["payload"]["vllm"].update(
        {
            "installed": True,
            "version": "0.11.0",
            "import_ok": True,
            "c_import_ok": False,
            "c_import_error": "ImportError: undefined symbol: _ZN3c10",
        }
    )
    facts = facts_from_bundle(doc)
    assert facts.collection_problems == [
        "nvidia-smi -q: timed out after 10.0 s",
        "python-imports: failed after 0.2 s (exit 1)",
    ]
    assert facts.vllm_installed is True and facts.vllm_c_import_error == "ImportError: undefined symbol: _ZN3c10"
    assert facts_from_bundle(load_input(str(BUNDLES / "h200-1gpu-run-oom.zst")).doc).vllm_installed is False


def test_text_input_report_says_what_it_hid_and_bundles_say_what_the_collector_hid():
    text_report = render_markdown(analyze_text("RuntimeError: CUDA error: an illegal memory access was encountered"))
    assert "Nothing in the pasted text looked like a secret" in text_report
    assert "redacted automatically" not in text_report
    assert "Nothing needed redacting." in render_markdown(analysis_of("h200-1gpu-run-oom.zst"))


def test_secrets_in_pasted_text_never_reach_the_report_or_the_json():
    token = "hf_" + "Q" * 20 + "x7" * 8
    pasted = (
        f"$ vllm serve meta-llama/Llama-3.1-8B --api-key s3cr3t-pass-9 --hf-token {token}\n"
        "RuntimeError: CUDA error: an illegal memory access was encountered\n"
    )
    analysis = analyze_text(pasted)
    report = render_markdown(analysis)
    import json

    from vllm_bug.analyzer.jsonout import analysis_to_json

    as_json = json.dumps(analysis_to_json(analysis))
    for rendered in (report, as_json):
        assert token not in rendered and "s3cr3t-pass-9" not in rendered
    assert "vllm-bug hid these in the pasted text" in report
    assert {r["kind"] for r in analysis.facts.redacted_here} >= {"hf_token", "secret_arg"}


def test_text_report_missing_facts_are_named_not_listed_as_unknown():
    report = render_markdown(analyze_text("RuntimeError: CUDA error: an illegal memory access was encountered"))
    env = environment_block(report) if any(f.startswith("GPU:") for f in fences(report)) else fences(report)[0]
    assert "unknown" not in env
    assert "Not in the input:   GPU, driver, nvcc, torch, vLLM, Python, OS" in env


def title_of(exc_type: str, message: str, **extra) -> str:
    facts = Facts(root_cause=Traceback(exc_type=exc_type, message=message), **extra)
    return suggested_title(analysis_for(facts))


def test_titles_keep_the_searchable_part_and_stay_short():
    assert title_of(
        "RuntimeError",
        "Unexpected error from cudaGetDeviceCount(). Did you run some cuda functions before "
        "calling NumCudaDevices() that might have already set an error? Error 803: system has unsupported "
        "display driver / cuda driver combination",
        vllm_version="0.7.2",
    ) == (
        "[Bug]: RuntimeError: Unexpected error from cudaGetDeviceCount() … Error 803: system has unsupported… (vLLM 0.7.2)"
    )
    assert title_of(
        "RuntimeError", "Failed: Cuda error /workspace/csrc/custom_all_reduce.cuh:455 'invalid argument'"
    ) == ("[Bug]: RuntimeError: Failed: Cuda error custom_all_reduce.cuh 'invalid argument'")
    hostile = title_of("RuntimeError", "x ``` @evil\n<b>#12</b> " + "y" * 500)
    assert "\n" not in hostile and len(hostile) < 130 and hostile.endswith("…")


def test_text_summary_aligns_the_facts_and_drops_unknowns():
    text = render_text(analysis_of("h200-1gpu-run-oom.zst"), name="oom.zst")
    lines = text.splitlines()
    assert lines[0].startswith("vllm-bug analysis of oom.zst (bundle, sha256 6e620725728d)")
    facts_rows = [line for line in lines[2:12] if re.match(r"  \w+:", line)]
    assert facts_rows[1:] == [
        "  GPU:      NVIDIA H200 (compute capability 9.0, 140.4 GiB)",
        "  Driver:   580.159.04, supports CUDA up to 13.0",
        "  torch:    2.11.0+cu130, built for CUDA 13.0",
        "  nvcc:     CUDA 13.0 toolkit",
        "  vLLM:     not installed",
        "  Xid:      13, 31 (3 kernel-log lines)",
    ]
    assert facts_rows[0].startswith("  Error:    torch.OutOfMemoryError: CUDA out of memory.")
    assert "Most likely: The GPU ran out of memory in a program that is not vLLM" in text
    assert "[cuda_oom, rule CUDA_OOM, confidence 0.95]" in text
    assert "unknown" not in text


def test_text_summary_with_no_diagnosis_says_what_is_missing():
    text = render_text(
        analyze_text(
            "INFO 01-01 12:00:00 [api_server.py:1] vLLM API server version 0.11.0\n"
            "INFO 01-01 12:00:01 [api_server.py:9] Starting server on port 8000\n"
        )
    )
    assert (
        "No known problem recognised (category: other).\nMissing from the input, and needed for a diagnosis:\n"
        "  - a Python traceback or an error message\n" in text
    )
    assert "vllm-bug collect --log LOGFILE" in text


def test_text_summary_of_an_unrecognised_error_says_there_is_no_rule_yet():
    facts = h100_facts(vllm_version="0.11.0", launch_command="vllm serve m")
    facts.root_cause = Traceback(exc_type="RuntimeError", message="something new")
    text = render_text(analysis_for(facts))
    assert "  Error:    RuntimeError: something new" in text
    assert "vllm-bug has no rule for this error yet" in text


def test_repeated_error_prefix_is_not_doubled():
    facts = Facts(
        root_cause=Traceback(exc_type="CUDA error", message="CUDA error: an illegal memory access was encountered")
    )
    finding = Finding(rule="ILLEGAL_MEMORY_ACCESS", category="illegal_memory_access", confidence=0.9, title="t")
    text = render_text(analysis_for(facts, [finding]))
    assert "  Error:    CUDA error: an illegal memory access was encountered\n" in text


def test_a_line_from_prose_is_not_called_an_error():
    text = render_text(analyze_text("vllm serve is slower than expected on my machine"))
    assert "Reported:" not in text and "slower than expected" not in text
    assert "  Error:    none found (no Python exception or traceback in the input)\n" in text
    assert "  - a Python traceback or an error message\n" in text


def test_a_one_line_error_report_is_still_quoted_as_reported():
    text = render_text(analyze_text("vllm serve crashes with a segfault on two GPUs"))
    assert "  Reported: vllm serve crashes with a segfault on two GPUs\n" in text
    assert "  - a Python traceback (the input has only a line describing the error)" in text


def test_bundle_from_a_machine_without_gpu_or_torch_says_so_plainly():
    from conftest import minimal_payload

    payload = minimal_payload()
    payload["packages"] = {"numpy": "2.1.0", "nvidia-ml-py": "13.580.65"}
    payload["vllm"] = {"installed": False}
    payload["manifest"]["probes"] = [{"name": "nvidia-smi", "status": "timeout", "duration_s": 10.0}]
    facts = facts_from_bundle({"payload": payload})
    report = render_markdown(analysis_for(facts))
    env = environment_block(report).splitlines()
    assert env[:4] == [
        "GPU:                not found",
        "NVIDIA driver:      not found",
        "CUDA, nvcc toolkit: not found",
        "torch:              not installed",
    ]
    assert "Not in the input" not in report
    assert (
        "<summary>no GPU found · torch not installed · vLLM not installed (vllm-bug summary of the bundle)</summary>"
        in report
    )
    assert "_vllm-bug could not collect everything:_ `nvidia-smi: timed out after 10.0 s`" in report
    text = render_text(analysis_for(facts))
    assert (
        "  GPU:      none found\n  torch:    not installed\n  vLLM:     not installed\n"
        "  Probe:    nvidia-smi: timed out after 10.0 s\n" in text
    )


def test_long_launch_command_is_split_one_option_per_line_outside_quotes():
    from vllm_bug.analyzer.render_markdown import wrap_command

    command = (
        "vllm serve meta-llama/Llama-3.1-70B-Instruct --tensor-parallel-size 2 --max-model-len 16384 "
        '--compilation-config \'{"note": "a --b"}\' --gpu-memory-utilization 0.9'
    )
    wrapped = wrap_command(command)
    assert wrapped.splitlines() == [
        "vllm serve meta-llama/Llama-3.1-70B-Instruct \\",
        "    --tensor-parallel-size 2 \\",
        "    --max-model-len 16384 \\",
        '    --compilation-config \'{"note": "a --b"}\' \\',
        "    --gpu-memory-utilization 0.9",
    ]
    assert wrapped.replace(" \\\n    ", " ") == command
    assert wrap_command("vllm serve m --enforce-eager") == "vllm serve m --enforce-eager"
    report = render_markdown(analysis_for(Facts(launch_command=command)))
    assert any(f.startswith("vllm serve meta-llama/Llama-3.1-70B-Instruct \\\n") for f in fences(report))


def test_report_asks_for_the_reproducer_and_names_the_redaction_section_by_input():
    text_report = render_markdown(analysis_for(Facts()))
    assert "### 🐛 Describe the bug\n\n_Replace this line with what you ran" in text_report
    assert "#### Before posting" in text_report and "#### Redacted before writing" not in text_report
    bundle_report = render_markdown(analysis_of("h200-1gpu-run-oom.zst"))
    assert "#### Redacted before writing\n\nNothing needed redacting." in bundle_report


def test_footer_rule_never_turns_the_paragraph_above_into_a_heading():
    from markdown_it import MarkdownIt

    for analysis in (
        analyze_text("RuntimeError: CUDA error: an illegal memory access was encountered"),
        analysis_of("h200-1gpu-run-oom.zst"),
    ):
        tokens = MarkdownIt("commonmark").parse(render_markdown(analysis))
        assert any(t.type == "hr" for t in tokens)
        headings = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open" and t.tag == "h2"]
        assert headings == []
