"""The fleet's shared windows in Redis: one Lua script per batch, so each batch is atomic.

Per rule and group (:func:`watcher.core.fleet.store_key`), Redis holds:

* ``<prefix>:z:<host>``: a sorted set per host, members the counted lines'
  identities, scores their log times (microseconds: exact in a double);
* ``<prefix>:h``: a hash, host -> the latest log time it reported.

The script adds the batch's members (``ZADD NX``: a member already there adds
nothing), moves the host's latest time, then for every host of the group
trims what is older than two windows before the group's latest time (the
second window is slack for a host whose log is behind), and returns each
host's count in ``(latest - window, latest]``. Keys also expire (``ttl``) once
no host writes to them. The client is redis-py (the store rspamd uses for
shared rate-limit counters across scanners), with its timeouts set: a slow
Redis is an error here, never a wait in the pipeline (that runs in its own
thread, :mod:`watcher.fleet.sharer`).
"""

from __future__ import annotations

import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import redis

from watcher.core.fleet import Batch, FleetCount, combine, store_key
from watcher.core.fleetlatch import HostState
from watcher.core.settings import FleetSettings

# KEYS: one prefix per group. ARGV: host, ttl seconds, then per group: window and its
# matches packed as "time member time member ..." (one argument, not two per match: the
# client encodes each argument in Python, the script splits a string in C). Members are
# hex (watcher.core.fleet.event_id). Returns per group: {latest, host1, count1, ...}.
SCRIPT = """
local host = ARGV[1]
local ttl = tonumber(ARGV[2])
local a = 3
local out = {}
for i, base in ipairs(KEYS) do
  local window = tonumber(ARGV[a])
  local packed = ARGV[a + 1]
  a = a + 2
  local h = base .. ':h'
  if packed ~= '' then
    local z = base .. ':z:' .. host
    local mine = 0
    for ts, member in string.gmatch(packed, '(%d+) (%x+)') do
      redis.call('ZADD', z, 'NX', ts, member)
      local t = tonumber(ts)
      if t > mine then mine = t end
    end
    local before = tonumber(redis.call('HGET', h, host) or '0')
    if mine > before then
      redis.call('HSET', h, host, string.format('%.0f', mine))
    end
    redis.call('EXPIRE', z, ttl)
    redis.call('EXPIRE', h, ttl)
  end
  local hosts = redis.call('HGETALL', h)
  local now = 0
  for k = 2, #hosts, 2 do
    local v = tonumber(hosts[k])
    if v > now then now = v end
  end
  local row = {string.format('%.0f', now)}
  local low = '(' .. string.format('%.0f', now - window)
  local high = string.format('%.0f', now)
  local trim = '(' .. string.format('%.0f', now - 2 * window)
  for k = 1, #hosts, 2 do
    local hz = base .. ':z:' .. hosts[k]
    redis.call('ZREMRANGEBYSCORE', hz, '-inf', trim)
    row[#row + 1] = hosts[k]
    row[#row + 1] = redis.call('ZCOUNT', hz, low, high)
  end
  out[#out + 1] = row
end
return out
"""


class FleetConfigError(ValueError):
    """The ``[fleet]`` settings cannot be used (a password file others can read)."""


def read_password(path: str) -> str:
    """The password in ``path``: refused if group or others may read it, or (as root) if
    another user owns it."""
    p = Path(path)
    try:
        st = p.stat()
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise FleetConfigError(f"fleet.password_file {path}: {exc.strerror or exc}") from None
    if st.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise FleetConfigError(
            f"fleet.password_file {path}: mode {stat.S_IMODE(st.st_mode):o}: others may read"
            " it (chmod 600)"
        )
    if st.st_uid != os.geteuid():
        raise FleetConfigError(f"fleet.password_file {path}: owned by uid {st.st_uid}, not us")
    return text.strip()


def connect(settings: FleetSettings) -> redis.Redis:
    """A client for ``settings.url`` (no I/O yet: redis-py connects on first use)."""
    kwargs: dict[str, Any] = {
        "socket_timeout": settings.timeout_seconds,
        "socket_connect_timeout": settings.timeout_seconds,
        "retry_on_timeout": False,
        "health_check_interval": 0,
    }
    if settings.password_file:
        kwargs["password"] = read_password(settings.password_file)
    client: redis.Redis = redis.Redis.from_url(settings.url, **kwargs)
    return client


class FleetStore:
    """Adds batches to the fleet's windows and reads the hosts' counts back."""

    def __init__(self, client: redis.Redis, fleet: str, host: str, *, ttl: int = 86_400) -> None:
        self.client = client
        self.fleet = fleet
        self.host = host
        self.ttl = ttl
        self._script = client.register_script(SCRIPT)  # no I/O: loaded on first call

    def add(self, batches: Sequence[Batch]) -> list[FleetCount]:
        """One atomic script for the whole batch; raises redis.RedisError (or OSError)."""
        if not batches:
            return []
        keys = [store_key(self.fleet, b.rule, b.key) for b in batches]
        args: list[str | int] = [self.host, self.ttl]
        longest = 0
        for b in batches:
            longest = max(longest, b.window)
            args += [b.window, " ".join(f"{t} {member}" for t, member in b.items)]
        ttl = max(self.ttl, 2 * longest // 1_000_000 + 60)
        args[1] = ttl
        rows = self._script(keys=keys, args=args)
        out: list[FleetCount] = []
        for b, row in zip(batches, rows, strict=True):
            now = int(_text(row[0]))
            pairs = [(_text(row[i]), int(row[i + 1])) for i in range(1, len(row) - 1, 2)]
            out.append(FleetCount(b.rule, b.key, now, combine(pairs)))
        return out

    @property
    def hosts_key(self) -> str:
        return f"stormwatch:{self.fleet}:hosts"

    def publish(self, state: HostState) -> None:
        """This host's latch and lag, for the others and ``stormwatch fleet status``."""
        self.client.hset(self.hosts_key, self.host, state.to_json())

    def hosts(self) -> tuple[list[HostState], list[str]]:
        """Every host's last state, and the entries that could not be read (named)."""
        raw: dict[Any, Any] = self.client.hgetall(self.hosts_key)
        states, bad = [], []
        for host, text in sorted(raw.items()):
            try:
                states.append(HostState.from_json(_text(host), _text(text)))
            except ValueError as exc:
                bad.append(f"{_text(host)}: {exc}")
        return states, bad

    @property
    def rearm_key(self) -> str:
        return f"stormwatch:{self.fleet}:rearm"

    def request_rearm(self, targets: dict[str, str]) -> None:
        """Ask these hosts to re-arm (host -> the incident it is to re-arm)."""
        for host, incident in targets.items():
            self.client.hset(self.rearm_key, host, incident)

    def requested(self) -> str:
        """The incident this host is asked to re-arm ("" if none)."""
        value = self.client.hget(self.rearm_key, self.host)
        return _text(value) if value is not None else ""

    def done_rearm(self, incident: str) -> None:
        """The request for ``incident`` is dealt with (a newer one is kept)."""
        if self.requested() == incident:
            self.client.hdel(self.rearm_key, self.host)

    def close(self) -> None:
        self.client.close()


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
