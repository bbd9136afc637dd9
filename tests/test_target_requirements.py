"""The target probe's own requirement checks, against packaging (what pip uses) as the reference."""

from __future__ import annotations

import itertools

import pytest
from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet

from vllm_bug.bundler import target_requirements as tr

VERSIONS = (
    "0",
    "0.9",
    "1",
    "1.0",
    "1.0.0",
    "1.0.1",
    "1.0a1",
    "1.0b2",
    "1.0rc1",
    "1.0.post1",
    "1.0.dev0",
    "1.0a1.dev1",
    "1.0+local",
    "1.0.post1+x",
    "1.1",
    "1.1.0rc1",
    "2.0",
    "2.0.0.post0",
    "1!1.0",
    "1.7",
    "1.7.1",
    "1.7rc1",
    "1.7.post1",
    "1.7+abc",
    "1.8",
    "1.8.0.dev1",
    "0.1.5",
    "0.1.10",
    "2.9.0+cu128",
    "2.9.1",
    "12.8.90",
    "1.0-1",
    "1.0_rc_2",
    "v1.2",
    "1.0.RC1",
)
SPECIFIERS = (
    "==1.0",
    "==1.0.*",
    "!=1.0",
    "!=1.*",
    ">=1.0",
    "<=1.0",
    ">1.0",
    "<1.0",
    "~=1.0",
    "~=1.0.0",
    "<1.7",
    ">1.7",
    ">=1.7,<1.8",
    "==1.0+local",
    "===1.0",
    "==2.9.0",
    ">=0.1.5",
    "<2,>=1.0rc1",
    "<1.0rc2",
    ">1.0.post1",
    "==1.7.*,!=1.7.1",
    "~=2.9",
    "",
    "== 1.0 , != 1.0.1",
)
MARKERS = (
    'python_version >= "3.8"',
    'python_version < "3.9"',
    'python_full_version >= "3.10.1"',
    'sys_platform == "linux"',
    'sys_platform == "win32" and python_version < "3.12"',
    'platform_machine == "x86_64" or platform_machine == "arm64" or platform_machine == "aarch64"',
    '(platform_system == "Linux" and platform_machine == "x86_64") or extra == "cuda"',
    'extra == "test"',
    'extra == "Dev_Tools" or python_version > "2.7"',
    '"linux" in sys_platform',
    '"win" not in sys_platform',
    'implementation_name == "cpython"',
    "os_name == 'posix'",
    'platform_python_implementation != "PyPy"',
    'python_version ~= "3.10"',
    'platform_release >= "5"',
    'platform_system != "Darwin" and (python_version >= "3.9" or implementation_name == "pypy")',
)
REQUIREMENTS = (
    "torch==2.9.0",
    "numpy<2.0,>=1.21",
    "fastapi[standard]>=0.115.0",
    "pkg (>=1.0, <2)",
    "a",
    'llguidance<1.8.0,>=1.7.0; platform_machine == "x86_64" or platform_machine == "arm64"',
    "triton==3.5.0; platform_system == 'Linux' and platform_machine == 'x86_64'",
    "name @ https://example.invalid/name-1.0.tar.gz ; python_version >= '3'",
    "zope.interface~=6.0",
    "opencv-python-headless!=4.10.0.84,>=4.9.0.80",
)


@pytest.mark.parametrize("specifier", SPECIFIERS)
def test_specifiers_match_versions_as_packaging_does(specifier):
    reference = SpecifierSet(specifier)
    for version in VERSIONS:
        assert tr.specifier_contains(specifier, version) == reference.contains(version, prereleases=True), version


@pytest.mark.parametrize("marker", MARKERS)
def test_markers_evaluate_as_packaging_does(marker):
    environment = dict(tr.marker_environment(), extra="")
    assert tr.evaluate_marker(marker, environment) == Marker(marker).evaluate({"extra": ""})


def test_marker_environment_is_packagings():
    from packaging.markers import default_environment

    assert tr.marker_environment() == {k: v for k, v in default_environment().items() if k != "extra"}


@pytest.mark.parametrize("text", REQUIREMENTS)
def test_requirements_read_as_packaging_reads_them(text):
    ours, reference = tr.Requirement(text), Requirement(text)
    assert ours.name == reference.name
    assert SpecifierSet(ours.specifier) == reference.specifier
    assert (ours.marker is None) == (reference.marker is None)
    assert ours.url == reference.url
    if ours.marker is not None:
        assert Marker(ours.marker) == reference.marker


def test_versions_order_as_packaging_orders_them():
    from packaging.version import Version

    for a, b in itertools.combinations(VERSIONS, 2):
        ours = tr.Version(a).key() < tr.Version(b).key()
        assert ours == (Version(a) < Version(b)), (a, b)


