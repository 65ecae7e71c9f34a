"""The repro's network, inside the container: the veth pairs, their names, their counters.

Pair i: SFE_i_TX <-> far_i_tx and SFE_i_RX <-> far_i_rx.  The target reads and writes the
SFE ends; the generator sends into the far ends and the counters are read there.
"""
from __future__ import annotations

import subprocess


def tx_if(i: int) -> str:
    return f"SFE_{i}_TX"


def rx_if(i: int) -> str:
    return f"SFE_{i}_RX"


def far_tx(i: int) -> str:
    return f"far_{i}_tx"


def far_rx(i: int) -> str:
    return f"far_{i}_rx"


# ---------------------------------------------------------------------------------------
# veth setup
# ---------------------------------------------------------------------------------------

def _sysctl_write(path: str, value: str) -> bool:
    try:
        with open(path, "w", encoding="ascii") as fh:
            fh.write(value)
        return True
    except OSError:
        return False


def _ipv6_disabled(iface: str) -> bool:
    try:
        with open(f"/proc/sys/net/ipv6/conf/{iface}/disable_ipv6", encoding="ascii") as fh:
            return fh.read().strip() == "1"
    except OSError:
        return True  # no IPv6 at all: quiet too


def setup_veths(pairs: int) -> dict:
    """Create and bring up the veth pairs; return what was done (for ready.json).

    IPv6 is switched off so that the kernel sends no router solicitations / MLD reports out
    of SFE_i_RX: far_i_rx must count only what the target forwarded.  /proc/sys is read-only
    in an unprivileged container, so the host also passes net.ipv6.conf.{all,default}
    .disable_ipv6=1 as container sysctls (new interfaces inherit `default`); the writes here
    are a second chance for engines that ignore those.
    """
    for key in ("all", "default"):
        _sysctl_write(f"/proc/sys/net/ipv6/conf/{key}/disable_ipv6", "1")
    cmds = []
    for i in range(pairs):
        cmds.append(f"link add {tx_if(i)} type veth peer name {far_tx(i)}")
        cmds.append(f"link add {rx_if(i)} type veth peer name {far_rx(i)}")
    ifaces = [n for i in range(pairs) for n in (far_tx(i), far_rx(i), tx_if(i), rx_if(i))]
    for name in ifaces:
        cmds.append(f"link set {name} up")
    subprocess.run(["ip", "-batch", "-"], input="\n".join(cmds) + "\n", text=True, check=True)
    quiet = True
    for name in ifaces:
        _sysctl_write(f"/proc/sys/net/ipv6/conf/{name}/disable_ipv6", "1")
        quiet = quiet and _ipv6_disabled(name)
    return {"ifaces": ifaces, "ipv6_disabled": quiet}


# ---------------------------------------------------------------------------------------
# counters
# ---------------------------------------------------------------------------------------

def read_counter(iface: str, name: str = "rx_packets") -> int | None:
    try:
        with open(f"/sys/class/net/{iface}/statistics/{name}", encoding="ascii") as fh:
            return int(fh.read().strip())
    except (OSError, ValueError):
        return None


def snapshot(pairs: int, send_rx: bool) -> dict:
    """Frames that left each forwarding interface, as counted on its veth peer.

    Key SFE_i_RX: what the target wrote out of SFE_i_RX (TX->RX forwarding), counted as
    rx_packets of far_i_rx.  With send_rx, also SFE_i_TX (RX->TX forwarding) on far_i_tx.
    Nothing else sends out of the SFE ends (no addresses, IPv6 off), so the count is the
    target's forwarding alone.
    """
    snap = {rx_if(i): read_counter(far_rx(i)) for i in range(pairs)}
    if send_rx:
        snap.update({tx_if(i): read_counter(far_tx(i)) for i in range(pairs)})
    return snap


def _sent_toward_rx(pairs: int) -> dict:
    """tx_packets of each far_i_rx, keyed by the SFE_i_RX it feeds."""
    return {rx_if(i): read_counter(far_rx(i), "tx_packets") for i in range(pairs)}


def offered(pairs: int, send_rx: bool) -> dict:
    """Frames the generator put on the wire toward each read interface (far end tx_packets)."""
    snap = {tx_if(i): read_counter(far_tx(i), "tx_packets") for i in range(pairs)}
    if send_rx:
        snap.update(_sent_toward_rx(pairs))
    return snap


def stray_toward_rx(pairs: int, send_rx: bool) -> dict:
    """Frames the far end of each SFE_i_RX emitted while the generator sends nothing there.

    Only the kernel could emit them (the generator writes into far_i_rx only with send_rx);
    the target reads every one on SFE_i_RX, so a shutdown count that is not 0 there is
    explained (or not) by this, instead of by guesswork.
    """
    return {} if send_rx else _sent_toward_rx(pairs)


def delta(before: dict, after: dict) -> dict:
    """after - before per key; None where either side could not be read."""
    return {k: (after[k] - before[k]) if after.get(k) is not None and before[k] is not None else None
            for k in before}
