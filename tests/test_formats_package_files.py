"""package_folder finds what importlib.resources.files finds, without importing it for a package on disk."""

import subprocess
import sys
import zipfile
from importlib import resources

from vllm_bug.formats.package_files import package_folder


def test_the_same_folder_as_importlib_resources():
    for package in ("vllm_bug.analyzer", "vllm_bug.schema"):
        assert package_folder(package) == resources.files(package)
    table = package_folder("vllm_bug.analyzer").joinpath("data/known_issues.json")
    assert table.read_bytes() == resources.files("vllm_bug.analyzer").joinpath("data/known_issues.json").read_bytes()


def test_a_package_on_disk_does_not_import_importlib_resources():
    script = (
        "import sys, vllm_bug.analyzer\n"
        "from vllm_bug.formats.package_files import package_folder\n"
        "package_folder('vllm_bug.analyzer').joinpath('data/models.json').read_bytes()\n"
        "print('importlib.resources' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert done.stdout == "False\n"


def test_a_package_in_a_zip_archive_is_read_through_importlib_resources(tmp_path, monkeypatch):
    archive = tmp_path / "zipped.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("zipped_pkg/__init__.py", "")
        zf.writestr("zipped_pkg/table.json", '{"rows": {}}')
    monkeypatch.syspath_prepend(str(archive))
    import zipped_pkg  # noqa: F401

    try:
        assert package_folder("zipped_pkg").joinpath("table.json").read_text("utf-8") == '{"rows": {}}'
    finally:
        sys.modules.pop("zipped_pkg", None)
