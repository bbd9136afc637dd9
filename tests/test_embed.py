import base64
import zipfile
from pathlib import Path

import pytest

from conftest import minimal_payload
from vllm_bug.analyzer.embed import EMBED_MAX_BYTES, EXTRACT_MAX_BYTES, embed_block, extract_embedded_bundle
from vllm_bug.commands import report_files
from vllm_bug.commands.report_files import BundleFiles, BundleNames, write_bundle_files, zip_bundle
from vllm_bug.errors import UnreadableInput, UnsafeInput, VllmBugError
from vllm_bug.schema.bundle import decode, encode, make_envelope


def bundle_doc():
    payload = minimal_payload()
    payload["gpus"] = [
        {"index": 0, "name": "NVIDIA H200", "compute_capability": "9.0", "memory_total_bytes": 150 << 30}
    ]
    payload["log"] = {
        "source": "file",
        "name": "vllm.log",
        "truncated": False,
        "text": "Traceback (most recent call last):\n"
        '  File "/usr/lib/python3.12/site-packages/vllm/v1/worker/gpu_worker.py", line 9, in load_model\n'
        "    x()\n"
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total capacity of 139.8 GiB\n",
    }
    payload["redactions"] = [{"kind": "hf_token", "count": 1}]
    return make_envelope(payload, created_utc="2026-01-02T03:04:05Z")


@pytest.fixture
def bundle():
    doc = bundle_doc()
    return doc, encode(doc)


def test_round_trip_through_a_report(bundle):
    _, data = bundle
    text = "# report\n\nsome prose\n\n" + embed_block(data) + "\n\nmore\n"
    assert extract_embedded_bundle(text) == data


@pytest.mark.parametrize(
    "mangle",
    [
        lambda t: t.replace("\n", "\r\n"),
        lambda t: "\n".join("> " + line for line in t.split("\n")),  # quoted in a reply
        lambda t: "\n".join(">> " + line + "   " for line in t.split("\n")),  # quoted twice, trailing spaces
        lambda t: "\n".join("    " + line for line in t.split("\n")),  # indented
    ],
)
def test_survives_what_github_and_people_do_to_pasted_text(bundle, mangle):
    _, data = bundle
    assert extract_embedded_bundle(mangle("intro\n" + embed_block(data) + "\noutro")) == data


def test_no_marker_means_none():
    assert extract_embedded_bundle("just a log\nRuntimeError: x\n") is None


def test_damage_is_reported_not_guessed(bundle):
    _, data = bundle
    block = embed_block(data)
    with pytest.raises(UnreadableInput, match="cut off"):
        extract_embedded_bundle(block.split("-----END")[0])
    lines = block.split("\n")
    flipped = lines[:]
    flipped[2] = ("B" if flipped[2][0] != "B" else "C") + flipped[2][1:]
    with pytest.raises(UnreadableInput, match="sha256"):
        extract_embedded_bundle("\n".join(flipped))
    with pytest.raises(UnreadableInput, match="header says"):
        extract_embedded_bundle("\n".join(lines[:2] + lines[3:]))
    with pytest.raises(UnreadableInput, match="base64"):
        extract_embedded_bundle("\n".join(lines[:2] + ["<script>!!</script>"] + lines[2:]))


def test_oversized_embed_is_refused():
    huge = base64.b64encode(b"\0" * (EXTRACT_MAX_BYTES + 1024)).decode()
    text = "-----BEGIN VLLM-BUG BUNDLE v1-----\n" + huge + "\n-----END VLLM-BUG BUNDLE v1-----\n"
    with pytest.raises(UnsafeInput):
        extract_embedded_bundle(text)


def test_zip_holds_the_bundle_stored(bundle):
    _, data = bundle
    archive = zipfile.ZipFile(__import__("io").BytesIO(zip_bundle(data, "b.zst", "2026-01-02T03:04:06Z")))
    [info] = archive.infolist()
    assert info.filename == "b.zst" and info.compress_type == zipfile.ZIP_STORED
    assert info.date_time == (2026, 1, 2, 3, 4, 6)  # zip times have 2-second steps
    assert archive.read(info) == data


def test_report_paths():
    files = BundleFiles.beside(Path("/tmp/x/vllm-bug-2026.zst"))
    assert str(files.report) == "/tmp/x/vllm-bug-2026.md" and str(files.archive) == "/tmp/x/vllm-bug-2026.zip"


def names_for(tmp_path):
    return BundleNames(tmp_path, "b", ".zst", given=True)


