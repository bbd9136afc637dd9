from conftest import minimal_payload
from vllm_bug.analyzer.build import build_facts, facts_from_bundle
from vllm_bug.analyzer.load import LoadedInput
from vllm_bug.schema.bundle import make_envelope, validate

LOG = """\
INFO 03-19 07:27:50 [utils.py:1] non-default args: {'model': 'meta-llama/Llama-3.1-70B', 'max_model_len': 16384, 'tensor_parallel_size': 2}
(VllmWorker rank=0 pid=10) ERROR 03-19 07:27:53 [multiproc_executor.py:375] Traceback (most recent call last):
(VllmWorker rank=1 pid=11) ERROR 03-19 07:27:53 [multiproc_executor.py:375] Traceback (most recent call last):
(VllmWorker rank=0 pid=10) ERROR 03-19 07:27:53 [multiproc_executor.py:375]   File "/usr/lib/python3.12/site-packages/vllm/v1/worker/gpu_worker.py", line 200, in determine_available_memory
(VllmWorker rank=1 pid=11) ERROR 03-19 07:27:53 [multiproc_executor.py:375]   File "/usr/lib/python3.12/site-packages/vllm/v1/worker/gpu_worker.py", line 200, in determine_available_memory
(VllmWorker rank=0 pid=10) ERROR 03-19 07:27:53 [multiproc_executor.py:375] torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 79.19 GiB
(VllmWorker rank=1 pid=11) ERROR 03-19 07:27:53 [multiproc_executor.py:375] torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 1 has a total capacity of 79.19 GiB
ERROR 03-19 07:27:54 [core.py:1] RuntimeError: Engine core initialization failed. See root cause above.
"""


def _doc():
    payload = minimal_payload()
    payload["gpus"] = [
        {
            "index": 0,
            "name": "NVIDIA A100-SXM4-80GB",
            "compute_capability": "8.0",
            "memory_total_bytes": 85899345920,
            "memory_used_bytes": 1 << 30,
            "processes": [{"pid": 7, "used_memory_bytes": 1 << 30, "name": "python"}],
        },
        {"index": 1, "name": "NVIDIA A100-SXM4-80GB", "compute_capability": None},
    ]
    payload["driver"] = {"version": "535.104.05", "cuda_version": "12.2"}
    payload["cuda_toolkit"] = {"nvcc_version": "12.1.105", "cuda_home": "/usr/local/cuda"}
    payload["torch"] = {
        "version": "2.5.1+cu124",
        "cuda": "12.4",
        "arch_list": ["sm_80", "sm_90"],
        "cuda_available": True,
        "device_count": 2,
    }
    payload["vllm"] = {
        "version": "0.8.0",
        "import_ok": True,
        "requirements": [{"requirement": "torch==2.6.0", "installed": "2.5.1", "satisfied": False}],
    }
    payload["packages"] = {"Torch": "2.5.1+cu124", "flash_attn": "2.7.0"}
    payload["env"] = {"VLLM_USE_V1": "1", "HF_TOKEN": "hf_x"}
    payload["host"] = {
        "os": "Ubuntu 22.04",
        "glibc": "2.35",
        "python": {"version": "3.12.3"},
        "container": {"docker": True},
        "shm_total_bytes": 1 << 30,
    }
    payload["xid"] = ["NVRM: Xid (PCI:0000:3b:00): 79"]
    payload["log"] = {"source": "file", "text": LOG, "truncated": False}
    payload["command"] = {
        "argv": ["vllm", "serve", "meta-llama/Llama-3.1-70B", "--gpu-memory-utilization", "0.95"],
        "exit_code": 1,
    }
    doc = make_envelope(payload)
    validate(doc)
    return doc


def test_measured_sections_become_facts():
    f = facts_from_bundle(_doc())
    assert f.input_kind == "bundle"
    assert f.gpus[0].compute_capability == (8, 0) and f.gpus[0].processes[0]["pid"] == 7
    assert f.gpus[1].compute_capability == (8, 0)  # not measured: filled from the GPU's name
    assert (f.driver_version, f.driver_cuda, f.nvcc_version) == ("535.104.05", "12.2", "12.1.105")
    assert (f.torch_version, f.torch_cuda, f.torch_arch_list) == ("2.5.1+cu124", "12.4", ["sm_80", "sm_90"])
    assert f.vllm_version == "0.8.0" and f.vllm_requirements[0]["satisfied"] is False
    assert f.package("flash-attn") == "2.7.0" and f.package("torch") == "2.5.1+cu124"
    assert f.env["HF_TOKEN"] == "<redacted>"
    assert f.glibc == "2.35" and f.python_version == "3.12.3" and f.container == {"docker": True}
    assert f.xid == ["NVRM: Xid (PCI:0000:3b:00): 79"]


def test_log_text_fills_lines_tracebacks_and_engine_args():
    f = facts_from_bundle(_doc())
    assert f.root_cause.short_type == "OutOfMemoryError"
    assert f.root_cause.frames[0].function == "determine_available_memory"
    assert sum(1 for tb in f.tracebacks if tb.short_type == "OutOfMemoryError") == 1  # rank copies merged
    assert f.engine_args["max_model_len"] == 16384 and f.engine_args["tensor_parallel_size"] == 2
    assert f.engine_args["gpu_memory_utilization"] == 0.95  # from argv
    assert f.launch_command.startswith("vllm serve")
    assert not any("pid=" in line for line in f.lines)


def test_text_never_overrides_measured_values():
    doc = _doc()
    doc["payload"]["log"]["text"] = "Driver Version: 470.1.1   CUDA Version: 11.4\nPyTorch version: 1.0\n"
    f = facts_from_bundle(doc)
    assert f.driver_version == "535.104.05" and f.torch_version == "2.5.1+cu124"


def test_minimal_bundle_gives_empty_facts_without_errors():
    f = facts_from_bundle(make_envelope(minimal_payload()))
    assert f.gpus == [] and f.root_cause is None and f.lines == []


def test_import_traceback_is_used_when_the_log_has_none():
    doc = _doc()
    doc["payload"]["log"] = None
    doc["payload"]["vllm"]["import_traceback"] = (
        'Traceback (most recent call last):\n  File "<string>", line 1, in <module>\n'
        "ImportError: /usr/lib/python3.12/site-packages/vllm/_C.abi3.so: undefined symbol: _ZN3c104cuda9SetDeviceEi\n"
    )
    f = facts_from_bundle(doc)
    assert f.root_cause.exc_type == "ImportError" and "undefined symbol" in f.root_cause.message


def test_build_facts_dispatches_on_kind():
    assert build_facts(LoadedInput("bundle", "0" * 64, _doc(), None, "b.zst")).input_kind == "bundle"
    text = build_facts(LoadedInput("text", "0" * 64, None, "RuntimeError: CUDA error: invalid argument\n", "t.log"))
    assert text.input_kind == "text" and text.root_cause.message == "CUDA error: invalid argument"


def test_a_bundles_log_with_vllms_header_counts_as_vllm_writing():
    payload = minimal_payload()
    payload["log"] = {
        "source": "file",
        "text": "INFO 03-19 07:27:53 [gpu_model_runner.py:1580] Model loading took 15.2 GiB\n",
        "truncated": False,
    }
    assert facts_from_bundle(make_envelope(payload)).vllm_log_lines
    payload["log"]["text"] = "2026-03-19 07:27:53,120 - INFO - train.py:12 - step 1\n"
    assert not facts_from_bundle(make_envelope(payload)).vllm_log_lines
