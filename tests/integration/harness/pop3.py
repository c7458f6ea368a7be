"""A private dovecot POP3 server on loopback: the mailbox fetchmail pulls list mail from.

Everything lives under ``root``: dovecot.conf, base_dir (sockets, master.pid),
state_dir, the log, a passwd-file with one user, and that user's Maildir. It runs in
the foreground (``dovecot -F -c FILE``) as a child in its own session, so ``stop()``
can end it and everything it started. No SSL; plaintext auth over loopback.
Mail processes run as ``nobody`` (dovecot refuses root for mail access).
"""

from __future__ import annotations

import itertools
import os
import poplib
import pwd
import signal
import subprocess
import time
from collections.abc import Iterable
from pathlib import Path

from .dovecot import launch_dovecot
from .messages import DEFAULT_LIST, MailingList
from .procs import LOOPBACK, Started, banner, free_port, stop_group
from .requires import require_group, require_programs, require_root, require_user

_instances = itertools.count(1)


class DovecotPop3(Started):
    """One POP3 user (``user``/``password``) whose Maildir the test fills."""

    def __init__(
        self,
        root: Path,
        *,
        user: str = "listuser",
        password: str = "list-secret",
        port: int | None = None,
        mail_user: str = "nobody",
    ) -> None:
        self.root = root
        self.user = user
        self.password = password
        self._port = port
        self.mail_user = mail_user
        self.config_path = root / "dovecot.conf"
        self.base_dir = root / "run"
        self.state_dir = root / "state"
        self.log_path = root / "dovecot.log"
        self.users_path = root / "users"
        self.maildir = root / "mail" / user
        self.instance_name = f"stormwatch-pop3-{os.getpid()}-{next(_instances)}"
        self._proc: subprocess.Popen[bytes] | None = None
        self._serial = itertools.count(1)

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("no POP3 port yet: start() picks one")
        return self._port

    @property
    def pid(self) -> int:
        if self._proc is None:
            raise RuntimeError("dovecot is not started")
        return self._proc.pid

    def config(self) -> str:
        mail = pwd.getpwnam(self.mail_user)
        return f"""\
# dovecot.conf of a private stormwatch test instance (POP3 only, loopback, no SSL)
base_dir = {self.base_dir}
state_dir = {self.state_dir}
instance_name = {self.instance_name}
log_path = {self.log_path}
protocols = pop3
listen = {LOOPBACK}
ssl = no
disable_plaintext_auth = no
auth_mechanisms = plain
first_valid_uid = {mail.pw_uid}
first_valid_gid = {mail.pw_gid}
mail_location = maildir:{self.root}/mail/%u
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {self.users_path}
}}
userdb {{
  driver = static
  args = uid={mail.pw_uid} gid={mail.pw_gid} home={self.root}/mail/%u
}}
service pop3-login {{
  inet_listener pop3 {{
    address = {LOOPBACK}
    port = {self.port}
  }}
  inet_listener pop3s {{
    port = 0
  }}
}}
"""

    def start(self, timeout: float = 20.0) -> DovecotPop3:
        require_root()
        dovecot = require_programs("dovecot")["dovecot"]
        mail = require_user(self.mail_user)
        if self._port is None:
            self._port = free_port()
        self.root.mkdir(parents=True, exist_ok=True)
        for directory in (self.base_dir, self.state_dir):
            directory.mkdir(exist_ok=True)
        for sub in ("cur", "new", "tmp"):
            (self.maildir / sub).mkdir(parents=True, exist_ok=True)
        for path in (
            self.maildir.parent,
            self.maildir,
            *(self.maildir / s for s in ("cur", "new", "tmp")),
        ):
            os.chown(path, mail.pw_uid, mail.pw_gid)
        self.config_path.write_text(self.config(), encoding="utf-8")
        self.users_path.write_text(f"{self.user}:{{PLAIN}}{self.password}\n", encoding="utf-8")
        # Read by dovecot's auth process, which runs as default_internal_user "dovecot".
        os.chown(self.users_path, 0, require_group("dovecot").gr_gid)
        self.users_path.chmod(0o640)
        self._proc = launch_dovecot(
            dovecot,
            self.config_path,
            self.root,
            self.log_path,
            lambda: banner(self.port).startswith(b"+OK"),
            f"a +OK banner from dovecot on {LOOPBACK}:{self.port}",
            timeout,
        )
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._proc is not None:
            stop_group(self._proc, signal.SIGTERM, timeout)
            self._proc = None

    # ----- the mailbox

    def deliver(self, messages: Iterable[bytes]) -> int:
        """Put raw messages into the Maildir (tmp/ then rename to new/); returns how many."""
        mail = pwd.getpwnam(self.mail_user)
        count = 0
        for data in messages:
            name = f"{time.time_ns()}.P{os.getpid()}Q{next(self._serial)}.stormwatch"
            tmp = self.maildir / "tmp" / name
            tmp.write_bytes(data)
            os.chown(tmp, mail.pw_uid, mail.pw_gid)
            tmp.rename(self.maildir / "new" / name)
            count += 1
        return count

    def load_list_mail(
        self,
        count: int,
        *,
        mailing_list: MailingList = DEFAULT_LIST,
        start: int = 1,
        to: str | None = None,
    ) -> int:
        """Put ``count`` list posts (numbered from ``start``) in the mailbox."""
        return self.deliver(
            mailing_list.message_bytes(index, to=to) for index in range(start, start + count)
        )

    def waiting(self) -> int:
        """Messages in the Maildir not yet deleted by a POP3 client."""
        return sum(
            1
            for sub in ("new", "cur")
            for entry in (self.maildir / sub).iterdir()
            if entry.is_file()
        )

    def stat(self, timeout: float = 5.0) -> tuple[int, int]:
        """POP3 STAT as this user: (messages, octets)."""
        client = poplib.POP3(LOOPBACK, self.port, timeout=timeout)
        try:
            client.user(self.user)
            client.pass_(self.password)
            return client.stat()
        finally:
            client.quit()
