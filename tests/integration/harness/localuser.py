"""A dedicated local user running ``sendmail(1)`` against a private Postfix.

Postfix's sendmail, run by anyone but root, accepts ``-C DIR`` only if the
machine's own ``/etc/postfix/main.cf`` lists DIR in ``alternate_config_directories``
— and tests never touch the machine's ``/etc/postfix``. So each submission runs in
a private mount namespace (``unshare -m``) in which the private instance's config
directory is bind-mounted over ``/etc/postfix``: there, the private instance *is* the
default one; then the process drops to the user (``setpriv``) and execs sendmail,
which hands the message to the setgid ``postdrop`` as on any host. The machine's
``/etc/postfix`` is not changed, and nothing outside the namespace sees the mount.

``with LocalUser("swflood") as user:`` creates a system user with no home and no
shell (``useradd --system``) and deletes it after.
"""

from __future__ import annotations

import pwd
import subprocess
from pathlib import Path

from .postfix import PostfixInstance
from .procs import Started
from .requires import require_programs, require_root

SENDMAIL = "/usr/sbin/sendmail"


class LocalUser(Started):
    def __init__(self, name: str) -> None:
        self.name = name
        self.created = False

    @property
    def uid(self) -> int:
        return pwd.getpwnam(self.name).pw_uid

    def start(self) -> LocalUser:
        require_root()
        tools = require_programs("useradd", "userdel", "unshare", "setpriv", "mount")
        try:
            pwd.getpwnam(self.name)
        except KeyError:
            subprocess.run(
                [tools["useradd"], "--system", "--no-create-home", "--shell",
                 "/usr/sbin/nologin", self.name],
                check=True, capture_output=True, timeout=30,
            )  # fmt: skip
            self.created = True
        return self

    def stop(self) -> None:
        if self.created:
            subprocess.run(["userdel", self.name], capture_output=True, timeout=30, check=False)
            self.created = False

    def sendmail(
        self, postfix: PostfixInstance, recipient: str, subject: str
    ) -> subprocess.CompletedProcess[bytes]:
        """``sendmail -i -f <user>@<domain> -- recipient`` as this user; its result."""
        cfg = Path(postfix.config_dir)
        entry = pwd.getpwnam(self.name)
        message = f"Subject: {subject}\nTo: {recipient}\n\nfrom a script\n".encode()
        return subprocess.run(
            [
                "unshare", "--mount", "--propagation", "private", "--",
                "sh", "-c",
                'mount --bind "$1" /etc/postfix && shift && exec setpriv --reuid="$1" '
                '--regid="$2" --clear-groups -- "$3" -i -f "$4" -- "$5"',
                "sh", str(cfg), str(entry.pw_uid), str(entry.pw_gid), SENDMAIL,
                f"{self.name}@{postfix.domain}", recipient,
            ],
            input=message, capture_output=True, timeout=30, check=False,
        )  # fmt: skip
