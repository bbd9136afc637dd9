"""Cross-layer headlines on real bundles (tests/fixtures/bundles): the device list against the GPUs NVML saw,
the other processes that held the memory an allocation needed, and requirements that explain an import error.

Where no real bundle shows a case, a real one is changed as little as the case needs (a log added, a field
set) and written again through the schema; each test says what was changed.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest

from rule_helpers import facts as text_facts
from rule_helpers import fire
from vllm_bug.analyzer.analyze import analyze_loaded
from vllm_bug.analyzer.load import load_input
from vllm_bug.analyzer.rules.requirements import install_command, provides
from vllm_bug.schema.bundle import encode, read_bundle
from vllm_bug.schema.identifiers import identifier_hash

BUNDLES = Path(__file__).parent / "fixtures" / "bundles"
UUID_NO_GPU = "h200-1gpu-run-uuid-matches-no-gpu.zst"  # CUDA_VISIBLE_DEVICES=GPU-6a1b2c3d-0000-1111-2222-333344445555
OOM_OTHER = "h200-1gpu-run-oom-other-process.zst"  # pid 537 held 94.51 GiB when 37 GiB were asked for
VLLM = "h200-1gpu-vllm-collect.zst"  # vLLM 0.22.0 installed without its requirements
BOGUS_UUID = "GPU-6a1b2c3d-0000-1111-2222-333344445555"


def analyze(name: str):
    return analyze_loaded(load_input(str(BUNDLES / name)))


def analyze_changed(tmp_path: Path, name: str, change) -> object:
    doc = copy.deepcopy(read_bundle(BUNDLES / name))
    change(doc["payload"])
    path = tmp_path / name
    path.write_bytes(encode(doc))
    return analyze_loaded(load_input(str(path)))


def all_advice(analysis) -> str:
    return "\n".join(line for d in analysis.diagnoses for line in [d.title, *d.fixes])


def run_log(payload: dict, text: str, argv: list[str]) -> None:
    """Make a `collect` bundle look like `vllm-bug run` wrote it: the command and its output."""
    payload["log"] = {"source": "command", "text": text, "tracebacks": [], "truncated": False}
    payload["command"] = {"argv": argv, "exit_code": 1, "duration_s": 30.0}


# -- CUDA_VISIBLE_DEVICES ------------------------------------------------------------------------------------


def test_a_uuid_matching_no_gpu_is_the_headline_on_the_real_bundle():
    analysis = analyze(UUID_NO_GPU)
    top = analysis.diagnoses[0]
    assert top.rule == "CUDA_VISIBLE_DEVICES_NAMES_NO_GPU" and analysis.category == "cuda_not_available"
    assert top.title == (
        "CUDA_VISIBLE_DEVICES names a GPU UUID, which matches none of the 1 GPU NVML sees "
        "(NVIDIA H200), so CUDA sees no GPU."
    )
    assert "RuntimeError: No CUDA GPUs are available" in top.evidence
    assert "nvidia-smi lists the GPU" not in all_advice(analysis)
    assert "index 0" in top.fixes[0] and "nvidia-smi -L" in top.fixes[0]


def test_an_older_bundle_with_the_uuid_in_the_clear_is_judged_from_the_gpus_uuid_hashes(tmp_path):
    def as_older_collector(payload):  # no check recorded, the variable's value as the user set it
        del payload["cuda_visible_devices"]
        payload["env"]["CUDA_VISIBLE_DEVICES"] = BOGUS_UUID

    analysis = analyze_changed(tmp_path, UUID_NO_GPU, as_older_collector)
    assert analysis.diagnoses[0].rule == "CUDA_VISIBLE_DEVICES_NAMES_NO_GPU"
    # the analyzer's redaction hashed the UUID (its kind kept), and the hash is still judged as a whole UUID's
    assert f"CUDA_VISIBLE_DEVICES=GPU-<hashed:{identifier_hash(BOGUS_UUID)}>" in analysis.diagnoses[0].evidence
    assert BOGUS_UUID[4:] not in repr(analysis.diagnoses)


def test_an_older_bundle_with_a_mig_uuid_in_the_clear_stays_unchecked(tmp_path):
    def as_older_collector(payload):  # a MIG device's UUID is no GPU's: its hash cannot be compared with theirs
        del payload["cuda_visible_devices"]
        payload["env"]["CUDA_VISIBLE_DEVICES"] = "MIG" + BOGUS_UUID[3:]

    analysis = analyze_changed(tmp_path, UUID_NO_GPU, as_older_collector)
    assert "CUDA_VISIBLE_DEVICES_NAMES_NO_GPU" not in [d.rule for d in analysis.diagnoses]
    assert analysis.facts.visible_devices["entries"][0]["kind"] == "mig"
    assert analysis.facts.visible_devices["entries"][0]["outcome"] == "unchecked"


def test_the_gpus_own_uuid_is_no_finding(tmp_path):
    real = "GPU-4699a103-c7fb-5b60-f6be-8449016da004"

    def names_the_gpu(payload):
        del payload["cuda_visible_devices"]
        payload["env"]["CUDA_VISIBLE_DEVICES"] = real
        payload["gpus"][0]["uuid_hash"] = identifier_hash(real)

    analysis = analyze_changed(tmp_path, UUID_NO_GPU, names_the_gpu)
    assert "CUDA_VISIBLE_DEVICES_NAMES_NO_GPU" not in [d.rule for d in analysis.diagnoses]
    assert analysis.diagnoses[0].rule == "NO_CUDA_GPUS"


def test_an_index_beyond_the_gpus_is_named(tmp_path):
    def index_one(payload):
        del payload["cuda_visible_devices"]
        payload["env"]["CUDA_VISIBLE_DEVICES"] = "1"

    top = analyze_changed(tmp_path, UUID_NO_GPU, index_one).diagnoses[0]
    assert top.rule == "CUDA_VISIBLE_DEVICES_NAMES_NO_GPU"
    assert top.title.startswith("CUDA_VISIBLE_DEVICES names GPU index 1, which matches none of the 1 GPU")


def test_a_bad_entry_after_a_good_one_hides_the_rest(tmp_path):
    def second_entry_bad(payload):  # the two-GPU machine; torch saw one GPU
        payload["env"]["CUDA_VISIBLE_DEVICES"] = f"0,{BOGUS_UUID},1"
        payload["torch"]["device_count"] = 1
        run_log(payload, "RuntimeError: CUDA error: invalid device ordinal\n", ["python3", "train.py"])

    top = analyze_changed(tmp_path, "h200-2gpu-collect.zst", second_entry_bad).diagnoses[0]
    assert top.rule == "CUDA_VISIBLE_DEVICES_NAMES_NO_GPU"
    assert top.title == (
        "Entry 2 of CUDA_VISIBLE_DEVICES (a GPU UUID) matches none of the 2 GPUs NVML sees "
        "(NVIDIA H200): CUDA ignores it and every entry after it, so only 1 GPU is visible."
    )


def test_pasted_text_without_a_device_check_keeps_the_old_findings():
    f = text_facts("RuntimeError: No CUDA GPUs are available", env={"CUDA_VISIBLE_DEVICES": BOGUS_UUID})
    from vllm_bug.analyzer.analyze import analyze_facts

    assert analyze_facts(f).diagnoses[0].rule == "NO_CUDA_GPUS"


# -- other processes' memory -----------------------------------------------------------------------------------


def test_the_oom_headline_names_the_process_that_held_the_memory():
    analysis = analyze(OOM_OTHER)
    top = analysis.diagnoses[0]
    assert top.rule == "CUDA_OOM"
    assert top.title.startswith(
        "Another process held the GPU memory that was needed: pid 537 (python3) with 94.51 GiB."
    )
    assert "asked for 37.00 GiB, on a 139.80 GiB GPU, with 34.77 GiB free" in top.title
    assert top.fixes[0].startswith("stop pid 537 (python3) with 94.51 GiB (kill 537")
    assert "37.00 GiB allocation fits" in top.fixes[0]
    assert "check nvidia-smi" not in all_advice(analysis)
    assert "OTHER_PROCESSES_HOLD_GPU_MEMORY" not in [d.rule for d in analysis.diagnoses]  # said once


def test_an_oom_with_no_other_process_does_not_send_the_user_looking_for_one():
    analysis = analyze("h200-1gpu-run-oom.zst")  # torch listed the GPU's processes: only its own
    assert "check nvidia-smi for other processes" not in all_advice(analysis)
    assert "Another process" not in analysis.diagnoses[0].title


def test_processes_too_small_to_matter_are_not_blamed(tmp_path):
    def small(payload):
        payload["gpus"][0]["processes"][0]["used_memory_bytes"] = 100 << 20
        payload["log"]["text"] = payload["log"]["text"].replace("Process 537 has 94.51 GiB", "Process 537 has 0.10 GiB")

    assert "Another process" not in analyze_changed(tmp_path, OOM_OTHER, small).diagnoses[0].title


FREE_MEMORY = (
    "ValueError: Free memory on device cuda:0 (34.77/139.8 GiB) on startup is less than desired GPU memory "
    "utilization (0.9, 125.82 GiB). Decrease GPU memory utilization or reduce GPU memory used by other processes."
)


def test_vllm_finding_less_free_memory_than_asked_names_the_holder(tmp_path):
    def vllm_start(payload):  # the same moment, with vLLM's start-up check instead of torch's allocation
        run_log(
            payload,
            f"INFO 11-29 13:59:01 [gpu_worker.py:239] starting\n{FREE_MEMORY}\n",
            ["vllm", "serve", "Qwen/Qwen3-0.6B"],
        )

    top = analyze_changed(tmp_path, OOM_OTHER, vllm_start).diagnoses[0]
    assert top.rule == "FREE_MEMORY_BELOW_UTILIZATION"
    assert top.title == (
        "Less GPU memory is free at start-up than --gpu-memory-utilization asks for (125.8 GiB "
        "wanted, 34.8 GiB free): pid 537 (python3) with 94.51 GiB held the rest."
    )
    assert top.fixes[0].startswith("stop pid 537 (python3) with 94.51 GiB")


# -- requirements ----------------------------------------------------------------------------------------------

GUIDANCE_TRACEBACK = """\
Traceback (most recent call last):
  File "/opt/venv/bin/vllm", line 10, in <module>
    sys.exit(main())
  File "/opt/venv/lib/python3.12/site-packages/vllm/v1/structured_output/__init__.py", line 121, in _init
    from vllm.v1.structured_output.backend_guidance import GuidanceBackend
  File "/opt/venv/lib/python3.12/site-packages/vllm/v1/structured_output/backend_guidance.py", line 14, in <module>
    import llguidance
