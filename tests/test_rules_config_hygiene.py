from rule_helpers import facts, fire, fire_all, text_of


def test_attention_backend_env_var_by_version():
    line = "VLLM_ATTENTION_BACKEND=FLASHINFER vllm serve m"
    assert "--attention-backend" in text_of(fire("STALE_ENV_VAR", facts(line, vllm_version="0.26.0")))
    deprecated = fire("STALE_ENV_VAR", facts(line, vllm_version="0.12.0"))
    assert "deprecated" in deprecated.title and "--attention-backend FLASHINFER" in text_of(deprecated)
    assert fire("STALE_ENV_VAR", facts(line, vllm_version="0.8.5")) is None


def test_fictional_variables_always_flagged():
    findings = fire_all(
        "STALE_ENV_VAR", facts("export VLLM_DISABLE_CUDA_GRAPH=1", "export VLLM_USE_PRECOMPILED_KERNELS=1")
    )
    assert {f.title.split()[0] for f in findings} == {"VLLM_DISABLE_CUDA_GRAPH", "VLLM_USE_PRECOMPILED_KERNELS"}
    assert all("never been" in f.title for f in findings)


def test_use_v1_removed():
    assert fire("STALE_ENV_VAR", facts(env={"VLLM_USE_V1": "0"}, vllm_version="0.11.0")) is not None
    assert fire("STALE_ENV_VAR", facts(env={"VLLM_USE_V1": "0"}, vllm_version="0.9.2")) is None


def test_unknown_env_warning_and_port_uri():
    f = facts("WARNING Unknown vLLM environment variable detected: VLLM_FOO_BAR")
    assert "VLLM_FOO_BAR" in fire("UNKNOWN_VLLM_ENV_VAR", f).title
    assert fire("VLLM_PORT_IS_URI", facts(env={"VLLM_PORT": "tcp://10.0.0.1:8000"})) is not None
    assert fire("VLLM_PORT_IS_URI", facts(env={"VLLM_PORT": "8000"})) is None


def test_stale_variable_is_quoted_from_the_line_that_names_it():
    f = facts("export VLLM_USE_V1_EXTRA=1", "VLLM_USE_V1=0 python serve.py", vllm_version="0.11.0")
    assert fire("STALE_ENV_VAR", f).evidence == ["VLLM_USE_V1=0 python serve.py"]
    given_as_fact = fire("STALE_ENV_VAR", facts(env={"VLLM_TORCH_COMPILE": "1"}))
    assert given_as_fact.evidence == ["VLLM_TORCH_COMPILE=1"]


def test_unknown_env_names_are_read_from_each_warning():
    f = facts(
        "WARNING [envs.py:1830] Unknown vLLM environment variable detected: VLLM_B",
        "WARNING [envs.py:1830] Unknown vLLM environment variable detected: VLLM_A",
    )
    finding = fire("UNKNOWN_VLLM_ENV_VAR", f)
    assert finding.title.startswith("vLLM does not know VLLM_A, VLLM_B:") and finding.fixes == [
        "unset VLLM_A",
        "unset VLLM_B",
    ]


def test_every_removed_variable_is_recognised_by_its_signal():
    from vllm_bug.analyzer.knowledge import REMOVED_ENV

    for entry in REMOVED_ENV:
        hits = facts(f"export {entry.name}=1").signals.all("REMOVED_ENV_VAR_NAMED")
        assert [hit.groups["name"] for hit in hits] == [entry.name]
