"""afpbisect repro driver: runs INSIDE the repro container, with Debian's python3 (stdlib only).

Shipped whole as the directory /afp/afpdriver and run as `python3 /afp/afpdriver CMD`
(docs/ARCHITECTURE.md, "how a target is run").  Two subcommands:

  serve --config /afp/config.json
      The container's main process.  Makes the veth pairs in the container's own network
      namespace (pair i: SFE_i_TX <-> far_i_tx and SFE_i_RX <-> far_i_rx), keeps frames
      flowing into far_i_tx (so they arrive on SFE_i_TX) for every pair -- small broadcast
      UDP frames, or the frames of a pcap file, or none, as the scenario's [traffic] says --
      writes <logs>/serve/ready.json, and runs until SIGTERM or `max_seconds`, whichever
      comes first.  Traffic flows between cycles too: a start-up race needs packets waiting
      on the read side when the workers come up.

  cycle --config /afp/config.json --index N
      One cold start of the target per the run contract, with the traffic of `serve` flowing:
      start (with the scenario's `env`), wait for the start marker (a regex), count what
      reaches far_i_rx for `traffic_seconds`,
      SIGTERM, wait.  Prints ONE JSON record on stdout (also kept as
      <logs>/cycle-NNN/record.json).  The target is always terminated, whatever happens.

The driver reads no log for the verdict: afpbisect/core/console_log.py does that on the host.

One module a job: net (veths, counters), traffic (frames, pcap, the paced sender), serve
(the main process), cycle (one cold start).  Run as a directory, this directory is
sys.path[0], so the modules import each other by plain name (`import net`): there is no
parent package to be relative to, and the host never imports them as afpbisect.* (the
directory has no __init__.py; the tests put it on sys.path the same way).
"""
from __future__ import annotations

import argparse
import json
import sys

import cycle
import serve

# Only where things are inside the container; how a cycle runs (pairs, traffic, the start
# marker, the timeouts) the host always sends (repro_settings.driver_config, from the scenario,
# whose models hold those defaults): a config without them is refused, not filled in here.
DEFAULTS = {
    "binary": "/opt/product/usr/local/bin/suricata",
    "product": "/opt/product",
    "yaml": "/afp/suricata.yaml",
    "logs": "/logs",
    "env": {},                    # environment of the target (the test patches read it)
    "max_seconds": 3600.0,        # serve's lifetime: traffic stops and serve exits after it
    "extra_args": [],
}
REQUIRED = ("pairs", "traffic_kind", "frame_size", "pcap", "start_marker", "traffic_pps", "send_rx",
            "traffic_seconds", "start_timeout", "stop_timeout")


def load_config(path: str) -> dict:
    cfg = dict(DEFAULTS)
    with open(path, encoding="utf-8") as fh:
        cfg.update(json.load(fh))
    missing = [k for k in REQUIRED if k not in cfg]
    if missing:
        raise SystemExit(f"driver: {path} lacks {', '.join(missing)} (the host's driver_config gives them)")
    return cfg


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="afpdriver", description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    p_serve = sub.add_parser("serve")
    p_serve.add_argument("--config", required=True)
    p_cycle = sub.add_parser("cycle")
    p_cycle.add_argument("--config", required=True)
    p_cycle.add_argument("--index", type=int, required=True)
    args = ap.parse_args(argv)
    cfg = load_config(args.config)
    if args.cmd == "serve":
        return serve.cmd_serve(cfg)
    return cycle.cmd_cycle(cfg, args.index)


if __name__ == "__main__":
    sys.exit(main())
