"""A private Postfix instance entirely under one directory, for real-storm tests.

Layout under ``root`` (a directory whose parents the ``postfix`` and ``nobody`` users
can traverse: use :func:`private_root`, not pytest's 0700 ``tmp_path``)::

    etc/      config_directory: main.cf, master.cf, aliases(.db), virtual(.db)
    spool/    queue_directory (pid/master.pid, active/, deferred/, hold/, ...)
    data/     data_directory (master.lock), owned by mail_owner
    mail/     mailbox files for local deliveries (mode 1777: written as ``nobody``)
    maillog   maillog_file, written by postlogd (Postfix >= 3.4)

Every command gets ``-c <root>/etc``. Nothing is read from or written to the machine's
own /etc/postfix except Postfix's read-only meta files (postfix-files, dynamicmaps.cf,
post-install, postfix-script in ``meta_directory``); /etc/postfix/main.cf need not
exist. It runs as root, with Debian's ``postfix`` user and ``postdrop`` group as
mail_owner and setgid_group. As root, ``-c DIR`` needs no alternate_config_directories
entry (that check is skipped for euid 0; a non-root user would need DIR listed in
/etc/postfix/main.cf).

The storm ingredient: ``looper@<domain>`` is a local alias to
``looper@loop.<domain>``, which virtual_alias_maps sends back to
``looper@<domain>``. local(8) forwards the message (the alias target is not a local
domain, so it goes back through cleanup), cleanup rewrites it to looper again, and
local then finds its own Delivered-To header: ``status=bounced (mail forwarding loop
for looper@<domain>)``, dsn 5.4.6, and bounce(8) sends a null-sender notification to
the envelope sender (a list's bounce address), which ``relayhost`` carries to the
sink. A plain self-alias (``looper: looper``) does not loop: local(8) expands local
targets in-process and falls back to the mailbox.
"""

from __future__ import annotations

import contextlib
import email
import email.policy
import json
import mailbox
import os
import re
import shutil
import signal
import smtplib
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import psutil

from .procs import (
    LOOPBACK,
    Started,
    alive,
    describe,
    free_port,
    kill_all,
    processes_where,
    run,
    still_running,
    tail,
)
from .requires import (
    require_group,
    require_programs,
    require_root,
    require_user,
    unavailable,
    wait_for,
)

POSTFIX_PROGRAMS = ("postfix", "postconf", "postalias", "postmap", "postqueue", "postsuper")

# What postlogd's maillog_file lines start with: msg_logger.c formats the client's
# local time with strftime("%b %d %H:%M:%S ") -- C-locale month, zero-padded day,
# whole seconds (no fraction), no year, no zone -- then the first label of
# myhostname, then "syslog_name/service[pid]: ".
MAILLOG_TIMESTAMP_FORMAT = "%b %d %H:%M:%S"
MAILLOG_LINE = re.compile(
    r"^(?P<time>[A-Z][a-z]{2} \d{2} \d{2}:\d{2}:\d{2}) (?P<host>[^ .]+) "
    r"(?P<program>[^\[ ]+)\[(?P<pid>\d+)\]: (?P<text>.*)$"
)
QUEUED_AS = re.compile(r"queued as ([0-9A-Za-z]+)")

