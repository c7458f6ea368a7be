"""What each action would run: argv lists, built from settings and validated data.

Pure. The real responders run these lists; the dry-run responder prints
them. Nothing taken from a log line reaches an argv unless it passed a check
here (transport names against master.cf's service-name alphabet; queue IDs
are checked by the responder against the queue-ID alphabet and passed on
stdin).
"""

from __future__ import annotations

import ipaddress
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
# An address that may go into a Postfix lookup table on the command line: no space, no
# brace, no comma, no quote (a looping recipient as the log shows it; anything else is left out).
ADDRESS_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+=-]{0,63}@[A-Za-z0-9][A-Za-z0-9.-]{0,252}")

HELD = "held by stormwatch"
SDTM = "sender_dependent_default_transport_maps"
RECIPIENT_RESTRICTIONS = "smtpd_recipient_restrictions"
# What the scoped step changes, and so what it saves first and rearm puts back.
CONTAIN_PARAMS = ("soft_bounce", SDTM, RECIPIENT_RESTRICTIONS)
NULL_SENDER_HOLD = f"inline:{{ {{<>=retry:4.7.1 {HELD}}} }}"


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


def held_addresses(action: Action) -> tuple[str, ...]:
    """The action's looping recipients that are safe in a lookup table; the rest left out."""
    return tuple(a for a in action.addresses if ADDRESS_RE.fullmatch(a))


def recipient_hold_table(addresses: Iterable[str]) -> str:
    """``inline:{ {a@b=HOLD held by stormwatch}, ... }``: smtpd holds their new mail."""
    return "inline:{ " + ", ".join(f"{{{a}=HOLD {HELD}}}" for a in addresses) + " }"


def contain_values(action: Action, saved: dict[str, str | None]) -> dict[str, str]:
    """The scoped step: soft_bounce=yes (no new bounce is made), null-sender mail to the
    retry transport (a table put before any the host has), and new mail for the looping
    recipients held at smtpd (a check put first in smtpd_recipient_restrictions)."""
    values = {"soft_bounce": "yes", SDTM: NULL_SENDER_HOLD}
    if saved.get(SDTM):
        values[SDTM] = f"{NULL_SENDER_HOLD}, {saved[SDTM]}"
    addresses = held_addresses(action)
    if addresses:
        check = f"check_recipient_access {recipient_hold_table(addresses)}"
        before = saved.get(RECIPIENT_RESTRICTIONS)
        values[RECIPIENT_RESTRICTIONS] = f"{check}, {before}" if before else check
    return values


def postmap_query(cfg: str, key: str, table: str) -> list[str]:
    """``postmap -q KEY TABLE``: checks a table before it goes into main.cf (postconf -e
    does not; a broken inline table would stop every remote delivery)."""
    return ["postmap", "-c", cfg, "-q", key, table]


def postconf_set(cfg: str, values: dict[str, str]) -> list[str]:
    return ["postconf", "-c", cfg, "-e", "--", *(f"{k}={v}" for k, v in values.items())]


def postconf_explicit(cfg: str, names: Iterable[str]) -> list[str]:
    """``postconf -n``: only what main.cf sets, so "absent" can be told from "empty"."""
    return ["postconf", "-c", cfg, "-n", "--", *names]


def postconf_overrides(cfg: str) -> list[str]:
    """``postconf -P``: master.cf's ``-o`` overrides, ``service/type/name = value``."""
    return ["postconf", "-c", cfg, "-P"]


def overriding_services(postconf_p: str, param: str) -> list[str]:
    """The master.cf services whose ``-o`` overrides set ``param``, from ``postconf -P``'s
    ``service/type/name = value`` lines (sorted, each once)."""
    found = set()
    for line in postconf_p.splitlines():
        service, _, name = line.split(" = ", 1)[0].rpartition("/")
        if name == param:
            found.add(service.rsplit("/", 1)[0])
    return sorted(found)


def postconf_remove(cfg: str, names: Iterable[str]) -> list[str]:
    return ["postconf", "-c", cfg, "-X", "--", *names]


def postconf_get(cfg: str, name: str) -> list[str]:
    return ["postconf", "-c", cfg, "-h", "--", name]


def postconf_expanded(cfg: str, name: str) -> list[str]:
    """The value with ``$name`` references expanded (``postconf -x``)."""
    return ["postconf", "-c", cfg, "-x", "-h", "--", name]


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


# -- contain-offender: stop one origin's new mail ---------------------------------------

SASL_USER_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._%+=@-]{0,255}")
LOGIN_RE = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
SUBMIT_USERS = "authorized_submit_users"
DATA_RESTRICTIONS = "smtpd_data_restrictions"
# the smtpd stages a SASL user's or a client's block may go in, the first preferred
OFFENDER_STAGES = (RECIPIENT_RESTRICTIONS, DATA_RESTRICTIONS)
OFFENDER_PARAMS = (*OFFENDER_STAGES, SUBMIT_USERS)


def offender_check(group: str, key: str) -> tuple[str, str]:
    """``(restriction, lookup key)`` that holds the offender's new mail at smtpd:
    ``check_sasl_access`` for a SASL user, ``check_client_access`` for a client address.

    Raises ValueError when the key cannot go into a lookup table safely (a space, a
    brace, a comma...), or is a client on this host (a content filter re-injecting, a
    web application: holding it would hold everyone's mail).
    """
    if group == "sasl-user":
        if not SASL_USER_RE.fullmatch(key):
            raise ValueError(f"SASL user {key!r} cannot go into a lookup table")
        return "check_sasl_access", key
    if group == "client":
        try:
            ip = ipaddress.ip_address(key)
        except ValueError:
            raise ValueError(f"client {key!r} is not an IP address") from None
        if ip.is_loopback or ip.is_unspecified:
            raise ValueError(
                f"client {key} is on this host (content filters and local programs submit"
                " from there): holding it would hold everyone's mail"
            )
        return "check_client_access", str(ip)
    raise ValueError(f"{group!r} is not blocked at smtpd")


def offender_hold_table(key: str) -> str:
    return f"inline:{{ {{{key}=HOLD {HELD}}} }}"


def offender_stage_value(group: str, key: str, before: str | None) -> str:
    """The stage's new value: the offender's check first, then what was there."""
    restriction, lookup = offender_check(group, key)
    check = f"{restriction} {offender_hold_table(lookup)}"
    return f"{check}, {before}" if before else check


def submit_users_value(login: str, before: str | None) -> str:
    """``authorized_submit_users`` without ``login`` (sendmail(1) refuses it), everyone
    else as before (the default is ``static:anyone``). Raises ValueError for root and
    for names that cannot go into the list."""
    if login == "root":
        raise ValueError("root's sendmail(1) is never refused (cron, the system's own mail)")
    if not LOGIN_RE.fullmatch(login):
        raise ValueError(f"login {login!r} cannot go into authorized_submit_users")
    return f"!{login}, {before or 'static:anyone'}"
