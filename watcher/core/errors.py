"""One root for stormwatch's own errors, and what each kind means for the exit status.

* :class:`ConfigError` (and its subclasses: rules, settings, arguments,
  sources): refused at start, fix the configuration. Exit status 2, which the
  systemd unit does not restart (``RestartPreventExitStatus=2``).
* Any other :class:`StormwatchError` (state files, Postfix commands, a start
  that failed for a reason outside the configuration): exit status 3, which
  systemd restarts.

Each subclass lives beside the code that raises it.
"""

from __future__ import annotations


class StormwatchError(Exception):
    """Something stormwatch could not do; the message says what and why."""


class ConfigError(StormwatchError):
    """The settings, a rule file or the arguments are wrong; the message says where and why."""
