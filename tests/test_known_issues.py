import json
import re

import pytest

from report_helpers import FIXTURES, corpus_cases, facts_from_text
from vllm_bug.analyzer.facts import Facts, Gpu
from vllm_bug.analyzer.known_issues import issue_url, load_known_issues, match_known_issue
from vllm_bug.analyzer.signature import compute_signature


def known(text: str, **extra):
    facts = facts_from_text(text, **extra)
    return match_known_issue(compute_signature(facts)[0], facts)


def test_every_issue_number_comes_from_the_corpus_or_the_references():
    corpus_ids = set(corpus_cases())
    reference_text = (FIXTURES / "reports" / "reference-issue-lines.txt").read_text()
    reference_ids = {f"vllm-project/vllm#{n}" for n in re.findall(r"#(\d+)", reference_text)}
    for entry in load_known_issues():
        if entry["vllm_issue"] is not None:
            assert entry["vllm_issue"] in corpus_ids, entry["id"]
        for ref in entry["related"]:
            assert ref in corpus_ids | reference_ids, (entry["id"], ref)
        assert entry["fixed_in"] is None or re.fullmatch(r"\d+\.\d+\.\d+(\.post\d+)?", entry["fixed_in"])


def test_ids_are_unique_upper_snake():
    ids = [e["id"] for e in load_known_issues()]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"[A-Z0-9_]+", i) for i in ids)


def test_blackwell_no_kernel_image_needs_a_blackwell_gpu():
    text = "RuntimeError: CUDA error: no kernel image is available for execution on the device"
    assert known(text) is None  # an old GPU with the same error is a different problem
    by_gpu = known(text, gpus=[Gpu(name="NVIDIA GeForce RTX 5090", compute_capability=(12, 0))])
    assert by_gpu["id"] == "BLACKWELL_SM120_NO_KERNEL_IMAGE"
    assert by_gpu["vllm_issue"] == "vllm-project/vllm#19906"
    by_text = known("[Bug]: RTX5080 got CUDA error: no kernel image is available for execution on the device\n" + text)
    assert by_text["id"] == "BLACKWELL_SM120_NO_KERNEL_IMAGE"
    assert known(text, gpus=[Gpu(name="Tesla P40", compute_capability=(6, 1))]) is None


@pytest.mark.parametrize(
    "case_id, expected",
    [
        ("vllm-project/vllm#49101", "CUSTOM_ALL_REDUCE_INVALID_ARGUMENT"),
        ("vllm-project/vllm#10416", "MLLAMA_HOST_SYNC_DURING_GRAPH_CAPTURE"),
        ("vllm-project/vllm#9094", "STREAM_CAPTURE_VIOLATION"),
        ("vllm-project/vllm#39609", "GLIBC_TOO_OLD_FOR_WHEEL"),
        ("vllm-project/vllm#8863", "NO_GPU_RUNTIME_IN_CONTAINER"),
        ("vllm-project/vllm#27508", "SAMPLER_WARMUP_OOM"),
        ("vllm-project/vllm#5510", "FORWARD_COMPAT_ON_CONSUMER_GPU"),
    ],
)
def test_corpus_reports_are_recognised(case_id, expected):
    case = corpus_cases()[case_id]
    match = known(case["title"] + "\n" + case["error_text"] + "\n" + case["env_text"])
    assert match is not None and match["id"] == expected


def test_unrelated_reports_match_nothing():
    for case_id in ("vllm-project/vllm#641", "vllm-project/vllm#7800", "vllm-project/vllm#36802"):
        case = corpus_cases()[case_id]
        assert known(case["title"] + "\n" + case["error_text"]) is None, case_id


def test_version_conditions_need_a_known_version():
    text = "codellama-13b-awq RuntimeError: CUDA error: an illegal memory access was encountered"
    assert known(text) is None
    assert known(text, vllm_version="0.2.0")["fixed_in"] == "0.2.1.post1"
    assert known(text, vllm_version="0.2.1.post1") is None
    qwen = "Qwen2.5-VL-7B RuntimeError: CUDA error: an illegal memory access was encountered"
    assert known(qwen, torch_version="2.6.0+cu124")["id"] == "QWEN_VL_IMA_TORCH26_INDUCTOR"
    assert known(qwen, torch_version="2.7.0") is None


def test_benign_warning_only_when_nothing_failed():
    warning = "/usr/lib/python3/site-packages/torch/cuda/__init__.py:61: FutureWarning: The pynvml package is deprecated. Please install nvidia-ml-py instead."
    alone = known("INFO starting\n" + warning)
    assert alone["id"] == "PYNVML_DEPRECATION_WARNING" and alone["benign"] is True
    with_error = (
        warning
        + '\nTraceback (most recent call last):\n  File "/x/site-packages/vllm/a.py", line 1, in f\n    g()\nValueError: boom'
    )
    assert known(with_error) is None


def test_signature_prefix_and_category_conditions(monkeypatch):
    from vllm_bug.analyzer import known_issues as ki

    table = (
        {
            "id": "X",
            "match": {"signature_prefix": "vllm-sig/1:oom:", "category": "cuda_oom"},
            "vllm_issue": None,
            "related": [],
            "fixed_in": None,
            "note": "n",
            "_compiled": {"any_of": []},
        },
    )
    monkeypatch.setattr(ki, "load_known_issues", lambda: table)
    assert ki.match_known_issue("vllm-sig/1:oom:a:b:-#1", Facts(), category="cuda_oom")["id"] == "X"
    assert "_compiled" not in ki.match_known_issue("vllm-sig/1:oom:a:b:-#1", Facts(), category="cuda_oom")
    assert ki.match_known_issue("vllm-sig/1:oom:a:b:-#1", Facts(), category="nccl") is None
    assert ki.match_known_issue("vllm-sig/1:nccl:a:b:-#1", Facts(), category="cuda_oom") is None


def test_issue_url():
    assert issue_url("vllm-project/vllm#5613") == "https://github.com/vllm-project/vllm/issues/5613"
    assert issue_url(None) is None and issue_url("nonsense") is None


def test_table_is_valid_json_with_required_fields():
    raw = json.loads((FIXTURES.parent.parent / "analyzer" / "data" / "known_issues.json").read_text())
    for entry in raw["entries"]:
        assert {"id", "match", "vllm_issue", "fixed_in", "note"} <= set(entry)
        assert entry["match"], entry["id"]


def test_the_word_prefilter_never_changes_whether_a_known_issue_pattern_matches():
    from vllm_bug.analyzer.known_issues import _Searched

    texts = [
        " ".join(str(case.get(k, "")) for k in ("title", "error_text", "env_text")) for case in corpus_cases().values()
    ]
    texts += [path.read_text("utf-8", "replace") for path in sorted((FIXTURES / "reports" / "excerpts").iterdir())]
    texts += ["CUDA GRAPH CAPTURE failed", "cuda error 804: forward compatibility was attempted on non supported hw"]
    patterns = []
    for entry in load_known_issues():
        compiled = entry["_compiled"]
        patterns += [compiled["pattern"]] if "pattern" in compiled else []
        patterns += [cond["pattern"] for cond in compiled["any_of"] if "pattern" in cond]
    assert any(p.pattern.startswith("(?i)") for p in patterns)
    for text in texts:
        searched = _Searched(text)
        for rx in patterns:
            assert searched.has(rx) == (rx.search(text) is not None), (rx.pattern, text[:80])
