"""pip freeze and pip list output, and collect_env's package entries."""

from pathlib import Path

from vllm_bug.formats.pip_list import Package, parse_entry, parse_packages

PIP_LIST = (Path(__file__).parent / "fixtures" / "device" / "h200" / "pip-list.txt").read_text()


def test_a_real_pip_list():
    packages = parse_packages(PIP_LIST)
    assert len(packages) == PIP_LIST.count("\n") - 2
    assert packages[0] == Package("absl-py", "2.5.0")
    assert any(p.name == "torch" for p in packages)


def test_freeze_lines_come_first_and_may_be_bulleted():
    text = "Package Version\n------- -------\nvllm    0.6.3.post1\n\n- torch==2.4.0\n`transformers==4.45.2`\n"
    assert parse_packages(text) == [
        Package("torch", "2.4.0"),
        Package("transformers", "4.45.2"),
        Package("vllm", "0.6.3.post1"),
    ]


def test_a_table_ends_at_the_first_row_that_is_not_one():
    text = "Package    Version\n---------- -------\nvllm       0.9.1\nthat was all\ntorch      2.7.0\n"
    assert parse_packages(text) == [Package("vllm", "0.9.1")]


def test_collect_env_entries():
    assert parse_entry("torch==2.8.0+cu128") == Package("torch", "2.8.0+cu128")
    assert parse_entry("numpy                     2.2.6                    pypi_0    pypi", conda=True) == Package(
        "numpy", "2.2.6"
    )
    assert parse_entry("numpy                     2.2.6") is None  # a pip entry needs '=='
    assert parse_entry("") is None
