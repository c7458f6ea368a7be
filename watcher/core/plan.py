"""What each action would run: argv lists, built from settings and validated data.

Pure. The real responders run these lists; the dry-run responder prints
them. Nothing taken from a log line reaches an argv unless it passed a check
here (transport names against master.cf's service-name alphabet; queue IDs
are checked by the responder against the queue-ID alphabet and passed on
stdin).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from watcher.core.decide import Action
from watcher.core.pipeline import Where
from watcher.core.settings import Settings


@dataclass(frozen=True, slots=True)
class PlannedAction:
    """An action a dry run decided on, where, and the steps a live run would take."""

    action: Action
    where: Where
    steps: tuple[str, ...]


SERVICE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def freeze_transports(action: Action, settings: Settings) -> tuple[str, ...]:
    """Transports to defer: those the tripping deliveries used, else the configured ones.

    Names that are not plausible master.cf service names are dropped.
    """
    chosen = action.transports or settings.postfix.freeze_transports
    return tuple(t for t in chosen if SERVICE_RE.fullmatch(t))


def freeze_values(action: Action, settings: Settings) -> dict[str, str]:
    return {
        "soft_bounce": "yes",
        "defer_transports": ",".join(freeze_transports(action, settings)),
    }


def postconf_set(cfg: str, values: dict[str, str]) -> list[str]:
    return ["postconf", "-c", cfg, "-e", "--", *(f"{k}={v}" for k, v in values.items())]


def postconf_explicit(cfg: str, names: Iterable[str]) -> list[str]:
    """``postconf -n``: only what main.cf sets, so "absent" can be told from "empty"."""
    return ["postconf", "-c", cfg, "-n", "--", *names]


def postconf_remove(cfg: str, names: Iterable[str]) -> list[str]:
    return ["postconf", "-c", cfg, "-X", "--", *names]


def postconf_get(cfg: str, name: str) -> list[str]:
    return ["postconf", "-c", cfg, "-h", "--", name]


def postfix_reload(cfg: str) -> list[str]:
    return ["postfix", "-c", cfg, "reload"]


def postqueue_list(cfg: str) -> list[str]:
    return ["postqueue", "-c", cfg, "-j"]


def postqueue_flush(cfg: str) -> list[str]:
    return ["postqueue", "-c", cfg, "-f"]


def postsuper_stdin(cfg: str, flag: str) -> list[str]:
    """``postsuper -h -`` (hold) or ``-H -`` (release): queue IDs come on stdin."""
    if flag not in ("-h", "-H"):
        raise ValueError(f"postsuper {flag}: only hold and release are used")
    return ["postsuper", "-c", cfg, flag, "-"]
