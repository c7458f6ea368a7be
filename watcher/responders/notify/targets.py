"""Notification targets: apprise URLs and config files parsed into targets, and their check.

:func:`parse_targets` gives each target its own Apprise to send with and a
:class:`TargetInfo` safe to show (its URL passed through :func:`redact_url`).
:func:`check_targets` is the configuration check's view of the same parse.
"""

from __future__ import annotations

import contextlib
import logging
import re
import socket
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import apprise

log = logging.getLogger(__name__)

MAIL_SCHEMES = frozenset({"mailto", "mailtos"})

_USERINFO = re.compile(
    r"^(?P<scheme>[A-Za-z][A-Za-z0-9+.-]*://)(?P<user>[^:/@?#]*)(?P<password>:[^/@?#]*)?@"
)
_SECRET_PARAM = re.compile(
    r"(?P<key>[?&](?:[^=&#]*(?:pass|token|secret|key|auth|sig|pwd|apikey)[^=&#]*))=[^&#]*",
    re.IGNORECASE,
)
_LONG_TOKEN = re.compile(r"(?<=/)[A-Za-z0-9_:-]{16,}")


def redact_url(url: str) -> str:
    """``url`` safe to log: apprise's privacy form, or passwords/tokens masked by hand."""
    plugin = None
    with contextlib.suppress(Exception):
        plugin = apprise.Apprise.instantiate(url, suppress_exceptions=True)
    text = _privacy_url(plugin)
    return text or _redact_by_hand(url)


def _redact_by_hand(url: str) -> str:
    def userinfo(m: re.Match[str]) -> str:
        user = m.group("user")
        if m.group("password"):
            return f"{m.group('scheme')}{user}:****@"
        return f"{m.group('scheme')}****@" if len(user) >= 16 else m.group(0)

    out = _USERINFO.sub(userinfo, url)
    out = _SECRET_PARAM.sub(lambda m: f"{m.group('key')}=****", out)
    return _LONG_TOKEN.sub("****", out)


def _privacy_url(plugin: Any) -> str:
    if plugin is None:
        return ""
    try:
        return str(plugin.url(privacy=True))
    except Exception:
        return ""