def test_write_bundle_files_writes_md_and_zip_and_never_overwrites(tmp_path, bundle):
    doc, data = bundle
    written = write_bundle_files(doc, names_for(tmp_path), force=False, take_another=False)
    assert written.notes == []
    assert written.files.bundle.read_bytes() == data
    assert (written.files.environment.name, written.files.describe.name) == ("b.environment.md", "b.describe.md")
    lines = written.steps
    assert lines[0].startswith(
        "open https://github.com/vllm-project/vllm/issues/new?template=400-bug-report.yml&title="
    )
    assert lines[1].startswith(
        f"paste {tmp_path / 'b.environment.md'} into 'Your current environment' and "
        f"{tmp_path / 'b.describe.md'} into '🐛 Describe the bug'"
    )
    assert lines[2].startswith(f"attach {tmp_path / 'b.zip'} to the issue")
    assert lines[3].endswith(f"--body-file {tmp_path / 'b.md'}")
    assert "gh issue create --repo vllm-project/vllm" in lines[3]
    report = written.files.report.read_text("utf-8")
    assert "### Your current environment" in report and "NVIDIA H200" in report
    assert "Attach the bundle's **.zip**" in report
    assert len(data) <= EMBED_MAX_BYTES and extract_embedded_bundle(report) == data
    assert decode(extract_embedded_bundle(report)) == doc
    assert zipfile.ZipFile(written.files.archive).read("b.zst") == data
    written.files.describe.write_text("mine")
    with pytest.raises(VllmBugError, match="already exists"):
        write_bundle_files(doc, names_for(tmp_path), force=False, take_another=False)
    assert written.files.describe.read_text() == "mine" and written.files.report.read_text("utf-8") == report
    written.files.report.write_text("mine")
    with pytest.raises(VllmBugError, match="already exists"):
        write_bundle_files(doc, names_for(tmp_path), force=False, take_another=False)
    assert written.files.report.read_text() == "mine"
    write_bundle_files(doc, names_for(tmp_path), force=True, take_another=False)
    assert written.files.report.read_text() != "mine"


def test_zip_alone_blocks_writing_any_file(tmp_path, bundle):
    doc, _ = bundle
    (tmp_path / "b.zip").write_bytes(b"keep")
    with pytest.raises(VllmBugError):
        write_bundle_files(doc, names_for(tmp_path), force=False, take_another=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.zip"]  # no bundle, no report, no temporary file
    assert (tmp_path / "b.zip").read_bytes() == b"keep"


def test_a_taken_name_moves_all_the_files_to_the_next_number(tmp_path, bundle):
    doc, data = bundle
    (tmp_path / "b.md").write_bytes(b"keep")
    written = write_bundle_files(doc, names_for(tmp_path), force=False, take_another=True)
    assert written.files == BundleFiles.beside(tmp_path / "b-2.zst")
    assert zipfile.ZipFile(written.files.archive).read("b-2.zst") == data
    assert written.notes == [
        f"{tmp_path / 'b.zst'} was created by someone else meanwhile; wrote {tmp_path / 'b-2.zst'} instead"
    ]
    assert (tmp_path / "b.md").read_bytes() == b"keep" and not (tmp_path / "b.zst").exists()


def test_the_loader_accepts_every_form_collect_produces(tmp_path, bundle):
    load = pytest.importorskip("vllm_bug.analyzer.load")
    doc, _ = bundle
    files = write_bundle_files(doc, names_for(tmp_path), force=False, take_another=False).files
    quoted = tmp_path / "quoted.md"
    quoted.write_text("\n".join("> " + line for line in files.report.read_text().split("\n")).replace("\n", "\r\n"))
    for path in (files.bundle, files.archive, files.report, quoted, files.describe):  # the bundle rides in the describe
        loaded = load.load_input(str(path))
        assert loaded.kind == "bundle" and loaded.doc == doc, path


def test_a_report_that_cannot_be_made_never_costs_the_bundle(tmp_path, bundle, monkeypatch):
    doc, data = bundle

    def boom(doc, data):
        raise KeyError("analysis bug")

    monkeypatch.setattr(report_files, "render_report_for_bundle", boom)
    written = write_bundle_files(doc, names_for(tmp_path), force=False, take_another=False)
    assert written.steps == []
    assert written.files.bundle.read_bytes() == data
    assert [p for p in written.files.companions() if p.exists()] == []
    [note] = written.notes
    assert note.startswith("report not written (KeyError") and note.endswith("b.zst --format markdown")
