"""How a cycle is run (`ReproSettings`, filled from the scenario) and what the repro
container is given from it: the target's suricata.yaml and the driver's config.json."""
from __future__ import annotations

from dataclasses import dataclass, field

import jinja2

from afpbisect import TEMPLATES_DIR
from afpbisect.core.scenario import (
    CycleSection,
    HealthSection,
    HitSection,
    SuricataSection,
    TrafficSection,
)
from afpbisect.machinery.repro_record import DEFAULT_HEALTH, HealthRule

YAML_TEMPLATE = "suricata.yaml.j2"

# Paths inside the repro container (the driver's defaults say the same).
C_PRODUCT = "/opt/product"
C_LOGS = "/logs"
C_AFP = "/afp"
C_BINARY = f"{C_PRODUCT}/usr/local/bin/suricata"



# The defaults of a scenario's sections (afpbisect/core/scenario.py), which ReproSettings'
# defaults are taken from: they are written once, there.
_SU, _TR, _CY, _HE = SuricataSection(), TrafficSection(), CycleSection(), HealthSection()


@dataclass
class ReproSettings:
    """How a cycle is run.  `from_scenario` fills it from a scenario (docs/scenarios.md);
    the defaults are the scenario models' defaults."""

    pairs: int = _SU.pairs         # SFE_i_TX <-> SFE_i_RX pairs
    threads: int = _SU.threads     # workers per interface
    env: dict = field(default_factory=dict)   # the target's environment (test patches read it)
    traffic_pps: int = _TR.pps     # frames per second over all pairs, into far_i_tx
    traffic_seconds: float = _CY.seconds   # traffic counted after the start marker
    start_timeout: float = _CY.start_timeout   # no marker by then: UNHEALTHY (the target hung)
    stop_timeout: float = _CY.stop_timeout     # not exited by then after SIGTERM: SIGKILL, UNHEALTHY
    caps: tuple = ("NET_ADMIN", "NET_RAW")
    send_rx: bool = _TR.both_ways  # also send into far_i_rx (both directions forwarded)
    max_seconds: float = 3600.0    # the container's lifetime; the session renews it before it runs out
    ready_timeout: float = 60.0    # container start to "veths up, traffic flowing"
    ring_size: int | None = None   # af-packet ring-size; None keeps Suricata's default
    cluster_id_base: int = 1       # cluster-ids are base, base+1, ... one per interface
    health: HealthRule = DEFAULT_HEALTH   # when a cycle counts as evidence
    traffic_kind: str = _TR.kind   # udp | pcap | none
    frame_size: int = _TR.size     # UDP payload bytes
    pcap: str = _TR.pcap           # host path of the pcap to replay (traffic_kind pcap)
    start_marker: str = _HE.start_marker
    extra_args: tuple = _SU.args   # more Suricata command-line options
    suricata: SuricataSection = _SU   # the scenario's [suricata]: the yaml template reads it
    hit: HitSection = HitSection()    # the scenario's [hit]

    def cycle_budget(self) -> float:
        """Upper bound of one cycle's seconds (for the container lifetime check)."""
        return self.start_timeout + self.traffic_seconds + self.stop_timeout + 60.0

    @classmethod
    def from_scenario(cls, sc, pairs: int | None = None, threads: int | None = None,
                      env: dict | None = None, **kw) -> "ReproSettings":
        """The scenario's repro; `pairs`, `threads`, `env` (command-line overrides) and any
        other field given in `kw` (tests, benches) win."""
        su, tr, cy, he = sc.suricata, sc.traffic, sc.cycle, sc.health
        fields_ = dict(
            pairs=pairs or su.pairs, threads=threads or su.threads, env={**sc.env, **(env or {})},
            traffic_pps=tr.pps, traffic_seconds=cy.seconds, start_timeout=cy.start_timeout,
            stop_timeout=cy.stop_timeout, send_rx=tr.both_ways, ring_size=su.ring_size or None,
            health=HealthRule(he.require_start, he.min_forwarded, he.require_clean_stop),
            traffic_kind=tr.kind, frame_size=tr.size, pcap=tr.pcap,
            start_marker=he.start_marker, extra_args=tuple(su.args), suricata=su, hit=sc.hit)
        return cls(**{**fields_, **kw})


def render_suricata_yaml(settings: ReproSettings, log_dir: str = C_LOGS, rule_dir: str = C_AFP) -> str:
    """The repro's suricata.yaml (afpbisect/templates/suricata.yaml.j2)."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES_DIR)),
        trim_blocks=True, lstrip_blocks=True, keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    return env.get_template(YAML_TEMPLATE).render(
        pairs=settings.pairs, threads=settings.threads, ring_size=settings.ring_size,
        cluster_id_base=settings.cluster_id_base, log_dir=log_dir, rule_dir=rule_dir,
        s=settings.suricata, eve=bool(settings.hit.eve), stats=bool(settings.hit.stats),
    )


def driver_config(settings: ReproSettings, session: str = "") -> dict:
    """config.json for the driver (afpdriver, inside the container)."""
    return {
        "session": session,
        "pairs": settings.pairs,
        "binary": C_BINARY,
        "product": C_PRODUCT,
        "yaml": f"{C_AFP}/suricata.yaml",
        "logs": C_LOGS,
        "env": dict(settings.env),
        "traffic_kind": settings.traffic_kind,
        "frame_size": int(settings.frame_size),
        "pcap": f"{C_AFP}/traffic.pcap" if settings.traffic_kind == "pcap" else "",
        "start_marker": settings.start_marker,
        "extra_args": list(settings.extra_args),
        "traffic_pps": settings.traffic_pps,
        "send_rx": bool(settings.send_rx),
        "traffic_seconds": float(settings.traffic_seconds),
        "start_timeout": float(settings.start_timeout),
        "stop_timeout": float(settings.stop_timeout),
        "max_seconds": float(settings.max_seconds),
    }
