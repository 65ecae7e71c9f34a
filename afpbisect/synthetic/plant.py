"""The synthetic target's source edits: the planted bad order (the bump before the peer is
published), the two fixes of the ticket, and the other kinds of bug the tests plant (an early
exit, silence, a bad option check). Pure text transformations, each failing loudly when its
anchor is not there."""
from __future__ import annotations


def _replace_once(text: str, old: str, new: str, what: str) -> str:
    n = text.count(old)
    if n != 1:
        raise ValueError(f"{what}: anchor found {n} times, expected once: {old!r}")
    return text.replace(old, new)


_BUMP_AFTER_BIND = (
    "    /* bind() done, allow next thread to continue */\n"
    "    if (peer_update) {\n"
    "        AFPPeersListReachedInc();\n"
    "    }\n"
)


# The edits of upstream 923ad6af77, one by one.
_PLANT_EDITS = (
    ("static int AFPCreateSocket(AFPThreadVars *ptv, char *devname, int verbose);\n",
     "static int AFPCreateSocket(AFPThreadVars *ptv, char *devname, int verbose, const bool peer_update);\n",
     "prototype"),
    ("    int afp_activate_r = AFPCreateSocket(ptv, ptv->iface, 0);\n",
     "    int afp_activate_r = AFPCreateSocket(ptv, ptv->iface, 0, false);\n",
     "AFPTryReopen call"),
    ("        r = AFPCreateSocket(ptv, ptv->iface, 1);\n",
     "        r = AFPCreateSocket(ptv, ptv->iface, 1, true);\n",
     "ReceiveAFPLoop call"),
    ("        }\n        AFPPeersListReachedInc();\n    }\n    if (ptv->afp_state == AFP_STATE_UP) {\n",
     "        }\n    }\n    if (ptv->afp_state == AFP_STATE_UP) {\n",
     "bump after AFPCreateSocket"),
    ("static int AFPCreateSocket(AFPThreadVars *ptv, char *devname, int verbose)\n{\n",
     "/** \\param peer_update increment peers reached */\n"
     "static int AFPCreateSocket(AFPThreadVars *ptv, char *devname, int verbose, const bool peer_update)\n{\n",
     "definition"),
    ("    }\n\n    ret = AFPSetupRing(ptv, devname);\n",
     "    }\n" + _BUMP_AFTER_BIND + "    ret = AFPSetupRing(ptv, devname);\n",
     "bump after bind"),
)


def plant_bad_order(src: str) -> str:
    """The planted regression: what 923ad6af77 did to Suricata."""
    for old, new, what in _PLANT_EDITS:
        src = _replace_once(src, old, new, what)
    return src


_FIX_A_ANCHOR = "static void AFPWritePacket(Packet *p)\n{\n    struct sockaddr_ll socket_address;\n    int socket;\n\n"


_FIX_A_GUARD = (
    "    /* Guard: peer fd not yet published during startup window.\n"
    "     * state is published *after* socket in AFPPeerUpdate(), so\n"
    "     * observing AFP_STATE_UP guarantees the fd is valid. */\n"
    "    if (SC_ATOMIC_GET(p->afp_v.peer->state) != AFP_STATE_UP) {\n"
    "        return;\n"
    "    }\n"
    "\n"
)


def apply_fix_a(src: str) -> str:
    """Ticket 8667 fix A: AFPWritePacket() returns while the peer is not AFP_STATE_UP."""
    return _replace_once(src, _FIX_A_ANCHOR, _FIX_A_ANCHOR + _FIX_A_GUARD, "fix A")


def apply_fix_b(src: str) -> str:
    """Ticket 8667 fix B: the bump goes back after AFPSwitchState(ptv, AFP_STATE_UP)."""
    src = _replace_once(src, _BUMP_AFTER_BIND, "", "fix B (remove)")
    old = "    /* Init is ok */\n    AFPSwitchState(ptv, AFP_STATE_UP);\n    return 0;\n"
    new = ("    /* Init is ok */\n    AFPSwitchState(ptv, AFP_STATE_UP);\n"
           "    /* fd published -- now allow next thread to proceed */\n"
           "    if (peer_update) {\n        AFPPeersListReachedInc();\n    }\n    return 0;\n")
    return _replace_once(src, old, new, "fix B (insert)")


def _function_body(src: str, signature_start: str) -> str:
    """The body (braces included) of the function whose definition starts with
    `signature_start` (a prototype, ending in ';', is skipped)."""
    pos = 0
    while True:
        i = src.find(signature_start, pos)
        if i < 0:
            raise ValueError(f"no definition of {signature_start!r}")
        j = src.find("\n", i)
        if not src[i:j].rstrip().endswith(";"):
            break
        pos = j
    start = src.index("{", i)
    depth = 0
    for k in range(start, len(src)):
        if src[k] == "{":
            depth += 1
        elif src[k] == "}":
            depth -= 1
            if depth == 0:
                return src[start:k + 1]
    raise ValueError(f"unbalanced braces after {signature_start!r}")


_EXIT_ANCHOR = "\n    SetupSignals();\n"


_EXIT_EARLY = ('\n    SCLogError("af-packet: ring setup: no default for option \'block-size\'");\n'
               "    return EXIT_FAILURE;\n")


def plant_early_exit(src: str) -> str:
    """A commit that cannot start: main() gives up before the workers exist."""
    return _replace_once(src, _EXIT_ANCHOR, _EXIT_EARLY + _EXIT_ANCHOR, "early exit")


def plant_silence(src: str) -> str:
    """A commit whose IPS path forwards nothing: AFPWritePacket() drops every frame."""
    return _replace_once(src, _FIX_A_ANCHOR,
                         _FIX_A_ANCHOR + "    (void)socket_address;\n    (void)socket;\n    return;\n",
                         "silence")


CONF_SOURCE = "src/conf-yaml.c"


_OPTION_ANCHOR = '    } else if (strcmp(key, "ring-size") == 0)\n        SET(ring_size);\n'


_OPTION_BUG = (
    '    else if (strcmp(key, "block-size") == 0) {\n'
    '        /* block-size must be a multiple of the page size */\n'
    '        if (UtilParseInt(val, 0) % 4096 == 0) {\n'
    '            SCLogError("af-packet: %s: block-size %s is not a multiple of the page size",\n'
    '                    item->iface, val);\n'
    '            exit(EXIT_FAILURE);\n'
    '        }\n'
    '    }\n')


OPTION_BUG_TITLE = "af-packet: validate block-size"


def plant_option_bug(src: str) -> str:
    """The second kind of bug: a validation of `block-size` whose test is inverted."""
    return _replace_once(src, _OPTION_ANCHOR, _OPTION_ANCHOR + _OPTION_BUG, "block-size validation")


def barrier_before_ring(src: str) -> bool:
    """True when AFPCreateSocket() bumps the turn barrier before AFPSetupRing(): the bad
    order, where turn == 0 no longer implies that every peer socket is published."""
    body = _function_body(src, "static int AFPCreateSocket(")
    bump = body.find("AFPPeersListReachedInc();")
    ring = body.find("AFPSetupRing(ptv, devname)")
    return bump != -1 and ring != -1 and bump < ring


AFP_SOURCE = "src/source-af-packet.c"


MISC_SOURCE = "src/util-misc.c"


PLANTED_TITLE = "af-packet: speed up thread sync during startup"
