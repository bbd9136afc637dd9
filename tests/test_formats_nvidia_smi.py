"""nvidia-smi's banner, tables and --query-gpu CSV, read from real output of H200 machines."""

from pathlib import Path

from vllm_bug.formats.nvidia_smi import (
    SmiGpuRow,
    SmiHeader,
    SmiProcess,
    driver_failure_line,
    is_unavailable,
    looks_like_nvidia_smi,
    parse_enabled,
    parse_header,
    parse_number,
    parse_query_csv,
    parse_table,
    rejected_fields,
)

FIXTURES = Path(__file__).parent / "fixtures"
PLAIN = (FIXTURES / "device" / "h200x2" / "nvidia-smi.txt").read_text()
QUERY = (FIXTURES / "device" / "h200x2" / "nvidia-smi-q.txt").read_text()
OLD_LAYOUT = """\
| NVIDIA-SMI 470.82.01    Driver Version: 470.82.01    CUDA Version: 11.4     |
|===============================+======================+======================|
|   0  Tesla V100-SXM2...  On   | 00000000:00:1E.0 Off |                    0 |
| N/A   34C    P0    41W / 300W |  15890MiB / 16160MiB |      0%      Default |
+-------------------------------+----------------------+----------------------+
| Processes:                                                                  |
|    0   N/A  N/A     12345      C   python3                         15887MiB |
|    0   N/A  N/A       777      G   Xorg                                N/A |
"""


def test_banner_and_q_headers():
    assert parse_header(PLAIN) == SmiHeader("580.159.04", "13.0")
    assert parse_header(QUERY) == SmiHeader("580.159.04", "13.0")
    assert parse_header("nothing here") is None
    assert parse_header("CUDA Version: 12.4 (from the container)") == SmiHeader(None, "12.4")


def test_a_driver_version_needs_a_three_digit_major():
    assert parse_header("Driver Version: 12.4") is None


def test_gpu_rows_of_a_real_table():
    table = parse_table(PLAIN)
    assert table.gpus == [SmiGpuRow(0, "NVIDIA H200", 0, 143771), SmiGpuRow(1, "NVIDIA H200", 0, 143771)]
    assert table.processes == []


def test_old_layout_with_processes():
    table = parse_table(OLD_LAYOUT)
    assert table.gpus == [SmiGpuRow(0, "Tesla V100-SXM2...", 15890, 16160)]
    assert table.processes == [SmiProcess(0, 12345, "C", "python3", 15887), SmiProcess(0, 777, "G", "Xorg", None)]
    assert parse_table("| no memory here |") is None


def test_what_looks_like_nvidia_smi():
    assert looks_like_nvidia_smi(PLAIN) and looks_like_nvidia_smi(QUERY)
    assert not looks_like_nvidia_smi("command not found")
    failed = "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that ..."
    assert driver_failure_line("some\n" + failed + "\nmore") == failed
    assert driver_failure_line(PLAIN) is None


def test_query_csv_with_header_and_units():
    rows = parse_query_csv((FIXTURES / "device" / "h200x2" / "query.csv").read_text())
    assert len(rows) == 2
    assert rows[0]["memory.total"] == "143771 MiB" and rows[1]["pci.bus_id"] == "00000000:00:07.0"
    assert parse_query_csv("0, [N/A], x", ("index", "name", "uuid")) == [{"index": "0", "name": None, "uuid": "x"}]
    assert parse_query_csv("0, too, many, cells", ("index", "name")) == []


def test_values():
    assert parse_number("143771 MiB") == 143771.0 and parse_number("99.5 W") == 99.5 and parse_number("[N/A]") is None
    assert parse_enabled("Enabled") is True and parse_enabled("Off") is False and parse_enabled("N/A") is None
    assert is_unavailable("[Not Supported]") and not is_unavailable("0")
    assert rejected_fields('Field "compute_cap" is not a valid field to query.')
