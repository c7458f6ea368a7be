"""systemd/stormwatch.service: it verifies, its exposure score holds, and its privileges
are enough for the job (and each one is needed) against a real private Postfix.

``systemd-analyze verify`` works without a running systemd (as in a container) but
checks that ``ExecStart=`` programs exist, so the unit is copied with its program path
pointed at a stub. ``systemd-analyze security --offline=true`` scores the file alone.

The privilege test runs stormwatch's own Postfix code (freeze, hold, restore, release,
flush, the ``postfix reload`` fallback), a signal to another user's process and a read
of a ``syslog:adm 0640``-style mail log, as root, under what the unit grants: the
capability bounding set, the supplementary groups and NoNewPrivileges (``setpriv``)
and a read-only file system except the unit's ReadWritePaths= (a private mount
namespace, ``unshare``), with the instance's directories standing in for
/etc/postfix and /var/spool/postfix. Then it takes away one privilege at a time and
checks the job breaks where the unit's comment says it would.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from tests.integration.harness.postfix import PostfixInstance
from tests.integration.harness.procs import free_port
from tests.integration.harness.requires import (
    find_program,
    require_group,
    require_root,
    require_user,
    unavailable,
    wait_for,
)
from watcher.core.settings import DEFAULT_STATE_DIR, PostfixSettings

REPO = Path(__file__).resolve().parents[2]
UNIT = REPO / "systemd" / "stormwatch.service"
PROGRAM = "/usr/local/bin/stormwatch"

# The exposure score `systemd-analyze security` gives the unit (0 = locked down, 10 =
# unprotected; 2.4 "OK" with systemd 252). What keeps it from lower is the job itself:
# root (postsuper refuses anyone else; main.cf is root's), CAP_SETUID/CAP_SETGID
# (postsuper switches to mail_owner, so @privileged system calls stay allowed),
# CAP_KILL (fetchmail of other users), the network (pages: AF_INET/AF_INET6, no
# PrivateNetwork=, no IPAddressDeny= since targets are arbitrary), a whole /proc
# (fetchmail of other users; psutil reads /proc/stat) and no PrivateUsers= (it would
# break the switch to mail_owner). Any loosening of the unit fails this test.
MAX_EXPOSURE = 2.4

PACKAGE = {
    "systemd-analyze": "systemd",
    "setpriv": "util-linux",
    "unshare": "util-linux",
    "mount": "mount",
}


def unit_settings(text: str | None = None) -> dict[str, list[str]]:
    """``{key: [values...]}`` of the unit's [Service] section (every assignment kept)."""
    text = UNIT.read_text(encoding="utf-8") if text is None else text
    out: dict[str, list[str]] = {}
    section = ""
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith(("#", ";")):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        out.setdefault(f"{section}.{key}", []).append(value)
    return out


def one(settings: dict[str, list[str]], key: str) -> str:
    values = settings.get(f"Service.{key}", [])
    assert len(values) == 1, f"{key}= set {len(values)} times in {UNIT.name}"
    return values[0]


def analyze(program: str, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [program, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, "SYSTEMD_LOG_COLOR": "0", "SYSTEMD_COLORS": "0", "LC_ALL": "C.UTF-8"},
    )


def need(*names: str) -> dict[str, str]:
    """Like ``require_programs``, naming the Debian package of these programs."""
    found = {name: find_program(name) for name in names}
    missing = [name for name, path in found.items() if path is None]
    if missing:
        packages = " ".join(sorted({PACKAGE[n] for n in missing}))
        unavailable(f"needs {', '.join(missing)} (apt-get install {packages})")
    return {name: path for name, path in found.items() if path is not None}


@pytest.fixture
def stub_unit(tmp_path: Path) -> Path:
    """The unit with its program path pointed at an executable stub under tmp_path."""
    stub = tmp_path / "bin" / "stormwatch"
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    stub.chmod(0o755)
    text = UNIT.read_text(encoding="utf-8")
    assert PROGRAM in text
    unit = tmp_path / "stormwatch.service"
    unit.write_text(text.replace(PROGRAM, str(stub)), encoding="utf-8")
    return unit


# --- the unit file as written ----------------------------------------------------------


