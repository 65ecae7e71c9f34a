"""Scenarios (issue 15): the bug as data, validated strictly, the built-in one for ticket
8667 and a second kind of bug written only from docs/scenarios.md."""
import re
import shutil
import struct
import subprocess
from pathlib import Path

import pytest

from afpbisect import PACKAGE_DIR, PATCHES_DIR
from afpbisect.core.errors import UsageError
from afpbisect.core.scenario import builtin_names, load
from afpbisect.synthetic.target import make_synthetic_repo
from conftest import history_with_revert
from e2e_util import afp, docker_ok

DOCS = Path(__file__).resolve().parents[1] / "docs" / "scenarios.md"


def docs_example(n: int) -> str:
    """The n-th ```toml block of docs/scenarios.md, as a user would copy it."""
    return re.findall(r"```toml\n(.*?)```", DOCS.read_text(), re.S)[n - 1]


def test_builtin_is_the_default_and_listed():
    sc = load()
    assert sc.name == "8667" and "8667" in builtin_names()
    assert sc.env == {"SURICATA_RING_SETUP_DELAY_US": "500000"}
    assert [p.path.name for p in sc.patches] == ["widener.patch"]
    assert sc.verify.target == "suricata-8.0.3" and sc.nightly.branch == "main"
    assert load("8667").digest() == sc.digest()
    code, _, err = afp("scenarios", check_json=False)
    assert code == 0


def test_docs_examples_load_as_written(tmp_path):
    one = tmp_path / "8667.toml"
    one.write_text(docs_example(1))
    shutil.copy(PATCHES_DIR / "widener.patch", tmp_path)   # a user's file names patches beside it
    assert load(one).hit == load().hit
    two = tmp_path / "block.toml"
    two.write_text(docs_example(2))
    sc = load(two)
    assert sc.suricata.block_size == 32768 and sc.hit.exit_codes == (1,) and not sc.patches


