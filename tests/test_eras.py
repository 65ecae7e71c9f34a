"""Era rules (afpbisect/core/eras.py + eras.toml): which rules fire for which commit, and what the
rendered Dockerfile / build script contain.  Fast, no Docker.  The real-history tests read the
Suricata mirror and are skipped when it is absent."""
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path

import jinja2
import pytest

from afpbisect.core import eras
from afpbisect.core.eras import DictView, ErasError, GitView, load_rules, resolve
from afpbisect.machinery.build_log import step_seconds

MIRROR = Path(os.environ.get("AFPBISECT_SURICATA_MIRROR", "/work/.mirror/OISF+suricata/repo"))
needs_mirror = pytest.mark.skipif(not MIRROR.is_dir(), reason=f"no Suricata mirror at {MIRROR}")

SURICATA_AC = "AC_INIT([suricata],[8.0.3])\n"
BASE_PACKAGES = {"build-essential", "autoconf", "automake", "libtool", "pkg-config", "ccache",
                 "git", "ca-certificates", "python3", "iproute2"}


def fired(recipe) -> list[str]:
    return [rid for rid, _ in recipe.fired]


def write_rules(tmp_path, text) -> Path:
    p = tmp_path / "eras.toml"
    p.write_text(textwrap.dedent(text))
    return p


def suricata_view(*, time="0.3.41", htp_rs=True, extra_files=None) -> DictView:
    """A Suricata-like tree whose rust/Cargo.lock.in locks the time crate at `time`."""
    files = {
        "configure.ac": "    " + SURICATA_AC,
        "rust/Cargo.toml.in": f'[package]\nname = "suricata"\n\n[dependencies]\ntime = "={time}"\n',
        "rust/Cargo.lock.in": (f'version = 3\n\n[[package]]\nname = "time"\nversion = "{time}"\n'
                               'source = "registry+https://github.com/rust-lang/crates.io-index"\n\n'
                               '[[package]]\nname = "time-core"\nversion = "0.1.2"\n'),
        "src/source-af-packet.c": "/* ... */\n",
    }
    if htp_rs:
        files["rust/htp/Cargo.toml.in"] = "[package]\n"
    files.update(extra_files or {})
    return DictView(files=files)


# ------------------------------------------------------------------ the shipped table, synthetic views


def test_shipped_rules_parse_and_each_has_a_reason():
    rules = load_rules()
    assert [r.id for r in rules][0] == "base"
    assert rules[0].when is eras.ALWAYS
    for r in rules:
        assert len(r.reason) > 40, r.id


def test_plain_c_target_gets_only_the_base_rule():
    # The synthetic target: hand-written ./configure + Makefile, no configure.ac, no rust/.
    view = DictView(files={"configure": "#!/bin/sh\n", "Makefile": "all:\n", "autogen.sh": "",
                           "src/source-af-packet.c": ""})
    r = resolve(view)
    assert fired(r) == ["base"]
    assert set(r.apt_packages) == BASE_PACKAGES
    assert (r.rust, r.apt_sources, r.configure_flags, r.fetch_fixups, r.env) == ("none", (), (), (), ())


def test_configure_ac_of_another_project_is_not_suricata():
    r = resolve(DictView(files={"configure.ac": "AC_INIT([other],[1.0])\n"}))
    assert fired(r) == ["base"]


def test_modern_suricata():
    r = resolve(suricata_view())
    assert fired(r) == ["base", "suricata", "no-debuginfo", "no-git-revision", "rust-rustc-web",
                        "rust-cap-lints", "rust-incremental"]
    assert r.rust == "rustc-web"
    # Debug info off in both languages, optimisation as upstream's defaults (-O2, release);
    # rustc keeps incremental state for the workspace crates.
    assert dict(r.env) == {"RUSTFLAGS": "--cap-lints=warn", "CARGO_PROFILE_RELEASE_DEBUG": "false",
                           "CARGO_PROFILE_RELEASE_INCREMENTAL": "true"}
    assert {"libpcap-dev", "libyaml-dev", "libjansson-dev", "libpcre2-dev", "zlib1g-dev",
            "cbindgen"} <= set(r.apt_packages)
    assert not any(p.startswith("libhtp") for p in r.apt_packages)
    # CFLAGS as a configure argument: Suricata's C only, not the C that Rust crates build.
    # The git revision stays out of autoconf.h (AC_PATH_PROG's cache variable preset).
    assert r.configure_flags == ("--disable-gccmarch-native", "CFLAGS=-O2",
                                "ac_cv_path_HAVE_GIT_CMD=no")
    assert any("bookworm-security" in s for s in r.apt_sources)


