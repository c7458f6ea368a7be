"""A private dovecot auth service on a unix socket: SASL for a private Postfix's smtpd.

``smtpd_sasl_type = dovecot``, ``smtpd_sasl_path = <socket>`` (:meth:`DovecotAuth.main_cf`).
Everything lives under ``root``: dovecot.conf, base_dir, state_dir, the log and a
passwd-file with the accounts given. No listener on any network port (``protocols =``
empty); it runs in the foreground in its own session, so ``stop()`` ends it all.
"""

from __future__ import annotations

import itertools
import os
import signal
import smtplib
import subprocess
from collections.abc import Mapping
from pathlib import Path

from .dovecot import launch_dovecot
from .procs import LOOPBACK, Started, stop_group
from .requires import require_group, require_programs, require_root

_instances = itertools.count(1)


class DovecotAuth(Started):
    """SASL PLAIN/LOGIN for ``accounts`` (user -> password)."""

    def __init__(self, root: Path, accounts: Mapping[str, str]) -> None:
        self.root = root
        self.accounts = dict(accounts)
        self.base_dir = root / "run"
        self.socket_path = self.base_dir / "auth-postfix"
        self.log_path = root / "dovecot.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self.instance_name = f"stormwatch-auth-{os.getpid()}-{next(_instances)}"

    def main_cf(self) -> dict[str, str]:
        """main.cf for a Postfix whose smtpd authenticates here and relays only for SASL
        users (loopback is not in mynetworks: every relayed message has a SASL user)."""
        return {
            "smtpd_sasl_auth_enable": "yes",
            "smtpd_sasl_type": "dovecot",
            "smtpd_sasl_path": str(self.socket_path),
            "smtpd_relay_restrictions": "permit_sasl_authenticated, reject",
            "smtpd_recipient_restrictions": "permit_sasl_authenticated, reject",
            "mynetworks": "192.0.2.0/24",
        }

    def config(self) -> str:
        root = self.root
        return f"""\
# dovecot.conf of a private stormwatch test instance: auth only, a unix socket
base_dir = {self.base_dir}
state_dir = {root}/state
instance_name = {self.instance_name}
log_path = {self.log_path}
protocols =
auth_mechanisms = plain login
disable_plaintext_auth = no
passdb {{
  driver = passwd-file
  args = scheme=PLAIN username_format=%u {root}/users
}}
userdb {{
  driver = static
  args = uid=65534 gid=65534 home=/nonexistent
}}
service auth {{
  unix_listener {self.socket_path} {{
    mode = 0666
  }}
}}
"""

    def start(self, timeout: float = 20.0) -> DovecotAuth:
        require_root()
        dovecot = require_programs("dovecot")["dovecot"]
        for directory in (self.root, self.base_dir, self.root / "state"):
            directory.mkdir(parents=True, exist_ok=True)
        (self.root / "dovecot.conf").write_text(self.config(), encoding="utf-8")
        users = self.root / "users"
        users.write_text("".join(f"{u}:{{PLAIN}}{p}\n" for u, p in self.accounts.items()))
        os.chown(users, 0, require_group("dovecot").gr_gid)  # read by the auth process
        users.chmod(0o640)
        self._proc = launch_dovecot(
            dovecot,
            self.root / "dovecot.conf",
            self.root,
            self.log_path,
            self.socket_path.exists,
            f"dovecot's auth socket {self.socket_path}",
            timeout,
        )
        return self

    def stop(self, timeout: float = 10.0) -> None:
        if self._proc is not None:
            stop_group(self._proc, signal.SIGTERM, timeout)
            self._proc = None


def submit(port: int, user: str, password: str, rcpts: list[str], subject: str) -> str:
    """One message by SMTP AUTH to a private smtpd on loopback; "" if accepted, else why."""
    with smtplib.SMTP(LOOPBACK, port, timeout=10) as smtp:
        smtp.ehlo("client.stormwatch.test")
        smtp.login(user, password)
        try:
            smtp.sendmail(f"{user}@stormwatch.test", rcpts, f"Subject: {subject}\r\n\r\nbody\r\n")
        except smtplib.SMTPException as exc:
            return repr(exc)
    return ""