MASTER_CF = """\
# master.cf of a private test instance: Postfix 3.7's stock services (as Debian
# ships them, chroot "y"), smtpd on one loopback port. The harness then runs
# postconf -F '*/*/chroot = n': a bare "postfix start" does not fill a chroot.
# service type  private unpriv  chroot  wakeup  maxproc command + args
{smtpd_listen} inet n       -       y       -       -       smtpd
pickup    unix  n       -       y       60      1       pickup
cleanup   unix  n       -       y       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       y       1000?   1       tlsmgr
rewrite   unix  -       -       y       -       -       trivial-rewrite
bounce    unix  -       -       y       -       0       bounce
defer     unix  -       -       y       -       0       bounce
trace     unix  -       -       y       -       0       bounce
verify    unix  -       -       y       -       1       verify
flush     unix  n       -       y       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       y       -       -       smtp
relay     unix  -       -       y       -       -       smtp
        -o syslog_name={syslog_name}/$service_name
showq     unix  n       -       y       -       -       showq
error     unix  -       -       y       -       -       error
retry     unix  -       -       y       -       -       error
discard   unix  -       -       y       -       -       discard
local     unix  -       n       n       -       -       local
virtual   unix  -       n       n       -       -       virtual
lmtp      unix  -       -       y       -       -       lmtp
anvil     unix  -       -       y       -       1       anvil
scache    unix  -       -       y       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


def postfix_version(postconf: str = "postconf") -> tuple[int, ...]:
    """``mail_version`` of the installed Postfix, e.g. (3, 7, 11)."""
    out = run([postconf, "-dh", "mail_version"]).stdout.strip()
    return tuple(int(part) for part in re.findall(r"\d+", out)[:3])


def require_postfix() -> dict[str, str]:
    """Skip (fail under CI) unless a usable Postfix >= 3.4 and root are here."""
    require_root()
    programs = require_programs(*POSTFIX_PROGRAMS)
    require_user("postfix")
    require_group("postdrop")
    version = postfix_version(programs["postconf"])
    if version < (3, 4):
        unavailable(f"needs Postfix >= 3.4 for maillog_file (found {version})")
    return programs


@contextlib.contextmanager
def private_root(prefix: str = "stormwatch-harness-") -> Iterator[Path]:
    """A fresh directory under /tmp that unprivileged daemons can traverse (0755).

    Removed afterwards unless STORMWATCH_KEEP_TMP is set (then its path is kept for
    a look at the maillog and queue).
    """
    root = Path(tempfile.mkdtemp(prefix=prefix))
    root.chmod(0o755)
    try:
        yield root
    finally:
        if not os.environ.get("STORMWATCH_KEEP_TMP"):
            shutil.rmtree(root, ignore_errors=True)


class PostfixInstance(Started):
    """A private Postfix: ``start()``, inject mail, look at its queue and log, ``stop()``.

    The constructor does no I/O; ``start()`` writes the configuration and starts the
    master with ``postfix -c DIR start``. ``stop()`` is safe to call at any point
    (also after a failed start) and kills whatever is left of the instance.
    """

    def __init__(
        self,
        root: Path,
        *,
        relayhost: str,
        domain: str = "stormwatch.test",
        myhostname: str | None = None,
        syslog_name: str = "postfix",
        smtpd_port: int | None = None,
        long_queue_ids: bool = False,
        main: Mapping[str, str] | None = None,
        mail_owner: str = "postfix",
        setgid_group: str = "postdrop",
    ) -> None:
        self.root = root
        self.relayhost = relayhost
        self.domain = domain
        self.myhostname = myhostname or f"mx.{domain}"
        self.syslog_name = syslog_name
        self._smtpd_port = smtpd_port
        self.long_queue_ids = long_queue_ids
        self.extra_main = dict(main or {})
        self.mail_owner = mail_owner
        self.setgid_group = setgid_group
        self.config_dir = root / "etc"
        self.queue_dir = root / "spool"
        self.data_dir = root / "data"
        self.mail_dir = root / "mail"
        self.log_path = root / "maillog"
        self.programs: dict[str, str] = {}

    # ----- addresses the configuration provides

    @property
    def inbox_address(self) -> str:
        """Delivered by local(8) to the file ``inbox_path``."""
        return f"inbox@{self.domain}"

    @property
    def inbox_path(self) -> Path:
        return self.mail_dir / "inbox.mbox"

    @property
    def loop_address(self) -> str:
        """Mail to this address loops and bounces with dsn 5.4.6."""
        return f"looper@{self.domain}"

    def end_loop(self) -> None:
        """What the admin does before re-arming: ``looper``'s mail now goes to the
        inbox file, so released looping mail is delivered instead of looping again."""
        (self.config_dir / "virtual").write_text(
            f"looper@loop.{self.domain} inbox@{self.domain}\n", encoding="utf-8"
        )
        run(
            [self.programs["postmap"], "-c", str(self.config_dir), str(self.config_dir / "virtual")]
        )

    @property
    def smtpd_port(self) -> int:
        if self._smtpd_port is None:
            raise RuntimeError("no smtpd port yet: start() picks one")
        return self._smtpd_port

    @property
    def master_pid_path(self) -> Path:
        return self.queue_dir / "pid" / "master.pid"

    # ----- life cycle

    def main_cf(self) -> dict[str, str]:
        """The main.cf parameters this instance is written with."""
        version = postfix_version(self.programs.get("postconf", "postconf"))
        params = {
            "compatibility_level": "3.6" if version >= (3, 6) else "2",
            "queue_directory": str(self.queue_dir),
            "data_directory": str(self.data_dir),
            "mail_owner": self.mail_owner,
            "setgid_group": self.setgid_group,
            "syslog_name": self.syslog_name,
            "maillog_file": str(self.log_path),
            # maillog_file must start with one of these (default "/var, /dev/stdout").
            "maillog_file_prefixes": str(self.root),
            "myhostname": self.myhostname,
            "mydomain": self.domain,
            "myorigin": "$mydomain",
            "mydestination": "$mydomain, localhost",
            "inet_interfaces": LOOPBACK,
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8",
            "relayhost": self.relayhost,
            "alias_maps": f"hash:{self.config_dir}/aliases",
            "alias_database": f"hash:{self.config_dir}/aliases",
            "virtual_alias_maps": f"hash:{self.config_dir}/virtual",
            "smtpd_banner": "$myhostname ESMTP",
            "biff": "no",
            "append_dot_mydomain": "no",
            "enable_long_queue_ids": "yes" if self.long_queue_ids else "no",
        }
        params.update(self.extra_main)
        return params

    def write_config(self) -> None:
        """Directories, main.cf, master.cf (chroot off), aliases and virtual maps."""
        self.programs = require_postfix()
        self.root.mkdir(parents=True, exist_ok=True)
        for directory in (self.config_dir, self.queue_dir):
            directory.mkdir(mode=0o755, exist_ok=True)
            directory.chmod(0o755)
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        shutil.chown(self.data_dir, user=self.mail_owner)
        self.mail_dir.mkdir(exist_ok=True)
        self.mail_dir.chmod(0o1777)
        if self._smtpd_port is None:
            self._smtpd_port = free_port()
        main = "".join(f"{key} = {value}\n" for key, value in self.main_cf().items())
        (self.config_dir / "main.cf").write_text(
            "# main.cf of a private stormwatch test instance\n" + main, encoding="utf-8"
        )
        self.backdate_main_cf()  # else every command below pauses ~2 s (see backdate_main_cf)
        (self.config_dir / "master.cf").write_text(
            MASTER_CF.format(
                smtpd_listen=f"{LOOPBACK}:{self._smtpd_port}", syslog_name=self.syslog_name
            ),
            encoding="utf-8",
        )
        self.postconf("-F", "*/*/chroot = n")
        (self.config_dir / "aliases").write_text(
            f"postmaster: {self.mail_dir}/postmaster.mbox\n"
            "MAILER-DAEMON: postmaster\n"
            "root: postmaster\n"
            f"inbox: {self.inbox_path}\n"
            f"looper: looper@loop.{self.domain}\n",
            encoding="utf-8",
        )
        (self.config_dir / "virtual").write_text(
            f"looper@loop.{self.domain} looper@{self.domain}\n", encoding="utf-8"
        )
        for command, table in (("postalias", "aliases"), ("postmap", "virtual")):
            run([self.programs[command], "-c", str(self.config_dir), str(self.config_dir / table)])

    def start(self, timeout: float = 30.0) -> PostfixInstance:
        """Write the configuration, ``postfix -c DIR start``, wait for "daemon started"."""
        self.write_config()
        try:
            self.postfix("start", timeout=timeout)
            # "postfix start" runs "master -w", which returns once the master has
            # bound its listeners: no probe of smtpd needed (a probe would also add
            # "connect from"/"lost connection" lines to the maillog).
            wait_for(
                self.master_running,
                timeout,
                "the master to write a live master.pid",
                seen=lambda: tail(self.log_path, 10),
            )
            self.wait_for_log(
                rf"{re.escape(self.syslog_name)}/master\[\d+\]: daemon started", timeout
            )
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self, timeout: float = 20.0) -> list[int]:
        """``postfix stop``, wait for the master to exit, then SIGKILL any leftovers.

        Returns the PIDs that had to be killed (normally none).
        """
        pid = self.master_pid()
        if pid is not None and alive(pid) and "postfix" in self.programs:
            with contextlib.suppress(AssertionError):
                self.postfix("stop", timeout=timeout)
            with contextlib.suppress(AssertionError):
                wait_for(lambda: not alive(pid), timeout, f"the master (pid {pid}) to exit")
        leftovers = self.processes()
        if pid is not None and alive(pid):
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
        return kill_all(leftovers)

    def processes(self) -> list[psutil.Process]:
        """Running processes of this instance: those with MAIL_CONFIG=<config_dir>.

        ``postfix -c DIR`` exports MAIL_CONFIG and master(8) passes it on to every
        daemon (it is in import_environment), so this finds them all.
        """
        wanted = str(self.config_dir)
        return processes_where(lambda p: p.environ().get("MAIL_CONFIG") == wanted)

    # ----- commands, each with -c <config_dir>

    def _command(self, name: str, *args: str) -> list[str]:
        program = self.programs.get(name) or name
        return [program, "-c", str(self.config_dir), *args]

    def postfix(self, *args: str, timeout: float = 30.0) -> str:
        return run(self._command("postfix", *args), timeout=timeout).stdout

    def postconf(self, *args: str, timeout: float = 30.0) -> str:
        """``postconf -c DIR ARGS...``; returns stdout (e.g. ``postconf("-h", "relayhost")``)."""
        return run(self._command("postconf", *args), timeout=timeout).stdout

    def param(self, name: str) -> str:
        return self.postconf("-h", name).rstrip("\n")

    def postqueue(self, *args: str, timeout: float = 30.0) -> str:
        return run(self._command("postqueue", *args), timeout=timeout).stdout

    def postsuper(self, *args: str, stdin: str | None = None, timeout: float = 30.0) -> str:
        """``postsuper -c DIR ARGS...``; returns what it said (its report is on stderr)."""
        done = run(self._command("postsuper", *args), stdin=stdin, timeout=timeout)
        return done.stdout + done.stderr

    def queue_json(self) -> list[dict[str, Any]]:
        """``postqueue -j``: one dict per queued message (sender "MAILER-DAEMON" for <>)."""
        entries: list[dict[str, Any]] = []
        for line in self.postqueue("-j").splitlines():
            if line.strip():
                entry = json.loads(line)
                assert isinstance(entry, dict), line
                entries.append(entry)
        return entries

    def master_pid(self) -> int | None:
        """The PID in ``<queue_directory>/pid/master.pid`` (None if there is none)."""
        try:
            text = self.master_pid_path.read_text(encoding="ascii").strip()
        except FileNotFoundError:
            return None
        return int(text) if text.isdigit() else None

    def master_running(self) -> bool:
        pid = self.master_pid()
        return pid is not None and alive(pid)

    def backdate_main_cf(self, seconds: float = 5.0) -> None:
        """Set main.cf's mtime ``seconds`` into the past.

        Every Postfix program reading main.cf (the master on SIGHUP, postqueue,
        postsuper, postconf, each daemon as it starts) treats a file modified within
        the last second as "hot" and re-reads it every 300 ms until it is not
        (dict_load_file). So right after ``postconf -e`` a reload takes effect only
        ~1.5-2.4 s later, and ``postqueue -j`` takes ~2 s. postconf -e replaces the
        file whole, so backdating it afterwards is safe: a SIGHUP then takes effect
        in milliseconds.
        """
        main_cf = self.config_dir / "main.cf"
        then = main_cf.stat().st_mtime - seconds
        os.utime(main_cf, (then, then))

    def hup_master(self, *, wait: float | None = 10.0) -> int:
        """SIGHUP to the master (the fast reload); returns the master's PID.

        The master logs "reload -- version ...", re-reads main.cf and then replaces
        its daemons; the ones already running (qmgr, local, smtp, bounce, ...) keep
        the old settings and still serve requests until then. If main.cf changed
        within the last second that takes 1.5-2.4 s (see :meth:`backdate_main_cf`),
        else a few milliseconds. With ``wait`` (seconds), this returns only when every
        daemon that ran before the signal has gone: the new settings are in effect.
        """
        pid = self.master_pid()
        if pid is None or not alive(pid):
            raise AssertionError(f"no live master to signal (master.pid says {pid})")
        before = [p for p in self.processes() if p.pid != pid]
        os.kill(pid, signal.SIGHUP)
        if wait is not None:
            wait_for(
                lambda: not still_running(before),
                wait,
                "every daemon started before the SIGHUP to exit (new main.cf in effect)",
                seen=lambda: describe(still_running(before)),
            )
        return pid

    # ----- mail in

    def inject(
        self,
        sender: str,
        recipients: str | Sequence[str],
        message: EmailMessage | bytes | None = None,
        *,
        subject: str = "stormwatch test",
        timeout: float = 10.0,
    ) -> str:
        """Send one message to this instance's smtpd; returns its queue ID."""
        rcpts = [recipients] if isinstance(recipients, str) else list(recipients)
        if message is None:
            message = EmailMessage()
            message["From"] = sender or f"MAILER-DAEMON@{self.domain}"
            message["To"] = ", ".join(rcpts)
            message["Subject"] = subject
            message.set_content("stormwatch test message\n")
        data = message if isinstance(message, bytes) else message.as_bytes()
        with smtplib.SMTP(
            LOOPBACK, self.smtpd_port, local_hostname="injector.example.net", timeout=timeout
        ) as smtp:
            smtp.ehlo()
            code, reply = smtp.mail(sender)
            if code != 250:
                raise AssertionError(f"MAIL FROM:<{sender}> refused: {code} {reply!r}")
            for rcpt in rcpts:
                code, reply = smtp.rcpt(rcpt)
                if code not in (250, 251):
                    raise AssertionError(f"RCPT TO:<{rcpt}> refused: {code} {reply!r}")
            code, reply = smtp.data(data)
        text = reply.decode("utf-8", "replace")
        found = QUEUED_AS.search(text)
        if code != 250 or found is None:
            raise AssertionError(f"DATA not queued: {code} {text}")
        return found.group(1)

    # ----- what it logged and delivered

    def inbox_messages(self) -> list[EmailMessage]:
        """The messages local(8) delivered to ``inbox_address`` (the mbox file)."""
        if not self.inbox_path.exists():
            return []
        box = mailbox.mbox(self.inbox_path, factory=None, create=False)
        try:
            return [
                email.message_from_bytes(box.get_bytes(key), policy=email.policy.default)
                for key in box.iterkeys()
            ]
        finally:
            box.close()

    def log_text(self) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")
        except FileNotFoundError:
            return ""

    def log_lines(self) -> list[str]:
        return self.log_text().splitlines()

    def wait_for_log(
        self, pattern: str, timeout: float, *, count: int = 1, what: str | None = None
    ) -> list[re.Match[str]]:
        """Wait until ``count`` maillog lines match the regex ``pattern``; return the matches."""
        regex = re.compile(pattern)

        def matches() -> list[re.Match[str]]:
            return [m for line in self.log_lines() if (m := regex.search(line))]

        return wait_for(
            lambda: found if len(found := matches()) >= count else [],
            timeout,
            f"{count} maillog line(s) matching {what or pattern!r} in {self.log_path}",
            seen=lambda: tail(self.log_path, 15),
        )
