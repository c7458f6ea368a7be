"""What each action would run: argv lists, built from settings and validated data.

Pure. The real responders run these lists; the dry-run responder prints
them. Nothing taken from a log line reaches an argv unless it passed a check
here (transport names against master.cf's service-name alphabet; queue IDs
are checked by the hold responder against the queue-ID alphabet).
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from watcher.config import Settings
from watcher.decide import Action

SERVICE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


def freeze_transports(action: Action, settings: Settings) -> tuple[str, ...]:
    """Transports to defer: those the tripping deliveries used, else the configured ones.

    Names that are not plausible master.cf service names are dropped.
    """
    chosen = action.transports or settings.postfix.freeze_transports
    return tuple(t for t in chosen if SERVICE_RE.fullmatch(t))


def postconf_set(settings: Settings, values: Iterable[tuple[str, str]]) -> list[str]:
    return [
        "postconf",
        "-c",
        settings.postfix.config_directory,
        "-e",
        "--",
        *(f"{k}={v}" for k, v in values),
    ]


def postconf_get(settings: Settings, names: Iterable[str]) -> list[str]:
    return ["postconf", "-c", settings.postfix.config_directory, "-h", "--", *names]


def postfix_reload(settings: Settings) -> list[str]:
    return ["postfix", "-c", settings.postfix.config_directory, "reload"]


def postqueue_list(settings: Settings) -> list[str]:
    return ["postqueue", "-c", settings.postfix.config_directory, "-j"]


def postsuper_hold_stdin(settings: Settings) -> list[str]:
    return ["postsuper", "-c", settings.postfix.config_directory, "-h", "-"]


def freeze_values(action: Action, settings: Settings) -> list[tuple[str, str]]:
    return [
        ("soft_bounce", "yes"),
        ("defer_transports", ",".join(freeze_transports(action, settings))),
    ]