def _scheme(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


@dataclass(frozen=True, slots=True)
class TargetInfo:
    """One notification target. ``url`` is redacted; ``error`` says why it cannot be used."""

    url: str
    scheme: str
    smtp_host: str = ""
    error: str = ""


@dataclass(frozen=True, slots=True)
class Target:
    """A parsed target: what to show of it, and an Apprise holding it alone to send with."""

    info: TargetInfo
    sender: Any  # None when the target cannot be used (``info.error`` says why)


def parse_targets(
    urls: Iterable[str],
    config_file: str | Path | None,
    *,
    timeout: float = 10.0,
    apprise_factory: Callable[[], Any] = apprise.Apprise,
    config_factory: Callable[[], Any] = apprise.AppriseConfig,
) -> tuple[list[Target], list[str]]:
    """Every target of ``urls`` and of ``config_file`` (read here), and what is wrong with them.

    Each target gets its own Apprise, its connect/read timeouts lowered to ``timeout``.
    """
    problems: list[str] = []
    targets = [_target_for_url(url, problems, timeout, apprise_factory) for url in urls]
    if config_file:
        targets += _targets_from_config(
            Path(config_file), problems, timeout, apprise_factory, config_factory
        )
    return targets, problems


def _target_for_url(
    url: str, problems: list[str], timeout: float, apprise_factory: Callable[[], Any]
) -> Target:
    redacted = redact_url(url)
    sender = apprise_factory()
    error = "not a valid apprise URL (or its notification service is unavailable)"
    try:
        ok = bool(sender.add(url))
    except Exception as exc:
        ok = False
        error = f"apprise could not load it: {type(exc).__name__}: {exc}"
    if not ok:
        problems.append(f"{redacted}: {error}")
        return Target(TargetInfo(redacted, _scheme(url), error=error), None)
    return _target_for_sender(sender, redacted, timeout)


def _targets_from_config(
    path: Path,
    problems: list[str],
    timeout: float,
    apprise_factory: Callable[[], Any],
    config_factory: Callable[[], Any],
) -> list[Target]:
    try:
        path.open("rb").close()
    except OSError as exc:
        problems.append(f"apprise config file {path}: cannot read: {exc.strerror or exc}")
        return []
    try:
        config = config_factory()
        config.add(str(path))
        listing = getattr(config, "services", None) or config.servers  # apprise 2 / 1
        servers = list(listing())
    except Exception as exc:
        problems.append(f"apprise config file {path}: cannot load: {exc}")
        return []
    if not servers:
        problems.append(f"apprise config file {path}: no usable notification URL in it")
    targets = []
    for i, plugin in enumerate(servers, 1):
        sender = apprise_factory()
        if not sender.add(plugin):
            problems.append(f"apprise config file {path}: entry {i} is not usable")
            continue
        targets.append(_target_for_sender(sender, _privacy_url(plugin) or f"{path} #{i}", timeout))
    return targets


def _target_for_sender(sender: Any, redacted: str, timeout: float) -> Target:
    plugins: list[Any] = []
    with contextlib.suppress(Exception):
        plugins = list(sender)
    smtp_host = ""
    scheme = _scheme(redacted)
    for plugin in plugins:
        redacted = _privacy_url(plugin) or redacted
        scheme = _scheme(redacted) or scheme
        smtp_host = str(getattr(plugin, "smtp_host", "") or "")
        for attr in ("socket_connect_timeout", "socket_read_timeout"):
            current = getattr(plugin, attr, None)
            if isinstance(current, int | float) and current > timeout:
                with contextlib.suppress(Exception):
                    setattr(plugin, attr, timeout)
    if scheme not in MAIL_SCHEMES:
        smtp_host = ""
    return Target(TargetInfo(redacted, scheme, smtp_host), sender)


_LOCAL = frozenset({"localhost", "localhost.localdomain", "::1", "ip6-localhost"})


def check_targets(
    urls: Sequence[str],
    config_file: str | Path | None,
    *,
    hostname: str | None = None,
    config_factory: Callable[[], Any] = apprise.AppriseConfig,
) -> list[str]:
    """Warnings about the notification targets, for the config check.

    Reads ``config_file`` if given. Warns when there is no usable target, about
    each unusable one, and when every target is e-mail: a page by mail goes
    through Postfix, the very thing the kill switch is about to freeze.
    """
    parsed, problems = parse_targets(urls, config_file, config_factory=config_factory)
    for p in problems:
        log.warning("notify: %s", p)
    warnings = list(problems)
    usable = [t.info for t in parsed if not t.info.error]
    if not usable:
        warnings.append(
            "no notification target: a trip will page nobody "
            "(set [notify] urls or config_file, or pass --notify URL)"
        )
        return warnings
    if all(t.scheme in MAIL_SCHEMES for t in usable):
        names = {hostname if hostname is not None else socket.gethostname()} | _LOCAL
        local = sorted(
            {
                t.smtp_host
                for t in usable
                if t.smtp_host.lower() in names or t.smtp_host.startswith("127.")
            }
        )
        servers = ", ".join(sorted({t.smtp_host for t in usable if t.smtp_host})) or "?"
        why = (
            f"the page would go out through this host's Postfix (SMTP server {', '.join(local)}),"
            " which the kill switch freezes when it trips: it would sit in the queue."
            if local
            else f"if the SMTP server ({servers}) relays through this host, or the mailbox is"
            " here, the page goes through this Postfix, which the kill switch freezes when it"
            " trips."
        )
        warnings.append(
            f"every notification target is e-mail (mailto:// or mailtos://): {why} Add a target"
            " that does not go through Postfix (ntfy://, gotify://, a json:// webhook, ...)."
        )
    return warnings