def test_the_unit_runs_what_the_issue_asks() -> None:
    s = unit_settings()
    assert one(s, "Type") == "notify"
    assert one(s, "ExecStartPre") == f"{PROGRAM} check-config --quiet"
    assert one(s, "ExecStart") == f"{PROGRAM} run"
    assert one(s, "ExecReload") == "/bin/kill -HUP $MAINPID"
    assert one(s, "Restart") == "on-failure"
    assert one(s, "RestartPreventExitStatus") == "2", "a configuration error is not retried"
    assert one(s, "StateDirectory") == Path(DEFAULT_STATE_DIR).name
    assert f"/var/lib/{one(s, 'StateDirectory')}" == str(DEFAULT_STATE_DIR)
    assert one(s, "StateDirectoryMode") == "0700"
    assert one(s, "ProtectSystem") == "strict"
    assert one(s, "NoNewPrivileges") == "yes"
    assert "Service.User" not in s, "root: see the unit's header"
    assert "Service.DynamicUser" not in s
    watchdog = one(s, "WatchdogSec")
    stop = one(s, "TimeoutStopSec")
    assert re.fullmatch(r"\d+s", watchdog), watchdog
    assert re.fullmatch(r"\d+s", stop), stop


def test_exactly_the_writable_paths_and_capabilities_the_job_needs() -> None:
    s = unit_settings()
    assert set(one(s, "ReadWritePaths").split()) == {
        PostfixSettings().config_directory,
        "/var/spool/postfix",
    }
    assert set(one(s, "CapabilityBoundingSet").split()) == {"CAP_KILL", "CAP_SETUID", "CAP_SETGID"}
    assert one(s, "AmbientCapabilities") == ""
    assert set(one(s, "SupplementaryGroups").split()) == {"adm", "postdrop"}
    assert set(one(s, "RestrictAddressFamilies").split()) == {"AF_UNIX", "AF_INET", "AF_INET6"}


def test_every_service_setting_is_explained() -> None:
    """Each group of settings in [Service] has a comment above it saying why."""
    lines = UNIT.read_text(encoding="utf-8").splitlines()
    start = lines.index("[Service]")
    end = lines.index("[Install]")
    bare = []
    for i in range(start + 1, end):
        line = lines[i]
        if line and not line.startswith("#"):
            j = i - 1
            while j > start and lines[j] and not lines[j].startswith("#"):
                j -= 1  # a block of settings under one comment
            if not lines[j].startswith("#"):
                bare.append(f"{UNIT.name}:{i + 1}: {line}")
    assert not bare, "settings without a comment saying why:\n" + "\n".join(bare)


# --- systemd-analyze -----------------------------------------------------------------


@pytest.mark.integration
def test_systemd_analyze_verify_is_clean(stub_unit: Path) -> None:
    program = need("systemd-analyze")["systemd-analyze"]
    done = analyze(program, "verify", f"./{stub_unit.name}", cwd=stub_unit.parent)
    said = (done.stdout + done.stderr).strip()
    assert done.returncode == 0, said
    # verify only warns (exit 0) about unknown keys and unparsable values: none allowed
    assert said == "", f"systemd-analyze verify has something to say:\n{said}"


@pytest.mark.integration
def test_verify_would_catch_a_mistake(stub_unit: Path) -> None:
    """The check above is not blind: a typo makes verify speak up."""
    program = need("systemd-analyze")["systemd-analyze"]
    text = stub_unit.read_text(encoding="utf-8").replace("WatchdogSec=", "WatchdogSecs=")
    stub_unit.write_text(text, encoding="utf-8")
    done = analyze(program, "verify", f"./{stub_unit.name}", cwd=stub_unit.parent)
    assert "WatchdogSecs" in done.stdout + done.stderr


def exposure(program: str, unit: Path) -> tuple[float, list[str], str]:
    done = analyze(program, "security", "--offline=true", f"./{unit.name}", cwd=unit.parent)
    text = done.stdout + done.stderr
    found = re.search(r"Overall exposure level for \S+: (\d+(?:\.\d+)?)", text)
    assert found, f"no overall exposure level in:\n{text}"
    exposed = [line.rstrip() for line in text.splitlines() if line.startswith("✗")]
    return float(found.group(1)), exposed, text


@pytest.mark.integration
def test_security_exposure_is_at_most_the_documented_score(stub_unit: Path) -> None:
    program = need("systemd-analyze")["systemd-analyze"]
    score, exposed, _ = exposure(program, stub_unit)
    assert score <= MAX_EXPOSURE, (
        f"exposure {score} > {MAX_EXPOSURE}; what is exposed:\n" + "\n".join(exposed)
    )
    header = UNIT.read_text(encoding="utf-8")
    assert f"rates this unit {MAX_EXPOSURE}" in header, "the unit's header states the score"


