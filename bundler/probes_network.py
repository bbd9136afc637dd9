"""Which node this is, and its network interfaces: what a cluster's nodes are told apart and compared by.

The node id is a hash (never the raw values) of the machine id, the boot id and the host name, so the
same machine collected twice is recognised without the bundle naming it. Interfaces are read from
/sys/class/net; the IPv4 addresses this host holds from /proc/net/fib_trie (its "host LOCAL" leaves)
and the interface each is on from /proc/net/route, the IPv6 ones from /proc/net/if_inet6. Addresses
are only compared, never recorded: for each address-valued variable that is set (VLLM_HOST_IP), the
bundle says whether this host holds that address and on which interface.
"""

from __future__ import annotations

import hashlib
import ipaddress
import os
import platform
import re
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Any

MAX_INTERFACES = 256
INTERFACE_NAME_CHARS = 64
READ_CAP = 4 << 20
# variables whose value is an address that must belong to the node they are set on
LOCAL_ADDRESS_VARIABLES = ("VLLM_HOST_IP",)
_NODE_ID_SALT = "vllm-bug node id"
_FIB_LEAF = re.compile(r"\|--\s+(\d+\.\d+\.\d+\.\d+)\s*$")
_INTERFACE_NAME = re.compile(r"^[\w.:@-]{1,64}$")


def _read(path: Path) -> str | None:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            return fh.read(READ_CAP)
    except OSError:
        return None


def node_id(root: Path = Path("/")) -> str | None:
    """16 hex digits naming this machine (and this boot, in this container): equal only for the same node."""
    machine = _read(root / "etc/machine-id") or _read(root / "var/lib/dbus/machine-id") or ""
    boot = _read(root / "proc/sys/kernel/random/boot_id") or ""
    host = _read(root / "proc/sys/kernel/hostname") or (platform.node() if root == Path("/") else "")
    parts = [machine.strip(), boot.strip(), host.strip()]
    if not any(parts):
        return None
    return hashlib.sha256("\0".join([_NODE_ID_SALT, *parts]).encode("utf-8", "replace")).hexdigest()[:16]


def interfaces(root: Path = Path("/")) -> list[dict[str, Any]]:
    """[{"name": "eth0", "state": "up"}, ...] sorted by name; state is the kernel's operstate or None."""
    try:
        names = sorted(os.listdir(root / "sys/class/net"))
    except OSError:
        names = sorted(name for _, name in socket.if_nameindex()) if root == Path("/") else []
    found = []
    for name in names[:MAX_INTERFACES]:
        if not _INTERFACE_NAME.match(name):
            continue
        state = _read(root / "sys/class/net" / name / "operstate")
        found.append({"name": name, "state": (state.strip()[:32] or None) if state else None})
    return found


def local_ipv4(root: Path = Path("/")) -> set[str]:
    """The IPv4 addresses this host holds: the leaves that /proc/net/fib_trie marks 'host LOCAL'."""
    text = _read(root / "proc/net/fib_trie") or ""
    held: set[str] = set()
    leaf = None
    for line in text.splitlines():
        m = _FIB_LEAF.search(line)
        if m:
            leaf = m.group(1)
        elif leaf and "host LOCAL" in line:
            held.add(leaf)
    return held


def ipv4_routes(root: Path = Path("/")) -> list[tuple[str, ipaddress.IPv4Network]]:
    """(interface, network) for each directly connected route of /proc/net/route (no gateway)."""
    routes = []
    for line in (_read(root / "proc/net/route") or "").splitlines()[1:]:
        fields = line.split()
        if len(fields) < 8 or fields[2] != "00000000":
            continue
        try:
            destination = _little_endian_ipv4(fields[1])
            mask = _little_endian_ipv4(fields[7])
            routes.append((fields[0], ipaddress.IPv4Network(f"{destination}/{mask}", strict=False)))
        except ValueError:
            continue
    return routes


def _little_endian_ipv4(hex_text: str) -> str:
    return str(ipaddress.IPv4Address(int(hex_text, 16).to_bytes(4, "little")))


def local_ipv6(root: Path = Path("/")) -> dict[str, str]:
    """address -> interface, from /proc/net/if_inet6."""
    held = {}
    for line in (_read(root / "proc/net/if_inet6") or "").splitlines():
        fields = line.split()
        if len(fields) < 6 or len(fields[0]) != 32:
            continue
        try:
            address = ipaddress.IPv6Address(int(fields[0], 16))
        except ValueError:
            continue
        held[str(address)] = fields[5]
    return held


def holder(address: str, root: Path = Path("/")) -> dict[str, Any]:
    """{"local": whether this host holds ADDRESS, "interface": the one it is on, when known}.

    A value that is not an address (a host name) gets local None: it is not resolved here.
    """
    try:
        parsed = ipaddress.ip_address(address.strip().split("%")[0])
    except ValueError:
        return {"local": None, "interface": None}
    if isinstance(parsed, ipaddress.IPv6Address):
        v6 = local_ipv6(root)
        return {"local": str(parsed) in v6, "interface": v6.get(str(parsed))}
    if str(parsed) not in local_ipv4(root):
        return {"local": False, "interface": None}
    if parsed.is_loopback:
        return {"local": True, "interface": "lo"}
    matches = [(net.prefixlen, name) for name, net in ipv4_routes(root) if parsed in net]
    return {"local": True, "interface": max(matches)[1] if matches else None}


def network_facts(environ: Mapping[str, str], root: Path = Path("/")) -> dict[str, Any]:
    """The host section's "network": interfaces, and who holds the addresses that variables name."""
    held = {name: holder(environ[name], root) for name in LOCAL_ADDRESS_VARIABLES if environ.get(name, "").strip()}
    return {"interfaces": interfaces(root), "addresses_held": held}