@pytest.mark.parametrize("bad", ["pkg >= 1.0 ; python_version >>", "pkg[extra", "==1.0", "pkg; unknown_var == '1'"])
def test_unreadable_requirements_raise_value_error(bad):
    with pytest.raises(ValueError):
        tools = tr.BundledTools()
        tools.applies(tools.parse(bad))


def test_unreadable_specifiers_and_versions_are_unknown_not_false():
    assert tr.specifier_contains(">=1.0", "not a version") is None
    assert tr.specifier_contains(">=banana", "1.0") is None
    assert tr.specifier_contains("===not-a-version", "not-a-version") is True


def test_problems_skip_optional_and_foreign_requirements_and_count_unreadable_lines():
    declared = [
        (
            "vllm",
            "0.22.0",
            [
                "flashinfer-python",
                'pytest; extra == "test"',
                'pywin32; sys_platform == "win32"',
                "torch==2.9.0",
                "broken (((",
            ],
        ),
        ("torch", "2.9.0", []),
    ]
    found = tr.requirement_problems(declared, {"vllm": "0.22.0", "torch": "2.9.0"}, tr.BundledTools())
    assert [(p["package"], p["name"], p["problem"]) for p in found["problems"]] == [
        ("vllm", "flashinfer-python", "missing")
    ]
    assert found["unreadable"] == 1 and found["truncated"] is False


def test_problems_are_capped():
    declared = [(f"pkg{i}", "1.0", ["missing-dependency"]) for i in range(tr.MAX_PROBLEMS + 5)]
    found = tr.requirement_problems(declared, {}, tr.BundledTools())
    assert len(found["problems"]) == tr.MAX_PROBLEMS and found["truncated"] is True


def test_extra_only_markers_are_skipped_without_parsing():
    class Refuses(tr.BundledTools):
        def parse(self, raw):
            raise AssertionError("an extra-only requirement must not be parsed")

    assert tr.applicable('anything at all; extra == "dev"', Refuses()) is None


def packaging_tools():
    return tr.PackagingTools(Requirement, "packaging")


EXTRA_CHAIN = [
    # the real chain of the missing-pycountry bundle: vllm -> mistral-common -> pydantic-extra-types[pycountry]
    ("mistral-common", "1.13.1", ["pydantic-extra-types[pycountry]>=2.10.5", "numpy>=1.25"]),
    (
        "pydantic-extra-types",
        "2.11.1",
        ["pydantic>=2.5.2", 'pycountry>=23; extra == "pycountry"', 'phonenumbers<10,>=8; extra == "phonenumbers"'],
    ),
    ("pydantic", "2.14.4", []),
    ("numpy", "2.2.0", []),
]
INSTALLED = {"mistral-common": "1.13.1", "pydantic-extra-types": "2.11.1", "pydantic": "2.14.4", "numpy": "2.2.0"}


@pytest.mark.parametrize("tools", [tr.BundledTools, packaging_tools], ids=["bundled", "packaging"])
def test_an_extra_a_requirement_selects_adds_its_requirements_as_pip_installs_them(tools):
    found = tr.requirement_problems(EXTRA_CHAIN, INSTALLED, tools())
    assert found["problems"] == [
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
    ]  # phonenumbers belongs to an extra nobody selected


@pytest.mark.parametrize("tools", [tr.BundledTools, packaging_tools], ids=["bundled", "packaging"])
def test_extras_are_followed_through_other_extras_and_met_ones_are_quiet(tools):
    declared = [
        ("app", "1.0", ["lib[Fast_IO]"]),
        ("lib", "2.0", ['speedups[all]; extra == "fast-io"']),
        ("speedups", "3.0", ['zstd>=1.5; extra == "all"', 'lz4; extra == "all"']),
        ("zstd", "1.4", []),
        ("lz4", "4.0", []),
    ]
    installed = {"app": "1.0", "lib": "2.0", "speedups": "3.0", "zstd": "1.4", "lz4": "4.0"}
    found = tr.requirement_problems(declared, installed, tools())
    assert [(p["package"], p["name"], p["problem"], p["extra"], p["wanted_by"]) for p in found["problems"]] == [
        ("speedups", "zstd", "conflict", "all", "lib")
    ]


def test_an_extra_of_a_missing_distribution_adds_nothing_beyond_the_missing_one():
    found = tr.requirement_problems([("app", "1.0", ["lib[x]"])], {"app": "1.0"}, tr.BundledTools())
    assert [(p["name"], p["problem"]) for p in found["problems"]] == [("lib", "missing")]