@pytest.mark.integration
def test_the_score_would_catch_a_loosening(stub_unit: Path) -> None:
    program = need("systemd-analyze")["systemd-analyze"]
    text = stub_unit.read_text(encoding="utf-8").replace(
        "CapabilityBoundingSet=CAP_KILL", "CapabilityBoundingSet=CAP_SYS_ADMIN CAP_KILL"
    )
    stub_unit.write_text(text, encoding="utf-8")
    score, _, _ = exposure(program, stub_unit)
    assert score > MAX_EXPOSURE


# --- the unit's privileges against a real private Postfix --------------------------------

SANDBOX_SCRIPT = r"""
import json, os, signal, sys
args = json.loads(sys.argv[1])
from watcher.core.settings import PostfixSettings, Settings
from watcher.core.decide import Action
from watcher.core import plan
from tests.incidents import make_incident
from watcher.responders.postfix import (
    FreezeResponder, HoldResponder, PostfixControl, PostfixError, frozen_from, restore,
)

cfg = args["config_directory"]
settings = Settings(postfix=PostfixSettings(config_directory=cfg))
control = PostfixControl(cfg)
incident = make_incident("20261128T000000Z-unit", "backscatter", "", 10, 10, 60, "", "", "")
results = {}

def step(name, fn):
    try:
        results[name] = [True, fn()]
    except Exception as exc:
        results[name] = [False, f"{type(exc).__name__}: {exc}"]

def freeze():
    out = FreezeResponder(settings, control).respond(
        Action("freeze-postfix", "trip", "backscatter", 0, 10, 10, 60, ("smtp",)), incident)
    if not out.ok:
        raise RuntimeError(out.summary)
    results["_frozen"] = out.details
    return out.summary

def hold():
    out = HoldResponder(settings, control).respond(
        Action("hold-bounces", "trip", "backscatter", 0, 10, 10, 60), incident)
    if not out.ok:
        raise RuntimeError(out.summary)
    if not out.details["held"]:
        raise RuntimeError("nothing to hold")
    results["_held"] = out.details["held"]
    return out.summary

def restore_main_cf():
    return restore(control, frozen_from(results["_frozen"]))

def release():
    return control.postsuper("-H", results["_held"])

def read_maillog():
    with open(args["maillog"], encoding="utf-8") as f:
        return f.read()

def signal_other_user():
    os.kill(args["other_pid"], signal.SIGTERM)
    return "SIGTERM sent"

def write_state():
    path = os.path.join(args["state_dir"], "probe")
    with open(path, "w") as f:
        f.write("ok")
    return path

def write_elsewhere():
    with open(os.path.join(args["elsewhere"], "probe"), "w") as f:
        f.write("should not be possible")
    return "written"

step("read_maillog", read_maillog)
step("freeze", freeze)
step("queue", lambda: len(control.queue()))
step("hold", hold)
step("postfix_reload", lambda: control.command(plan.postfix_reload(cfg)))
step("restore", restore_main_cf)
step("release", release)
step("flush", control.flush)
step("signal_other_user", signal_other_user)
step("write_state", write_state)
step("write_elsewhere", write_elsewhere)
json.dump(results, sys.stdout)
"""

ALL_STEPS = (
    "read_maillog",
    "freeze",
    "queue",
    "hold",
    "postfix_reload",
    "restore",
    "release",
    "flush",
    "signal_other_user",
    "write_state",
)


def _cap_names(unit: dict[str, list[str]]) -> list[str]:
    return [c.removeprefix("CAP_").lower() for c in one(unit, "CapabilityBoundingSet").split()]