def test_c_libhtp_era_uses_backports_libhtp():
    r = resolve(suricata_view(htp_rs=False))
    assert fired(r)[-1] == "libhtp-c-backports"
    assert "libhtp-dev/bookworm-backports" in r.apt_packages
    assert "libhtp2/bookworm-backports" in r.apt_packages
    assert "--enable-non-bundled-htp" in r.configure_flags
    assert "deb http://deb.debian.org/debian bookworm-backports main" in r.apt_sources


@pytest.mark.parametrize("locked,fires", [
    ("0.3.13", False), ("0.3.17", False),                      # measured: build on rustc 1.96
    ("0.3.18", True), ("0.3.20", True), ("0.3.34", True),      # measured: E0282 on rustc >= 1.80
    ("0.3.35", False), ("0.3.36", False), ("0.3.41", False), ("0.3.180", False),
])
def test_time_crate_fixup_only_for_locked_0_3_18_to_0_3_34(locked, fires):
    r = resolve(suricata_view(time=locked))
    assert ("time-crate-rustc-1.80" in fired(r)) is fires
    if fires:
        (fix,) = r.fetch_fixups
        assert "cargo update -p time --precise 0.3.36" in fix


def test_time_rule_looks_at_the_time_package_not_its_neighbours():
    lock = 'name = "time-macros"\nversion = "0.3.20"\n\n[[package]]\nname = "time"\nversion = "0.3.41"\n'
    r = resolve(suricata_view(extra_files={"rust/Cargo.lock.in": lock}))
    assert "time-crate-rustc-1.80" not in fired(r)


def test_time_fixup_sed_rewrites_the_generated_manifest(tmp_path):
    # Run the shipped fixup's sed part on a generated rust/Cargo.toml (cargo stubbed out).
    (fix,) = resolve(suricata_view(time="0.3.20")).fetch_fixups
    sed = fix.split(" && ")[0]
    (tmp_path / "rust").mkdir()
    manifest = tmp_path / "rust" / "Cargo.toml"
    manifest.write_text('# last version to work with MSRV 1.63\ntime = "=0.3.13"\ntime-x = "1"\n')
    subprocess.run(["sh", "-c", sed], cwd=tmp_path, check=True)
    assert manifest.read_text() == '# last version to work with MSRV 1.63\ntime = "~0.3.36"\ntime-x = "1"\n'
    subprocess.run(["sh", "-c", sed], cwd=tmp_path, check=True)  # idempotent
    assert 'time = "~0.3.36"' in manifest.read_text()


def test_lua_git_source_is_switched_to_crates_io_before_the_time_update(tmp_path):
    toml_in = ('[dependencies]\ntime = "=0.3.20"\nsuricata-lua-sys = { git = '
               '"https://github.com/jasonish/suricata-lua-sys", version = "0.1.0-alpha.1" }\n')
    r = resolve(suricata_view(time="0.3.20", extra_files={"rust/Cargo.toml.in": toml_in}))
    assert fired(r)[-2:] == ["lua-sys-from-crates-io", "time-crate-rustc-1.80"]
    lua_fix = r.fetch_fixups[0]
    assert "cargo update" in r.fetch_fixups[1]              # graph repaired before cargo resolves
    (tmp_path / "rust").mkdir()
    manifest = tmp_path / "rust" / "Cargo.toml"
    manifest.write_text(toml_in)
    for _ in range(2):                                      # idempotent
        subprocess.run(["sh", "-c", lua_fix], cwd=tmp_path, check=True)
        assert manifest.read_text().splitlines()[2] == 'suricata-lua-sys = { version = "=0.1.0-alpha.1" }'


