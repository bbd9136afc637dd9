"""Node id and network interfaces from a fake root laid out like a real Linux host's /proc and /sys."""

from pathlib import Path

from test_probes_host import assert_valid
from vllm_bug.bundler import probes_network as N
from vllm_bug.bundler.probes_host import collect_host
from vllm_bug.bundler.runner import Manifest

# /proc/net files as a Linux VM with one Ethernet interface printed them (trimmed to the Main table)
FIB_TRIE = """Main:
  +-- 0.0.0.0/0 3 0 5
     |-- 0.0.0.0
        /0 universe UNICAST
     +-- 127.0.0.0/8 2 0 2
        +-- 127.0.0.0/31 1 0 0
           |-- 127.0.0.0
              /8 host LOCAL
           |-- 127.0.0.1
              /32 host LOCAL
        |-- 127.255.255.255
           /32 link BROADCAST
     +-- 192.0.2.0/24 2 0 2
        +-- 192.0.2.0/30 2 0 2
           |-- 192.0.2.0
              /24 link UNICAST
           |-- 192.0.2.2
              /32 host LOCAL
        |-- 192.0.2.255
           /32 link BROADCAST
"""
ROUTE = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n"
    "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n"
    "eth0\t000200C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n"
)
IF_INET6 = (
    "fd000000000000000000000000000002 04 40 00 82     eth0\n00000000000000000000000000000001 01 80 10 80       lo\n"
)


def network_root(
    tmp_path: Path, machine_id: str = "0123456789abcdef0123456789abcdef", hostname: str = "node-a"
) -> Path:
    root = tmp_path / "root"
    for name, state in (("eth0", "up"), ("lo", "unknown"), ("ib0", "down")):
        (root / "sys/class/net" / name).mkdir(parents=True)
        (root / "sys/class/net" / name / "operstate").write_text(state + "\n")
    (root / "proc/net").mkdir(parents=True)
    (root / "proc/net/fib_trie").write_text(FIB_TRIE)
    (root / "proc/net/route").write_text(ROUTE)
    (root / "proc/net/if_inet6").write_text(IF_INET6)
    (root / "proc/sys/kernel/random").mkdir(parents=True)
    (root / "proc/sys/kernel/random/boot_id").write_text("6f1c0e5e-1111-2222-3333-444455556666\n")
    (root / "proc/sys/kernel/hostname").write_text(hostname + "\n")
    (root / "etc").mkdir()
    (root / "etc/machine-id").write_text(machine_id + "\n")
    return root


def test_interfaces_with_their_state(tmp_path):
    root = network_root(tmp_path)
    assert N.interfaces(root) == [
        {"name": "eth0", "state": "up"},
        {"name": "ib0", "state": "down"},
        {"name": "lo", "state": "unknown"},
    ]


def test_an_address_the_host_holds_is_placed_on_its_interface(tmp_path):
    root = network_root(tmp_path)
    assert N.local_ipv4(root) == {"127.0.0.0", "127.0.0.1", "192.0.2.2"}
    assert N.holder("192.0.2.2", root) == {"local": True, "interface": "eth0"}
    assert N.holder("127.0.0.1", root) == {"local": True, "interface": "lo"}
    assert N.holder("fd00::2", root) == {"local": True, "interface": "eth0"}


def test_an_address_of_another_host_or_a_name_is_not_claimed(tmp_path):
    root = network_root(tmp_path)
    assert N.holder("192.0.2.3", root) == {"local": False, "interface": None}  # same subnet, another machine
    assert N.holder("fd00::3", root) == {"local": False, "interface": None}
    assert N.holder("head-node.cluster", root) == {"local": None, "interface": None}


def test_network_facts_name_only_the_variables_set(tmp_path):
    root = network_root(tmp_path)
    facts = N.network_facts({"VLLM_HOST_IP": "192.0.2.9", "MASTER_ADDR": "192.0.2.2"}, root)
    assert facts["addresses_held"] == {"VLLM_HOST_IP": {"local": False, "interface": None}}
    assert [i["name"] for i in facts["interfaces"]] == ["eth0", "ib0", "lo"]
    assert N.network_facts({}, root)["addresses_held"] == {}


def test_node_id_is_a_hash_equal_only_for_the_same_node(tmp_path):
    first = N.node_id(network_root(tmp_path / "a"))
    again = N.node_id(network_root(tmp_path / "b"))
    other_host = N.node_id(network_root(tmp_path / "c", hostname="node-b"))
    other_machine = N.node_id(network_root(tmp_path / "d", machine_id="f" * 32))
    assert first is not None and len(first) == 16 and int(first, 16) >= 0
    assert first == again
    assert len({first, other_host, other_machine}) == 3
    assert "node-a" not in first and "0123456789abcdef" not in first


def test_an_empty_root_gives_no_node_id_and_no_interfaces(tmp_path):
    assert N.node_id(tmp_path) is None
    assert N.network_facts({"VLLM_HOST_IP": "10.0.0.1"}, tmp_path) == {
        "interfaces": [],
        "addresses_held": {"VLLM_HOST_IP": {"local": False, "interface": None}},
    }


def test_host_section_carries_node_id_and_network_and_stays_valid(tmp_path):
    root = network_root(tmp_path)
    host = collect_host(Manifest(), environ={"VLLM_HOST_IP": "192.0.2.2"}, root=root)
    assert host["node_id"] == N.node_id(root)
    assert host["network"]["addresses_held"]["VLLM_HOST_IP"] == {"local": True, "interface": "eth0"}
    assert_valid(host)


def test_this_machine_has_interfaces():
    names = [i["name"] for i in N.interfaces()]
    assert "lo" in names
    assert N.node_id() is not None