class Sandbox:
    """Runs SANDBOX_SCRIPT as root under the unit's privileges, on a private Postfix."""

    def __init__(self, postfix: PostfixInstance, root: Path, programs: dict[str, str]) -> None:
        self.postfix = postfix
        self.root = root
        self.programs = programs
        self.state_dir = root / "state"
        self.state_dir.mkdir(mode=0o700)
        self.maillog = root / "mail.log"
        self.maillog.write_text("Nov 28 00:00:00 mx postfix/qmgr[1]: started\n", encoding="utf-8")
        # like Debian's /var/log/mail.log (syslog:adm 0640): root reads it only as adm
        os.chown(self.maillog, require_user("nobody").pw_uid, require_group("adm").gr_gid)
        self.maillog.chmod(0o640)
        # the unit's ReadWritePaths=, as this instance has them
        self.writable = {
            PostfixSettings().config_directory: postfix.config_dir,
            "/var/spool/postfix": postfix.queue_dir,
        }

    def run(
        self, caps: Sequence[str], groups: Sequence[str], other_pid: int
    ) -> dict[str, list[Any]]:
        binds = [self.postfix.config_dir, self.postfix.queue_dir, self.state_dir]
        mounts = [
            "set -e",
            "mount --make-rprivate /",
            # ProtectSystem=strict, for the instance's tree: read-only ...
            f"mount --bind {shlex.quote(str(self.root))} {shlex.quote(str(self.root))}",
            f"mount -o remount,bind,ro {shlex.quote(str(self.root))}",
        ]
        for path in binds:  # ... but ReadWritePaths= and StateDirectory=
            q = shlex.quote(str(path))
            mounts += [f"mount --bind {q} {q}", f"mount -o remount,bind,rw {q}"]
        setpriv = [
            self.programs["setpriv"],
            "--bounding-set",
            ",".join(["-all", *(f"+{c}" for c in caps)]),
            "--inh-caps",
            "-all",
            "--no-new-privs",
            *(["--groups", ",".join(groups)] if groups else ["--clear-groups"]),
            "--",
            sys.executable,
            "-c",
            SANDBOX_SCRIPT,
            json.dumps(
                {
                    "config_directory": str(self.postfix.config_dir),
                    "maillog": str(self.maillog),
                    "other_pid": other_pid,
                    "state_dir": str(self.state_dir),
                    "elsewhere": str(self.root),  # root's own 0755: only read-only stops it
                }
            ),
        ]
        script = "\n".join([*mounts, "exec " + shlex.join(setpriv)])
        done = subprocess.run(
            [self.programs["unshare"], "--mount", "--", "/bin/sh", "-c", script],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
            env={**os.environ, "PYTHONPATH": str(REPO), "PYTHONDONTWRITEBYTECODE": "1"},
        )
        assert done.returncode == 0, f"sandbox failed ({done.returncode}):\n{done.stderr}"
        results: dict[str, list[Any]] = json.loads(done.stdout)
        return results


@pytest.fixture
def other_user_process() -> Iterator[Callable[[], int]]:
    """Start processes as ``nobody`` (stand-ins for fetchmail of another user)."""
    procs: list[subprocess.Popen[bytes]] = []
    nobody = require_user("nobody")

    def start() -> int:
        proc = subprocess.Popen(
            ["sleep", "300"],
            user=nobody.pw_uid,
            group=nobody.pw_gid,
            extra_groups=[],
            stdin=subprocess.DEVNULL,
        )
        procs.append(proc)
        return proc.pid

    try:
        yield start
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)


@pytest.fixture
def sandbox(make_postfix: Callable[..., PostfixInstance], root: Path) -> Sandbox:
    require_root()
    programs = need("setpriv", "unshare", "mount")
    require_group("adm")
    # a relay nobody listens on: mail stays queued (deferred), ready to be held
    postfix = make_postfix(relayhost=f"[127.0.0.1]:{free_port()}")
    return Sandbox(postfix, root, programs)


def queue_a_bounce(postfix: PostfixInstance) -> str:
    qid = postfix.inject("", "someone@remote.example")
    postfix.wait_for_log(rf"{qid}: to=<someone@remote\.example>.*status=deferred", 30)
    return qid


def failed(results: dict[str, list[Any]]) -> dict[str, str]:
    return {k: str(v[1]) for k, v in results.items() if not k.startswith("_") and not v[0]}


@pytest.mark.integration
def test_the_units_privileges_are_enough_for_the_whole_job(
    sandbox: Sandbox, other_user_process: Callable[[], int]
) -> None:
    unit = unit_settings()
    assert set(unit["Service.ReadWritePaths"][0].split()) == set(sandbox.writable)
    postfix = sandbox.postfix
    main_cf = (postfix.config_dir / "main.cf").read_bytes()
    qid = queue_a_bounce(postfix)
    other = other_user_process()

    results = sandbox.run(
        _cap_names(unit), one(unit, "SupplementaryGroups").split(), other_pid=other
    )

    assert set(failed(results)) == {"write_elsewhere"}, failed(results)
    assert "Read-only file system" in results["write_elsewhere"][1]
    assert results["_held"] == [qid]
    assert "SIGHUP to the master" in results["freeze"][1]
    assert (postfix.config_dir / "main.cf").read_bytes() == main_cf, "restore put main.cf back"
    assert [e["queue_name"] for e in postfix.queue_json()] != ["hold"], "released"
    wait_for(
        lambda: not os.path.exists(f"/proc/{other}") or _zombie(other),
        10,
        "the other user's process to end after SIGTERM from the sandbox",
    )


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