def test_lua_from_crates_io_needs_no_fixup():
    toml_in = '[dependencies]\nsuricata-lua-sys = { version = "0.1.0-alpha.1" }\n'
    assert "lua-sys-from-crates-io" not in fired(resolve(suricata_view(extra_files={"rust/Cargo.toml.in": toml_in})))


def test_stale_cargo_config_rule_needs_the_new_template_and_an_untracked_old_name():
    new = {"rust/.cargo/config.toml.in": ""}
    assert "stale-cargo-config" in fired(resolve(suricata_view(extra_files=new)))
    assert "stale-cargo-config" not in fired(resolve(suricata_view(extra_files={"rust/.cargo/config.in": ""})))
    both = {**new, "rust/.cargo/config": "tracked"}
    assert "stale-cargo-config" not in fired(resolve(suricata_view(extra_files=both)))


def test_lua_one_build_dir_wipes_only_when_the_build_changes(tmp_path):
    """The fixup for idx 1012-1521 on a fake tree, with cargo/rustc stubbed on PATH."""
    mk = "all-local:\n\tcp -a $(RUST_SURICATA_LIBDIR)/build/suricata-lua-sys-*/out/lua/*.h gen/\n"
    (fix,) = [f for f in resolve(suricata_view(extra_files={"rust/Makefile.am": mk})).fetch_fixups
              if "suricata-lua-sys" in f and "find rust/target" in f]
    stubs = tmp_path / "bin"
    stubs.mkdir()
    for tool, out in (("cargo", ""), ("rustc", "rustc 1.96.0")):
        (stubs / tool).write_text(f"#!/bin/sh\necho '{out}'\n")
        (stubs / tool).chmod(0o755)
    tree = tmp_path / "src"
    lock = tree / "rust" / "Cargo.lock"
    build = tree / "rust" / "target" / "release" / "build"
    fp = tree / "rust" / "target" / "release" / ".fingerprint"
    (build / "suricata-lua-sys-aaaa" / "out" / "lua").mkdir(parents=True)
    (build / "suricata-lua-sys-bbbb").mkdir()
    (build / "other-crate-cccc").mkdir()
    (fp / "suricata-lua-sys-aaaa").mkdir(parents=True)
    env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}", "RUSTFLAGS": "--cap-lints=warn"}

    def run(version):
        lock.write_text(f'[[package]]\nname = "suricata-lua-sys"\nversion = "{version}"\nsource = "registry"\n')
        p = subprocess.run(["bash", "-euo", "pipefail", "-c", fix], cwd=tree, env=env,
                           capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        return "removing them" in p.stdout

    assert run("0.1.0-alpha.1")                           # no stamp yet: wipe
    assert sorted(x.name for x in build.iterdir()) == ["other-crate-cccc"]
    assert not list(fp.iterdir())
    (build / "suricata-lua-sys-dddd" / "out" / "lua").mkdir(parents=True)   # what make builds
    assert not run("0.1.0-alpha.1")                       # same build: keep it (incremental)
    assert (build / "suricata-lua-sys-dddd").is_dir()
    (build / "suricata-lua-sys-eeee" / "out" / "lua").mkdir(parents=True)   # another era's build
    assert run("0.1.0-alpha.1")                           # two copies: the glob would fail
    assert not (build / "suricata-lua-sys-dddd").exists()
    (build / "suricata-lua-sys-ffff" / "out" / "lua").mkdir(parents=True)
    assert run("0.1.0-alpha.5")                           # another version: wipe again
    assert not (build / "suricata-lua-sys-ffff").exists()


# ------------------------------------------------------------------ condition kinds and folding


RULES_ALL_KINDS = """
    [[rule]]
    id = "base"
    reason = "always"
    apt = ["a"]

    [[rule]]
    id = "has-rust"
    when = { path_exists = "rust" }
    reason = "dir implied by a file"
    apt = ["b", "a"]
    rust = "debian"

    [[rule]]
    id = "no-htp"
    when = { path_missing = "rust/htp" }
    reason = "missing"
    configure_flags = ["--x"]

    [[rule]]
    id = "after-fix"
    when = { ancestor_of_commit = "fix1" }
    reason = "ancestor"
    rust = "rustc-web"
    env = { K = "1", L = "2" }

    [[rule]]
    id = "before-fix"
    when = { not_ancestor = "fix1" }
    reason = "not ancestor"
    fetch_fixups = ["echo old"]

    [[rule]]
    id = "msrv"
    when = { file_matches = { path = "rust/Cargo.toml.in", regex = '^rust-version = "1\\.(6|7)\\d' } }
    reason = "regex"
    env = { K = "3" }

    [[rule]]
    id = "combo"
    when = { all = [ { path_exists = "configure.ac" }, { any = [ { not = { path_exists = "x" } }, { path_exists = "y" } ] } ] }
    reason = "combinators"
    apt_sources = ["deb s"]
"""


def test_every_condition_kind(tmp_path):
    rules = load_rules(write_rules(tmp_path, RULES_ALL_KINDS))
    old = DictView(files={"rust/Cargo.toml.in": 'rust-version = "1.67.1"\n', "rust/htp/x": ""})
    r = resolve(old, rules)
    assert fired(r) == ["base", "has-rust", "before-fix", "msrv"]
    assert r.apt_packages == ("a", "b")              # appended, first occurrence kept
    assert r.rust == "debian"
    assert r.env == (("K", "3"),)
    assert r.fetch_fixups == ("echo old",)

    new = DictView(files={"configure.ac": "", "rust/Cargo.toml.in": 'rust-version = "1.85.0"\n'},
                   ancestors={"fix1"})
    r = resolve(new, rules)
    assert fired(r) == ["base", "has-rust", "no-htp", "after-fix", "combo"]
    assert r.rust == "rustc-web"                     # last rule setting rust wins
    assert r.env == (("K", "1"), ("L", "2"))
    assert r.configure_flags == ("--x",)
    assert r.apt_sources == ("deb s",)


def test_file_matches_is_false_for_a_missing_file(tmp_path):
    rules = load_rules(write_rules(tmp_path, RULES_ALL_KINDS))
    assert "msrv" not in fired(resolve(DictView(), rules))


def test_env_override_keeps_first_position(tmp_path):
    rules = load_rules(write_rules(tmp_path, RULES_ALL_KINDS))
    view = DictView(files={"rust/Cargo.toml.in": 'rust-version = "1.70"\n'}, ancestors={"fix1"})
    assert resolve(view, rules).env == (("K", "3"), ("L", "2"))


@pytest.mark.parametrize("body,msg", [
    ('[[rule]]\nid = "a"\nreason = "r"\nwhen = { path_exist = "x" }\n', "unknown condition"),
    ('[[rule]]\nid = "a"\nreason = "r"\nwhen = { path_exists = "x", path_missing = "y" }\n', "exactly one key"),
    ('[[rule]]\nid = "a"\nreason = "r"\nwhen = { file_matches = { path = "x", regex = "(" } }\n', "bad regex"),
    ('[[rule]]\nid = "a"\nreason = "r"\nwhen = { all = [] }\n', "non-empty list"),
    ('[[rule]]\nid = "a"\nreason = "r"\napts = ["x"]\n', "unknown keys"),
    ('[[rule]]\nid = "a"\n', "needs a reason"),
    ('[[rule]]\nid = "A b"\nreason = "r"\n', "slug"),
    ('[[rule]]\nid = "a"\nreason = "r"\nrust = "nightly"\n', "rust must be one of"),
    ('[[rule]]\nid = "a"\nreason = "r"\napt = "x"\n', "list of non-empty strings"),
    ('[[rule]]\nid = "a"\nreason = "r"\n[[rule]]\nid = "a"\nreason = "r"\n', "duplicate rule id"),
    ('title = "no rules"\n', "no \\[\\[rule\\]\\]"),
    # issue 17: entries that are not tables, and wrong-typed values, were tracebacks
    ("rule = [1, 2]\n", "rule #1: a rule is a table"),
    ('rule = ["base"]\n', "rule #1: a rule is a table"),
    ('[[rule]]\nid = "a"\nreason = "r"\nwhen = { file_matches = { path = 1, regex = "x" } }\n', "file_matches"),
    ('[[rule]]\nid = "a"\nreason = "r"\nwhen = { file_matches = { path = "x", regex = 1 } }\n', "file_matches"),
    ('[[rule]]\nid = "a"\nreason = "r"\nenv = { 1 = 2 }\n', "env is a table of strings"),
    ("rule = [\n", "not valid TOML"),
])
def test_malformed_tables_are_rejected(tmp_path, body, msg):
    with pytest.raises(ErasError, match=msg):
        load_rules(write_rules(tmp_path, body))


def test_unreadable_rules_file_is_an_eras_error(tmp_path):
    """Missing, a directory, not UTF-8: one ErasError naming the file, never OSError."""
    (tmp_path / "bin.toml").write_bytes(b"\xff\xfe rule")
    for path in (tmp_path / "none.toml", tmp_path, tmp_path / "bin.toml"):
        with pytest.raises(ErasError, match=str(path)):
            load_rules(path)


# ------------------------------------------------------------------ keys


def test_keys_are_stable_and_separate_image_from_product():
    a = resolve(suricata_view())
    b = resolve(suricata_view())
    assert (a.image_key(), a.key()) == (b.image_key(), b.key())
    assert re.fullmatch(r"[0-9a-f]{16}", a.key())
    old_time = resolve(suricata_view(time="0.3.20"))
    assert old_time.image_key() == a.image_key()      # a fixup needs no new image...
    assert old_time.key() != a.key()                  # ...but changes the product
    c_htp = resolve(suricata_view(htp_rs=False))
    assert c_htp.image_key() != a.image_key()
    plain = resolve(DictView(files={"configure": ""}))
    assert plain.image_key() != a.image_key()


def test_fired_reasons_do_not_enter_the_key():
    a = resolve(suricata_view())
    b = eras.Recipe(a.apt_packages, a.apt_sources, a.rust, a.configure_flags, a.fetch_fixups,
                    a.env, fired=(("other", "reason"),))
    assert a == b and a.key() == b.key()


# ------------------------------------------------------------------ templates


def render(template: Path, **kw) -> str:
    env = jinja2.Environment(undefined=jinja2.StrictUndefined, keep_trailing_newline=True)
    return env.from_string(template.read_text()).render(**kw)


def test_dockerfile_for_c_libhtp_era():
    r = resolve(suricata_view(htp_rs=False, time="0.3.20"))
    df = render(eras.DOCKERFILE_TEMPLATE, base_image="afpbisect/debian-local:bookworm", recipe=r)
    assert df.startswith("FROM afpbisect/debian-local:bookworm\n")
    assert "'deb http://deb.debian.org/debian bookworm-backports main'" in df
    assert "--no-install-recommends" in df
    for pkg in (*r.apt_packages, "rustc-web", "cargo-web"):
        assert re.search(rf"^\s+{re.escape(pkg)} \\$", df, re.M), pkg
    assert f'afpbisect.image-key="{r.image_key()}"' in df
    assert "COPY" not in df and "ADD " not in df     # nothing project-specific baked in


def test_dockerfile_for_plain_c_target_has_no_rust_and_no_sources():
    r = resolve(DictView(files={"configure": ""}))
    df = render(eras.DOCKERFILE_TEMPLATE, base_image="b:1", recipe=r)
    assert "sources.list.d" not in df and "rustc" not in df and "cargo" not in df


@pytest.mark.parametrize("view", [suricata_view(htp_rs=False, time="0.3.20"),
                                  DictView(files={"configure": ""})], ids=["suricata-7", "plain-c"])
def test_build_script_renders_to_valid_bash_with_step_markers(tmp_path, view):
    r = resolve(view)
    sh = render(eras.BUILD_SCRIPT_TEMPLATE, recipe=r, jobs=3)
    p = tmp_path / "build.sh"
    p.write_text(sh)
    subprocess.run(["bash", "-n", str(p)], check=True)
    assert sh.startswith("#!/bin/bash\n")
    assert "make -j3\n" in sh
    assert "export CARGO_NET_OFFLINE=true" in sh
    assert "make install DESTDIR=/out" in sh
    for step in ("autogen", "configure", "fetch", "make", "install"):
        assert f"step {step}" in sh
    assert ("step fixup" in sh) is bool(r.fetch_fixups)
    for flag in r.configure_flags:
        assert f"'{flag}'" in sh


@pytest.mark.skipif(shutil.which("make") is None or shutil.which("cc") is None, reason="no make/cc")
def test_build_script_builds_a_plain_c_target(tmp_path):
    """The rendered script's fetch+compile phases on a tiny ./configure + Makefile project,
    with /src and /out replaced by temporary directories (no Docker)."""
    src, out = tmp_path / "src", tmp_path / "out"
    (src / "src").mkdir(parents=True)
    out.mkdir()
    (out / "stale").write_text("from an earlier build")
    (src / "configure").write_text(textwrap.dedent("""\
        #!/bin/sh
        echo "ARGS=$*" > config.mk
        echo "CC=${CC:-cc}" >> config.mk
        """))
    (src / "configure").chmod(0o755)
    (src / "Makefile").write_text(textwrap.dedent("""\
        include config.mk
        src/suricata: src/main.c
        \tcc -o $@ $<
        install: src/suricata
        \tinstall -D -m 0755 src/suricata $(DESTDIR)/usr/local/bin/suricata
        """))
    (src / "src" / "main.c").write_text("int main(void) { return 0; }\n")
    sh = render(eras.BUILD_SCRIPT_TEMPLATE, recipe=resolve(DictView(files={"configure": ""})), jobs=2)
    sh = sh.replace("cd /src", f"cd {src}").replace("/out", str(out))
    (tmp_path / "build.sh").write_text(sh)
    env = {**os.environ, "RECONFIGURE": "0", "CCACHE_DIR": str(tmp_path / "ccache"),
           "CARGO_HOME": str(tmp_path / "cargo")}
    fetch = subprocess.run(["bash", str(tmp_path / "build.sh"), "fetch"], env=env,
                           capture_output=True, text=True)
    assert fetch.returncode == 0, fetch.stderr
    assert fetch.stdout.splitlines()[0].startswith("AFPBISECT-STEP: configure @")
    assert "ARGS=--prefix=/usr/local" in (src / "config.mk").read_text()
    assert "CC=ccache gcc" in (src / "config.mk").read_text()
    compile_ = subprocess.run(["bash", str(tmp_path / "build.sh"), "compile"], env=env,
                              capture_output=True, text=True)
    assert compile_.returncode == 0, compile_.stderr
    steps = [l.split(" @")[0] for l in compile_.stdout.splitlines() if l.startswith("AFPBISECT-")]
    assert steps == ["AFPBISECT-STEP: make", "AFPBISECT-STEP: install", "AFPBISECT-DONE: compile"]
    assert set(step_seconds(compile_.stdout)) == {"make", "install"}
    assert (out / "usr/local/bin/suricata").is_file()
    assert not (out / "stale").exists()
    # a broken tree: non-zero exit, and the last marker names the failing step
    (src / "src" / "main.c").write_text("syntax error\n")
    bad = subprocess.run(["bash", str(tmp_path / "build.sh"), "compile"], env=env,
                         capture_output=True, text=True)
    assert bad.returncode != 0
    assert [l for l in bad.stdout.splitlines() if l.startswith("AFPBISECT-")][-1].split(" @")[0] == "AFPBISECT-STEP: make"


# ------------------------------------------------------------------ the real history


def idx_commit(i: int) -> str:
    out = subprocess.run(["git", "--git-dir", str(MIRROR), "rev-list", "--reverse",
                          "suricata-7.0.0..suricata-8.0.3"], capture_output=True, text=True,
                         check=True).stdout.split()
    return out[i - 1]


SURICATA = ["base", "suricata", "no-debuginfo", "no-git-revision", "rust-rustc-web", "rust-cap-lints",
            "rust-incremental"]
STALE, LUA, TIME, ONE, HTP = ("stale-cargo-config", "lua-sys-from-crates-io", "time-crate-rustc-1.80",
                              "lua-sys-one-build-dir", "libhtp-c-backports")
REAL_CASES = [
    # rev, expected rules; comments: the era facts each case pins (shared NOTES, docs/real-builds.md)
    ("suricata-7.0.0", SURICATA + [HTP]),                # MSRV 1.63, time locked 0.3.13 (fine), C libhtp
    (601, SURICATA + [HTP]),                             # last commit locking time 0.3.13
    (602, SURICATA + [TIME, HTP]),                       # 1d3a156179: time =0.3.20
    (971, SURICATA + [TIME, HTP]),                       # last with rust/.cargo/config.in
    (972, SURICATA + [STALE, TIME, HTP]),                # 8560564657: .cargo/config -> config.toml
    (1011, SURICATA + [STALE, TIME, HTP]),
    (1012, SURICATA + [STALE, LUA, TIME, ONE, HTP]),     # bc011f2205: suricata-lua-sys from GitHub,
                                                         # headers copied with a glob
    (1295, SURICATA + [STALE, LUA, TIME, ONE, HTP]),     # 058ad87089: MSRV 1.67.1, time still =0.3.20
    (1296, SURICATA + [STALE, LUA, ONE, HTP]),           # da1645b3e1: time ~0.3.36
    (1385, SURICATA + [STALE, LUA, ONE, HTP]),
    (1386, SURICATA + [STALE, ONE, HTP]),                # 85ee2f882f: suricata-lua-sys from crates.io
    (1431, SURICATA + [STALE, ONE, HTP]),                # bb714c9178: headers limit -> libhtp 0.5.50
    (1521, SURICATA + [STALE, ONE, HTP]),
    (1522, SURICATA + [STALE, HTP]),                     # 3a7eef8121: lua crate copies its headers
    ("923ad6af77", SURICATA + [STALE, HTP]),             # idx 1604, the culprit
    (2194, SURICATA + [STALE, HTP]),                     # last C-libhtp commit
    (2195, SURICATA + [STALE]),                          # 9c324b796e: libhtp-rs in-tree
    (2607, SURICATA + [STALE]),                          # f0eaebe3a6: MSRV 1.75
    ("suricata-8.0.3", SURICATA + [STALE]),
    ("main", SURICATA + [STALE]),                        # MSRV 1.85, upstream revert of 923ad6af77
]


@needs_mirror
@pytest.mark.parametrize("rev,expected", REAL_CASES, ids=[str(c[0]) for c in REAL_CASES])
def test_real_history(rev, expected):
    sha = idx_commit(rev) if isinstance(rev, int) else rev
    r = resolve(GitView(MIRROR, sha))
    assert fired(r) == expected
    assert r.rust == "rustc-web"
    assert ("--enable-non-bundled-htp" in r.configure_flags) is (HTP in expected)
    assert dict(r.env)["RUSTFLAGS"] == "--cap-lints=warn"
    # no-git-revision's ac_cv_path_HAVE_GIT_CMD=no works where configure finds git by
    # AC_PATH_PROG into HAVE_GIT_CMD and asks git for the revision only under it.
    ac = GitView(MIRROR, sha).read("configure.ac")
    assert "AC_PATH_PROG(HAVE_GIT_CMD, git" in ac
    guard, ask = ac.index('if test "$HAVE_GIT_CMD" != "no"; then'), ac.index("git rev-parse --short HEAD")
    assert ac.count("git rev-parse") == 1 and 0 < ask - guard < 200


@needs_mirror
def test_real_idx_boundaries_are_where_notes_say():
    assert idx_commit(602).startswith("1d3a156179")
    assert idx_commit(972).startswith("8560564657")
    assert idx_commit(1012).startswith("bc011f2205")
    assert idx_commit(1386).startswith("85ee2f882f")
    assert idx_commit(1522).startswith("3a7eef8121")
    assert idx_commit(1296).startswith("da1645b3e1")
    assert idx_commit(1604).startswith("923ad6af77")
    assert idx_commit(2195).startswith("9c324b796e")


@needs_mirror
def test_git_view_on_the_mirror():
    v = GitView(MIRROR, "suricata-8.0.3")          # annotated tag -> commit
    assert v.has_path("rust/htp") and v.has_path("configure.ac")
    assert not v.has_path("libhtp")
    assert "AC_INIT" in v.read("configure.ac")
    assert v.read("no/such/file") is None
    assert v.is_ancestor("923ad6af77") and v.is_ancestor("suricata-8.0.3")
    assert not v.is_ancestor("0123456789abcdef0123")   # unknown rev
    assert not GitView(MIRROR, "suricata-7.0.0").is_ancestor("923ad6af77")


def _run_fixup(tree: Path, cmd: str, tmp_path: Path) -> subprocess.CompletedProcess:
    """A fetch fixup as build.sh runs it (bash -euo pipefail, in a subshell, cwd = the tree),
    with cargo and rustc stubbed: the rule's own shell logic is what is under test."""
    bin_ = tmp_path / "bin"
    bin_.mkdir(exist_ok=True)
    for tool, out in (("cargo", ""), ("rustc", "rustc 1.96.0\\nhost: x86_64-unknown-linux-gnu")):
        (bin_ / tool).write_text(f"#!/bin/sh\nprintf '{out}\\n'\n")
        (bin_ / tool).chmod(0o755)
    return subprocess.run(["bash", "-euo", "pipefail", "-c", f"( {cmd} )"], cwd=tree, capture_output=True,
                          text=True, env={**os.environ, "PATH": f"{bin_}:{os.environ['PATH']}"})


def test_lua_sys_one_build_dir_fixup_in_a_clean_tree_and_with_two_copies(tmp_path):
    """The fixup of lua-sys-one-build-dir must pass in a clean tree (no rust/target: failed at
    idx 1181 before it made the directory first), and leave at most one copy of the crate's
    build when a reused tree holds two."""
    (cmd,) = next(r for r in load_rules() if r.id == "lua-sys-one-build-dir").fetch_fixups
    tree = tmp_path / "src"
    (tree / "rust").mkdir(parents=True)
    (tree / "rust" / "Cargo.lock").write_text('[[package]]\nname = "suricata-lua-sys"\nversion = "0.1.0-alpha.1"\n'
                                              'source = "registry+https://github.com/rust-lang/crates.io-index"\n')
    clean = _run_fixup(tree, cmd, tmp_path)
    assert clean.returncode == 0, clean.stderr
    assert (tree / "rust/target/.afpbisect-lua-sys").is_file()
    again = _run_fixup(tree, cmd, tmp_path)                     # unchanged neighbour: nothing removed
    assert again.returncode == 0 and "removing" not in again.stdout
    for h in ("aaa", "bbb"):                                     # two builds of the crate in the tree
        (tree / f"rust/target/release/build/suricata-lua-sys-{h}/out/lua").mkdir(parents=True)
    two = _run_fixup(tree, cmd, tmp_path)
    assert two.returncode == 0, two.stderr
    assert "2 builds in the tree" in two.stdout
    assert not list((tree / "rust/target").glob("release/build/suricata-lua-sys-*"))