BAD = {
    "unknown top key": ('name = "x"\nnmae = "y"\n[hit]\nconsole = ["the bug"]\n', "unknown key 'nmae'"),
    "unknown section key": ('name = "x"\n[hit]\nconsole = ["the bug"]\nconsol = ["b"]\n', "unknown key [hit] 'consol'"),
    "unknown section": ('name = "x"\n[hits]\nconsole = ["the bug"]\n', "unknown key 'hits'"),
    "wrong type": ('name = "x"\n[hit]\nconsole = "the bug"\n', "key [hit] 'console' must be a list of strings"),
    "wrong number type": ('name = "x"\n[hit]\nconsole = ["the bug"]\n[suricata]\npairs = "6"\n',
                          "key [suricata] 'pairs' must be an integer"),
    "regex": ('name = "x"\n[hit]\nconsole = ["a(b"]\n', "regex 'a(b' does not compile"),
    "patch missing": ('name = "x"\n[hit]\nconsole = ["the bug"]\n[[patch]]\nfile = "nope.patch"\n',
                      "nope.patch does not exist"),
    "nothing is a hit": ('name = "x"\n[hit]\n', "says nothing is a hit"),
    "choice": ('name = "x"\n[hit]\nconsole = ["the bug"]\n[traffic]\nkind = "tcp"\n',
               "key [traffic] 'kind' must be one of udp, none, pcap"),
    "no name": ('[hit]\nconsole = ["the bug"]\n', "key 'name' is required"),
    "not toml": ('name = "x\n', "not valid TOML"),
    "none forwards nothing": ('name = "x"\n[hit]\nconsole = ["the bug"]\n[traffic]\nkind = "none"\n',
                              "'min_forwarded' must be 0"),
    # found by a hostile tour (2026-12-01): all were accepted and failed later, or never
    "start marker regex": ('name = "x"\n[hit]\nconsole = ["the bug"]\n[health]\nstart_marker = "[z-a]"\n',
                           "key [health] 'start_marker': regex '[z-a]' does not compile"),
    "exit code": ('name = "x"\n[hit]\nexit_codes = [999]\n', "'exit_codes' must be a list of integers in 0..255"),
    "negative size": ('name = "x"\n[hit]\nconsole = ["the bug"]\n[suricata]\nring_size = -1\n',
                      "key [suricata] 'ring_size' must be in 0..10000000"),
    "yaml injection": ('name = "x"\n[hit]\nconsole = ["the bug"]\n[suricata]\nbpf_filter = "udp\\"\\n  evil: yes"\n',
                       "'bpf_filter' must not contain quotes"),
    "env name": ('name = "x"\n[hit]\nconsole = ["the bug"]\n[[patch]]\nfile = "p.patch"\nenv = { "A=B" = "1" }\n',
                 "'A=B' is not a variable name"),
    "patch is a directory": ('name = "x"\n[hit]\nconsole = ["the bug"]\n[[patch]]\nfile = "."\n',
                             "is not a regular file"),
    "patch is not a patch": ('name = "x"\n[hit]\nconsole = ["the bug"]\n[[patch]]\nfile = "junk.patch"\n',
                             "[[patch]] #1 'file':"),
    # issue 25: rules that make every cycle a hit, a start marker that says nothing, traffic
    # that is not a pcap
    "rate floor": ('name = "x"\n[hit]\nconsole = ["the bug"]\n[verdict]\nrate_floor = 1.0\n',
                   "[verdict] rate_floor must be in [0.001, 1)"),
    "cycle cap": ('name = "x"\n[hit]\nconsole = ["the bug"]\n[verdict]\ncycle_cap = 0\n',
                  "cycle_cap in 1..1000000"),
    # issue 25's hostile tour: accepted, then a traceback, a hang or a failure after a build
    "regex overflow": ("name = \"x\"\n[hit]\nconsole = ['a{4294967296}']\n", "does not compile"),
    "regex recursion": ("name = \"x\"\n[hit]\nconsole = ['" + "(" * 1000 + "a" + ")" * 1000 + "']\n",
                        "does not compile"),
    "hit number": ('name = "x"\n[hit]\nconsole = [7]\n', "key [hit] 'console' must be a list of strings"),
    "args number": ('name = "x"\n[hit]\nconsole = ["the bug"]\n[suricata]\nargs = [7]\n',
                    "key [suricata] 'args' must be a list of strings"),
    "exit code float": ('name = "x"\n[hit]\nexit_codes = [1.5]\n', "'exit_codes' must be a list of integers"),
    "args control": ('name = "x"\n[hit]\nconsole = ["the bug"]\n[suricata]\nargs = ["a\\u0000b"]\n',
                     "other control characters"),
    "env nul": ('name = "x"\n[hit]\nconsole = ["the bug"]\n[[patch]]\nfile = "p.patch"\nenv = { A = "5\\u0000" }\n',
                "holds a control character"),
    # issue 26: the selftest's environment is stated, with the same rules as env
    "selftest env new name": ('name = "x"\n[hit]\nconsole = ["the bug"]\n[[patch]]\nfile = "p.patch"\n'
                              'env = { A = "5" }\nselftest_env = { B = "1" }\n',
                              "[[patch]] #1 'selftest_env': 'B' is not in its 'env'"),
    "selftest env nul": ('name = "x"\n[hit]\nconsole = ["the bug"]\n[[patch]]\nfile = "p.patch"\n'
                         'env = { A = "5" }\nselftest_env = { A = "1\\u0000" }\n', "holds a control character"),
    "long name": ('name = "' + "n" * 300 + '"\n[hit]\nconsole = ["the bug"]\n', "must be 1 to 64 letters"),
    "tiny floor": ('name = "x"\n[hit]\nconsole = ["the bug"]\n[verdict]\nrate_floor = 1e-12\n',
                   "rate_floor must be in [0.001, 1)"),
    "tiny assumed rate": ('name = "x"\n[hit]\nconsole = ["the bug"]\n[nightly]\nassumed_rate = 1e-13\n',
                          "assumed_rate in [0.001, 1]"),
    "empty branch": ('name = "x"\n[hit]\nconsole = ["the bug"]\n[nightly]\nbranch = ""\n',
                     "key [nightly] 'branch' must be a git ref"),
    "blank target": ('name = "x"\n[hit]\nconsole = ["the bug"]\n[verify]\ntarget = "   "\n',
                     "key [verify] 'target' must be a git ref"),
    "hit interface counters": ("name = \"x\"\n[hit]\nconsole = ['SFE_1_TX']\n", "matches a line a healthy engine prints"),
    "stats counter": ("name = \"x\"\n[hit]\nstats = ['decoder\\.pkts']\n", "matches a line a healthy engine prints"),
    "hit matches all": ("name = \"x\"\n[hit]\nconsole = ['.*']\n", "[hit] 'console': regex '.*' matches every line"),
    "hit empty": ('name = "x"\n[hit]\nconsole = [""]\n', "[hit] 'console': regex '' matches every line"),
    "hit caret": ("name = \"x\"\n[hit]\neve = ['^']\n", "[hit] 'eve': regex '^' matches every line"),
    "hit stats empty": ("name = \"x\"\n[hit]\nstats = ['x*']\n", "[hit] 'stats': regex 'x*' matches every line"),
    "hit innocent": ("name = \"x\"\n[hit]\nconsole = ['Threads created']\n",
                     "[hit] 'console': regex 'Threads created' matches a line a healthy engine prints"),
    "hit one letter": ('name = "x"\n[hit]\nconsole = ["a"]\n', "regex 'a' matches a line a healthy engine prints"),
    "hit eve stats event": ("name = \"x\"\n[hit]\neve = ['\"event_type\":\"stats\"']\n",
                            "matches a line a healthy engine prints"),
    "hit exit 0": ('name = "x"\n[hit]\nexit_codes = [0]\n', "'exit_codes': 0 is how a healthy engine stops"),
    "start marker empty": ('name = "x"\n[hit]\nconsole = ["the bug"]\n[health]\nstart_marker = ""\n',
                           "key [health] 'start_marker' must not be empty"),
    "start marker all": ("name = \"x\"\n[hit]\nconsole = ['the bug']\n[health]\nstart_marker = '.*'\n",
                         "key [health] 'start_marker': regex '.*' matches every line"),
    "pcap text": ('name = "x"\n[hit]\nconsole = ["the bug"]\n[traffic]\nkind = "pcap"\npcap = "junk.patch"\n',
                  "key [traffic] 'pcap': junk.patch is not a pcap file"),
    "pcap empty": ('name = "x"\n[hit]\nconsole = ["the bug"]\n[traffic]\nkind = "pcap"\npcap = "empty.pcap"\n',
                   "key [traffic] 'pcap': empty.pcap is not a pcap file"),
    "pcapng": ('name = "x"\n[hit]\nconsole = ["the bug"]\n[traffic]\nkind = "pcap"\npcap = "t.pcapng"\n',
               "key [traffic] 'pcap': t.pcapng is a pcapng file"),
    "pcap not ethernet": ('name = "x"\n[hit]\nconsole = ["the bug"]\n[traffic]\nkind = "pcap"\npcap = "raw.pcap"\n',
                          "key [traffic] 'pcap': raw.pcap has link type 101, not Ethernet (1)"),
    "pcap no frames": ('name = "x"\n[hit]\nconsole = ["the bug"]\n[traffic]\nkind = "pcap"\npcap = "hdr.pcap"\n',
                       "key [traffic] 'pcap': hdr.pcap holds no frames"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_scenario_is_one_line_exit_2_before_anything(case, small_repo, tmp_path):
    text, expected = BAD[case]
    f = tmp_path / "s.toml"
    f.write_text(text)
    shutil.copy(PATCHES_DIR / "widener.patch", tmp_path / "p.patch")
    (tmp_path / "junk.patch").write_text("hello\n")
    _pcaps(tmp_path)
    with pytest.raises(UsageError, match=re.escape(expected)):
        load(f)
    work = tmp_path / "work"
    code, _, err = afp("run", "suricata-1.0.0..main", "--repo", str(small_repo), "--workdir", str(work),
                       "--scenario", str(f), check_json=False,
                       env={"DOCKER_HOST": f"unix://{tmp_path}/no.sock"})   # never reached
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and "Traceback" not in err, err
    assert str(f) in lines[0] and expected in lines[0], lines[0]
    assert not work.exists(), "something was created before the scenario was checked"


def pcap_header(linktype: int = 1, magic: int = 0xA1B2C3D4) -> bytes:
    return struct.pack("<IHHiIII", magic, 2, 4, 0, 0, 65535, linktype)


def pcap_frame(data: bytes) -> bytes:
    return struct.pack("<IIII", 0, 0, len(data), len(data)) + data


def _pcaps(d: Path) -> None:
    frame = b"\xff" * 6 + b"\x02" * 6 + b"\x08\x00" + b"\x00" * 28
    (d / "empty.pcap").write_bytes(b"")
    (d / "t.pcapng").write_bytes(struct.pack("<II", 0x0A0D0D0A, 28) + b"\x4d\x3c\x2b\x1a" + b"\0" * 20)
    (d / "raw.pcap").write_bytes(pcap_header(101) + pcap_frame(frame[14:]))
    (d / "hdr.pcap").write_bytes(pcap_header())
    (d / "ok.pcap").write_bytes(pcap_header() + pcap_frame(frame))
    (d / "ok-be-ns.pcap").write_bytes(struct.pack(">IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 65535, 1)
                                      + struct.pack(">IIII", 0, 0, len(frame), len(frame)) + frame)


@pytest.mark.parametrize("name", ["ok.pcap", "ok-be-ns.pcap"])
def test_a_classic_pcap_of_ethernet_frames_is_taken(tmp_path, name):
    _pcaps(tmp_path)
    f = tmp_path / "s.toml"
    f.write_text(f'name = "x"\n[hit]\nconsole = ["the bug"]\n[traffic]\nkind = "pcap"\npcap = "{name}"\n')
    assert load(f).traffic.pcap == str(tmp_path / name)


def test_specific_hit_rules_are_taken(tmp_path):
    """The refusals above must not catch a narrow rule: the built-in's and the docs' are taken."""
    f = tmp_path / "s.toml"
    f.write_text("name = \"x\"\n[hit]\nconsole = ['block-size \\d+ is not a multiple']\n"
                 "eve = ['\"event_type\":\"anomaly\"']\nstats = ['capture\\.kernel_drops +\\| Total +\\| [1-9]']\n"
                 "exit_codes = [1]\n")
    assert load(f).hit.exit_codes == (1,)


def test_unknown_scenario_name(tmp_path):
    code, _, err = afp("run", "a..b", "--scenario", "no-such-bug", "--workdir", str(tmp_path / "w"),
                       check_json=False)
    assert code == 2 and "neither a built-in" in err and len(err.strip().splitlines()) == 1


def test_no_module_outside_the_synthetic_target_keeps_a_ticket_8667_constant():
    """The bug lives in afpbisect/scenarios/8667.toml and patches/, not in code."""
    constants = ("SURICATA_RING_SETUP_DELAY_US", "on socket 0", "Socket operation on non-socket",
                 "suricata-8.0.3", "race-8667", "widener.patch", "500000", "500_000")
    found = []
    for py in sorted(PACKAGE_DIR.rglob("*.py")):
        if "synthetic" in py.parts:   # the fixture
            continue
        text = py.read_text()
        found += [f"{py.name}: {c}" for c in constants if c in text]
    assert found == []


# --- the second kind of bug, on the real Docker engine ------------------------------------

docker = pytest.mark.skipif(not docker_ok(), reason="needs the Docker engine")


@pytest.fixture(scope="module")
def option_bug(tmp_path_factory):
    base = tmp_path_factory.mktemp("scenario2")
    syn = make_synthetic_repo(base / "target", n_commits=40, seed=5, option_bug_at=17)
    scenario = base / "block-size-rejected.toml"
    scenario.write_text(docs_example(2))
    return syn, scenario, base / "work"


@pytest.mark.docker
@docker
def test_second_scenario_bisects_the_start_up_error(option_bug):
    syn, scenario, work = option_bug
    code, res, err = afp("run", f"{syn.good_ref}..{syn.bad_ref}", "--repo", str(syn.path), "--workdir",
                         str(work), "--scenario", str(scenario), "--json")
    assert code == 0, err
    assert res["result"]["first_bad"] == syn.option_bug, err
    assert res["scenario"]["name"] == "block-size-rejected" and res["patches"] == []
    # deterministic: the calibration saw it every time, one cycle per bad commit in the search
    # (the first one seen is calibrated after its step, and its replay costs nothing)
    assert res["calibrations"][0]["p"] == 1.0
    bad = [s for s in res["steps"] if s["role"] == "search" and s["verdict"] == "bad"]
    assert bad and all(s["new_cycles"] <= 1 for s in bad) and bad[0]["cycles"] == 1
    assert "block-size-rejected" in Path(res["reports"]["markdown"]).read_text()


@pytest.mark.docker
@docker
def test_second_scenario_find_fix_names_the_revert(option_bug):
    syn, scenario, work = option_bug
    fix = history_with_revert(syn.path, syn.option_bug, 4, 1)
    # main moved since this workdir's clone was made: --fetch updates it
    code, res, err = afp("run", "--find-fix", f"{syn.bad_ref}..main", "--repo", str(syn.path), "--fetch",
                         "--workdir", str(work), "--scenario", str(scenario), "--json")
    assert code == 0, err
    assert res["result"]["first_fixed"] == fix


@pytest.mark.docker
@docker
def test_a_hit_rule_over_eve_json_that_the_target_never_writes_is_no_answer(tmp_path):
    """Issue 25, on the real engine: the synthetic target starts and forwards but writes no
    eve.json, so a rule over it can never be checked.  Every cycle is INFRA (it was CLEAN,
    and the run named an answer from cycles that proved nothing): exit 3, no verdict."""
    syn = make_synthetic_repo(tmp_path / "target", n_commits=6, seed=3)
    scenario = tmp_path / "eve-only.toml"
    scenario.write_text('name = "eve-only"\n[hit]\neve = [\'"event_type":"anomaly"\']\n'
                        '[suricata]\npairs = 1\nthreads = 1\n[cycle]\nseconds = 0.5\n')
    code, _, err = afp("run", f"{syn.good_ref}..{syn.bad_ref}", "--repo", str(syn.path), "--workdir",
                       str(tmp_path / "work"), "--scenario", str(scenario), check_json=False)
    assert code == 3 and "Traceback" not in err, err
    assert "wrote no eve.json" in err and ": clean" not in err, err
    assert "first bad commit:" not in err


# Defaults written once (issue 26): the scenario models in afpbisect/core/scenario.py are the
# one place; ReproSettings, the yaml, the driver, PolicyConfig and the CLI derive theirs.
# These are the defaults distinctive enough to find as literals; each may be written once.
GUARDED_DEFAULTS = [("health", "start_marker"), ("nightly", "confidence"), ("traffic", "pps"),
                    ("traffic", "size"), ("traffic", "kind"), ("cycle", "start_timeout"),
                    ("suricata", "runmode"), ("suricata", "copy_mode"), ("suricata", "cluster_type")]
# Literals equal to a default that are not that default: percent.py's formatting threshold.
NOT_A_DEFAULT = {(0.999, "afpbisect/core/percent.py")}


def _literals(path: Path) -> list:
    """(value, line) of every string and number literal of a module, outside the scenario's
    CHOICES (the allowed values of a key, which list its default among them)."""
    import ast
    tree = ast.parse(path.read_text())
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "CHOICES" for t in node.targets):
            skip |= {id(n) for n in ast.walk(node)}
    return [(n.value, n.lineno) for n in ast.walk(tree)
            if isinstance(n, ast.Constant) and id(n) not in skip and not isinstance(n.value, bool)
            and isinstance(n.value, (str, int, float))]


def test_every_guarded_default_is_written_once():
    from afpbisect.core.scenario import SECTIONS
    values = {(sec, key): getattr(SECTIONS[sec](), key) for sec, key in GUARDED_DEFAULTS}
    root = PACKAGE_DIR.parent
    found = {k: [] for k in values}
    for py in sorted(PACKAGE_DIR.rglob("*.py")):
        rel = str(py.relative_to(root))
        for value, line in _literals(py):
            for k, default in values.items():
                if type(value) is type(default) and value == default and (value, rel) not in NOT_A_DEFAULT:
                    found[k].append(f"{rel}:{line}")
    twice = {f"[{sec}] {key} = {values[(sec, key)]!r}": where for (sec, key), where in found.items()
             if len(where) != 1}
    assert not twice, f"a default written more (or less) than once; derive it from the scenario models: {twice}"


def test_the_selftest_environment_is_stated_in_the_scenario():
    """Issue 26: selftest reads its environment from the scenario ([[patch]] selftest_env),
    not from a guess that every number is a delay to divide."""
    sc = load()
    assert sc.selftest_env == {"SURICATA_RING_SETUP_DELAY_US": "100000"}
    assert sc.env == {"SURICATA_RING_SETUP_DELAY_US": "500000"}