ModuleNotFoundError: No module named 'llguidance'
"""


def test_a_missing_requirement_is_the_headline_with_its_install_command(tmp_path):
    def fails_on_llguidance(payload):  # the real vLLM 0.22.0 install, which lacks llguidance; its log added
        run_log(payload, GUIDANCE_TRACEBACK, ["vllm", "serve", "Qwen/Qwen3-0.6B"])

    analysis = analyze_changed(tmp_path, VLLM, fails_on_llguidance)
    top = analysis.diagnoses[0]
    assert top.rule == "MISSING_REQUIREMENT" and analysis.category == "other"
    assert top.title == (
        "Python cannot import 'llguidance' because llguidance is not installed, though vllm 0.22.0 "
        "requires llguidance<1.8.0,>=1.7.0."
    )
    # the interpreter was made by uv (its pyvenv.cfg says so): uv's pip, pointed at that interpreter
    assert top.fixes[0] == "uv pip install --python /opt/torch/.venv/bin/python3 'llguidance<1.8.0,>=1.7.0'"
    assert "other unmet requirements" in top.fixes[1] and "pip check" in top.fixes[1]
    assert "ModuleNotFoundError: No module named 'llguidance'" in top.evidence


def test_a_module_no_requirement_provides_is_not_blamed_on_the_requirements(tmp_path):
    def fails_on_another_module(payload):
        run_log(payload, GUIDANCE_TRACEBACK.replace("llguidance", "my_plugin"), ["vllm", "serve", "x"])

    analysis = analyze_changed(tmp_path, VLLM, fails_on_another_module)
    assert "MISSING_REQUIREMENT" not in [d.rule for d in analysis.diagnoses]


XGRAMMAR_TRACEBACK = """\
Traceback (most recent call last):
  File "/opt/venv/lib/python3.12/site-packages/vllm/v1/structured_output/backend_xgrammar.py", line 9, in <module>
    import xgrammar as xgr
  File "/opt/venv/lib/python3.12/site-packages/xgrammar/__init__.py", line 1, in <module>
    from . import testing
  File "/opt/venv/lib/python3.12/site-packages/xgrammar/base.py", line 12, in <module>
    _LIB = tvm_ffi.libinfo.load_lib_module("xgrammar", "xgrammar_bindings", keep_module_alive=False)