@pytest.mark.integration
@pytest.mark.parametrize(
    ("drop", "breaks"),
    [
        ("cap:kill", {"signal_other_user"}),
        ("cap:setuid", {"hold", "postfix_reload", "release"}),
        ("cap:setgid", {"hold", "postfix_reload", "release"}),
        ("group:postdrop", {"queue", "hold", "flush"}),
        ("group:adm", {"read_maillog"}),
    ],
)
def test_each_privilege_is_needed(
    sandbox: Sandbox,
    other_user_process: Callable[[], int],
    drop: str,
    breaks: set[str],
) -> None:
    unit = unit_settings()
    kind, _, name = drop.partition(":")
    caps = [c for c in _cap_names(unit) if not (kind == "cap" and c == name)]
    all_groups = one(unit, "SupplementaryGroups").split()
    groups = [g for g in all_groups if not (kind == "group" and g == name)]
    assert len(caps) + len(groups) == len(_cap_names(unit)) + len(all_groups) - 1, drop
    queue_a_bounce(sandbox.postfix)
    other = other_user_process()

    results = sandbox.run(caps, groups, other_pid=other)

    broken = set(failed(results)) - {"write_elsewhere"}
    assert breaks <= broken, f"without {drop}: {failed(results)}"
    if kind == "cap" and name == "kill":
        assert "Operation not permitted" in results["signal_other_user"][1]


# --- MemoryDenyWriteExecute= ---------------------------------------------------------

MDWE_LAUNCHER = r"""
import ctypes, os, sys
libc = ctypes.CDLL(None, use_errno=True)
PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN = 65, 1
if libc.prctl(PR_SET_MDWE, PR_MDWE_REFUSE_EXEC_GAIN, 0, 0, 0) != 0:
    sys.exit(77)  # kernel < 6.3: no PR_SET_MDWE
os.execv(sys.executable, [sys.executable, *sys.argv[1:]])
"""

MDWE_PROBE = r"""
import ctypes, mmap, sys
import apprise, psutil, pydantic, tqdm
import watcher.cli, watcher.responders.killswitch, watcher.runtime.service
import watcher.responders.notify.responder, watcher.responders.notify.targets
try:
    mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
except PermissionError:
    pass
else:
    sys.exit("a writable and executable mapping was allowed: the rule is not in force")
callback = ctypes.CFUNCTYPE(ctypes.c_int)(lambda: 7)  # libffi closures
assert callback() == 7
sys.exit(watcher.cli.main(["demo", "--json"]))
"""


@pytest.mark.integration
def test_python_and_the_libraries_run_without_writable_executable_memory() -> None:
    """MemoryDenyWriteExecute=yes: the same rule, set with PR_SET_MDWE, for the
    interpreter, pydantic-core, psutil, apprise, ctypes and a whole demo replay."""
    done = subprocess.run(
        [sys.executable, "-c", MDWE_LAUNCHER, "-c", MDWE_PROBE],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    if done.returncode == 77:
        pytest.skip("the kernel has no PR_SET_MDWE (Linux >= 6.3) to emulate the setting with")
    assert done.returncode == 1, f"demo should trip (exit 1): {done.returncode}\n{done.stderr}"
    assert json.loads(done.stdout)["tripped"] is True


@pytest.mark.integration
def test_install_unit_as_the_readme_says_gives_a_unit_that_verifies_and_a_config_that_checks(
    tmp_path: Path,
) -> None:
    """``stormwatch install-unit`` points the unit at the real program and writes the example
    settings; ``systemd-analyze verify`` and ``stormwatch check-config`` accept both."""
    program = need("systemd-analyze")["systemd-analyze"]
    stub = tmp_path / "bin" / "stormwatch"
    stub.parent.mkdir()
    stub.write_text("#!/bin/sh\nexit 0\n", encoding="utf-8")
    stub.chmod(0o755)
    config = tmp_path / "etc" / "stormwatch.toml"
    units = tmp_path / "units"
    done = subprocess.run(
        [sys.executable, "-m", "watcher", "install-unit", "--dest", str(units),
         "--bin", str(stub), "--config", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    installed = units / "stormwatch.service"
    s = unit_settings(installed.read_text(encoding="utf-8"))
    assert one(s, "ExecStart") == f"{stub} run"
    assert one(s, "ExecStartPre") == f"{stub} check-config --quiet"
    verified = analyze(program, "verify", f"./{installed.name}", cwd=units)
    assert (verified.stdout + verified.stderr).strip() == "", verified.stderr
    checked = subprocess.run(
        [sys.executable, "-m", "watcher", "check-config", "--config", str(config)],
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert checked.returncode == 0, checked.stderr
    assert checked.stdout.endswith("OK\n")