TypeError: load_lib_module() got an unexpected keyword argument 'keep_module_alive'
"""


def with_tvm_ffi_conflict(payload: dict) -> None:
    """xgrammar installed beside an apache-tvm-ffi older than it requires, as the requirement check records it."""
    payload["packages"].update({"xgrammar": "0.2.0", "apache-tvm-ffi": "0.1.0"})
    payload["requirements_check"] = {
        "parser": "packaging",
        "distributions": len(payload["packages"]),
        "unreadable": 0,
        "truncated": False,
        "problems": [
            {
                "package": "vllm",
                "version": "0.22.0",
                "requirement": "apache-tvm-ffi==0.1.9",
                "name": "apache-tvm-ffi",
                "specifier": "==0.1.9",
                "installed": "0.1.0",
                "problem": "conflict",
            },
            {
                "package": "xgrammar",
                "version": "0.2.0",
                "requirement": "apache-tvm-ffi>=0.1.5",
                "name": "apache-tvm-ffi",
                "specifier": ">=0.1.5",
                "installed": "0.1.0",
                "problem": "conflict",
            },
        ],
        "modules": {"apache-tvm-ffi": ["tvm_ffi"], "xgrammar": ["xgrammar"]},
    }
    run_log(payload, XGRAMMAR_TRACEBACK, ["vllm", "serve", "Qwen/Qwen3-0.6B"])


def test_a_conflict_that_explains_the_error_is_the_headline(tmp_path):
    analysis = analyze_changed(tmp_path, VLLM, with_tvm_ffi_conflict)
    top = analysis.diagnoses[0]
    assert top.rule == "REQUIREMENT_CONFLICT"
    assert top.title == (
        "xgrammar 0.2.0 requires apache-tvm-ffi>=0.1.5, but apache-tvm-ffi 0.1.0 is installed: the "
        "error comes from that mismatch."
    )
    # every requirement on apache-tvm-ffi in one command, so that fixing one does not break the other
    assert top.fixes[0] == "uv pip install --python /opt/torch/.venv/bin/python3 'apache-tvm-ffi==0.1.9,>=0.1.5'"
    assert "TypeError: load_lib_module() got an unexpected keyword argument 'keep_module_alive'" in top.evidence


def test_a_conflict_elsewhere_does_not_explain_an_unrelated_type_error(tmp_path):
    def unrelated(payload):
        with_tvm_ffi_conflict(payload)
        text = XGRAMMAR_TRACEBACK.replace("xgrammar", "mypkg").replace("tvm_ffi.libinfo.load_lib_module", "helper")
        payload["log"]["text"] = text.replace("load_lib_module()", "helper()")

    analysis = analyze_changed(tmp_path, VLLM, unrelated)
    assert "REQUIREMENT_CONFLICT" not in [d.rule for d in analysis.diagnoses]


def test_a_conflict_does_not_explain_a_module_that_is_not_installed(tmp_path):
    def fails_on_llguidance(payload):  # vLLM's own code imports a module nobody installed; tvm-ffi is off too
        with_tvm_ffi_conflict(payload)
        payload["log"]["text"] = GUIDANCE_TRACEBACK

    analysis = analyze_changed(tmp_path, VLLM, fails_on_llguidance)
    assert "REQUIREMENT_CONFLICT" not in [d.rule for d in analysis.diagnoses]


def test_a_missing_submodule_of_the_conflicting_distribution_is_the_conflict(tmp_path):
    def submodule_gone(payload):  # the older apache-tvm-ffi lacks a submodule xgrammar imports
        with_tvm_ffi_conflict(payload)
        text = XGRAMMAR_TRACEBACK.rsplit("\n", 3)[0] + "\n    import tvm_ffi.cpp\n"
        payload["log"]["text"] = text + "ModuleNotFoundError: No module named 'tvm_ffi.cpp'\n"

    top = analyze_changed(tmp_path, VLLM, submodule_gone).diagnoses[0]
    assert top.rule == "REQUIREMENT_CONFLICT"
    assert top.title.startswith("xgrammar 0.2.0 requires apache-tvm-ffi>=0.1.5, but apache-tvm-ffi 0.1.0")


def test_an_error_raised_inside_the_conflicting_distribution_is_the_conflict(tmp_path):
    def inside_tvm_ffi(payload):  # the failing call is deeper, in apache-tvm-ffi's own code
        with_tvm_ffi_conflict(payload)
        frame = (
            '  File "/opt/venv/lib/python3.12/site-packages/tvm_ffi/libinfo.py", line 40, in load_lib_module\n'
            "    return _load(name, keep_alive)\n"
        )
        text = XGRAMMAR_TRACEBACK.replace('load_lib_module("xgrammar"', 'load("xgrammar"')
        head, last = text.rstrip("\n").rsplit("\n", 1)
        payload["log"]["text"] = f"{head}\n{frame}{last.replace('load_lib_module()', '_load()')}\n"

    top = analyze_changed(tmp_path, VLLM, inside_tvm_ffi).diagnoses[0]
    assert top.rule == "REQUIREMENT_CONFLICT" and "apache-tvm-ffi" in top.title


PYCOUNTRY = "h200-1gpu-vllm022-missing-pycountry.zst"  # pydantic-extra-types raised: pycountry is not installed


def with_extras_followed(payload: dict) -> None:
    """The requirement check as the collector now records it: pycountry, wanted through an extra."""
    payload["requirements_check"]["problems"].append(
        {
            "package": "pydantic-extra-types",
            "version": "2.11.1",
            "requirement": 'pycountry>=23; extra == "pycountry"',
            "name": "pycountry",
            "specifier": ">=23",
            "installed": None,
            "problem": "missing",
            "extra": "pycountry",
            "wanted_by": "mistral-common",
        }
    )


def test_a_module_wanted_through_an_extra_is_the_missing_requirement_with_its_chain(tmp_path):
    analysis = analyze_changed(tmp_path, PYCOUNTRY, with_extras_followed)
    top = analysis.diagnoses[0]
    assert top.rule == "MISSING_REQUIREMENT"
    assert top.title == (
        "Python cannot import 'pycountry' because pycountry is not installed, though pydantic-extra-types 2.11.1 "
        "requires pycountry>=23 for its extra 'pycountry', which mistral-common asks for."
    )
    assert top.fixes[0] == "uv pip install --python /opt/torch/.venv/bin/python3 'pycountry>=23'"
    assert any(line.startswith("requirement check (extras followed): ") for line in top.evidence)
    assert "MODULE_REQUIRED_NOT_INSTALLED" not in [d.rule for d in analysis.diagnoses]  # said once


def test_a_library_naming_a_module_that_is_installed_gets_no_missing_module_finding(tmp_path):
    def pycountry_installed(payload):
        payload["packages"]["pycountry"] = "24.6.1"

    analysis = analyze_changed(tmp_path, PYCOUNTRY, pycountry_installed)
    assert "MODULE_REQUIRED_NOT_INSTALLED" not in [d.rule for d in analysis.diagnoses]


def test_a_pasted_optional_module_message_names_the_module_and_the_install_command():
    f = text_facts('RuntimeError: The `phone_numbers` module requires "phonenumbers" to be installed.')
    finding = fire("MODULE_REQUIRED_NOT_INSTALLED", f)
    assert finding.title == "A library needs 'phonenumbers', which is not installed."
    assert finding.fixes[0] == "pip install phonenumbers"


@pytest.mark.parametrize(
    "distribution, module, expected",
    [
        ("flashinfer-python", "flashinfer", True),
        ("apache-tvm-ffi", "tvm_ffi", True),
        ("pyyaml", "yaml", True),
        ("llguidance", "llguidance", True),
        ("torch", "torchvision", False),
        ("flash-attn", "flashinfer", False),
    ],
)
def test_which_distribution_provides_a_module(distribution, module, expected):
    assert provides(text_facts(), distribution, module) is expected


def test_a_recorded_module_list_decides():
    f = text_facts()
    f.requirement_modules = {"opencv-python": ["cv2"]}
    assert provides(f, "opencv-python", "cv2") and not provides(f, "opencv-python", "opencv")


def test_reinstall_commands_leave_the_dependencies_alone():
    f = text_facts()
    assert (
        install_command(f, "vllm", ["==0.22.0"], reinstall=True)
        == "pip install --force-reinstall --no-deps vllm==0.22.0"
    )
    f.python_executable, f.python_env_kind = "/v/bin/python", "uv"
    assert (
        install_command(f, "vllm", [""], reinstall=True)
        == "uv pip install --python /v/bin/python --reinstall --no-deps vllm"
    )


FLASH_ATTN_EXTENSIONS = (
    "ImportError: vllm.vllm_flash_attn requires the CUDA flash attention extensions (_vllm_fa2_C or _vllm_fa3_C). "
    "On ROCm, use upstream flash_attn."
)


def test_missing_flash_attention_extensions_in_pasted_text_say_reinstall_the_pinned_wheel():
    f = text_facts(FLASH_ATTN_EXTENSIONS, vllm_version="0.22.0")
    finding = fire("VLLM_FLASH_ATTN_EXTENSIONS_MISSING", f)
    assert finding.category == "other" and "_vllm_fa3_C" in finding.title
    assert finding.fixes[0].endswith("pip install --force-reinstall --no-deps vllm==0.22.0")
    assert not any(fix.startswith("--attention-backend") for fix in finding.fixes)  # none was given


def test_a_nightly_vllm_is_reinstalled_without_a_pin_it_cannot_resolve():
    f = text_facts(FLASH_ATTN_EXTENSIONS, vllm_version="0.22.1.dev12+g1234abc")
    assert fire("VLLM_FLASH_ATTN_EXTENSIONS_MISSING", f).fixes[0].endswith("--no-deps vllm")


def test_install_commands_follow_the_environment():
    f = text_facts()
    assert install_command(f, "xgrammar", [">=0.2.0", "<1.0.0"]) == "pip install 'xgrammar>=0.2.0,<1.0.0'"
    f.python_executable = "/srv/my env/bin/python"
    assert install_command(f, "xgrammar", [""]) == "'/srv/my env/bin/python' -m pip install xgrammar"
    f.python_env_kind = "uv"
    assert install_command(f, "a", ["==1", "==1"]) == "uv pip install --python '/srv/my env/bin/python' a==1"
