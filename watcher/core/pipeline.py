"""parse -> correlate -> detect -> decide, and what it saw. Pure.

The same pipeline serves replay (fed from a finished file) and live runs
(fed from a tailer); what differs is only the responders the resulting
actions are handed to.
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from watcher.core.correlate import Correlator, Fact
from watcher.core.decide import Action, Decider
from watcher.core.detect import Detector, Hit, recipient_domain
from watcher.core.events import (
    AnyEvent,
    BounceNotice,
    Delivery,
    ForwardingLoop,
    LogLoss,
    QueueSender,
    Removed,
    Submitted,
)
from watcher.core.fleet import FleetCount, Shares
from watcher.core.headers import FormatChange, SourceHeaders, block_kind
from watcher.core.origin import describe, parse_origin, queued_as
from watcher.core.parse import QID_RE, Parser
from watcher.core.rules import ORIGIN_GROUPS, Rule

if TYPE_CHECKING:
    from watcher.core.settings import Settings
from watcher.core.ladder import Ladder
from watcher.core.offender import with_evidence
from watcher.core.scanner import DELIVERY, HOP, ORIGIN, REMOVED, SENDER, Scanned, scan_block


@dataclass(frozen=True, slots=True)
class Where:
    """A line's place: which source, which line (1-based), and its text."""

    source: str
    lineno: int
    text: str
    time: int


@dataclass(frozen=True, slots=True)
class Evidence:
    """A counted line, with what the queue-ID join knew: the envelope sender ("?" when
    unknown) and the destination domain (for a bounce notice: where the bounce goes)."""

    where: Where
    qid: str
    domain: str
    sender: str
    origin: str = ""  # where the message came from (watcher.core.origin.describe), if counted
    key: str = ""  # the rule's group key for it


@dataclass(slots=True)
class RuleSummary:
    """Everything one rule saw; the report is built from these."""

    rule: Rule
    matches: int = 0
    first: Where | None = None
    last: Where | None = None
    warned: Where | None = None
    tripped: Where | None = None
    count_at_trip: int = 0
    after_switch: int = 0  # matches after the switch tripped (any rule): kept in by a live run
    by_domain: Counter[str] = field(default_factory=Counter)
    by_sender: Counter[str] = field(default_factory=Counter)
    # per origin (watcher.core.origin.describe), for rules that count or group by it
    by_origin: Counter[str] = field(default_factory=Counter)
    transports: Counter[str] = field(default_factory=Counter)
    evidence: deque[Evidence] = field(default_factory=deque)  # the last evidence_cap lines
    evidence_dropped: int = 0  # older lines no longer kept


@dataclass(slots=True)
class LossSummary:
    events: int = 0
    lost: int = 0
    first: Where | None = None
    last: Where | None = None


@dataclass(slots=True)
class StepSummary:
    """Log time stepping back by more than the shortest rule window: a line dated
    ahead, then the true time again. Each such step re-bases the windows
    (:class:`watcher.core.window.SlidingCounter`); ``largest`` is in microseconds."""

    back: int = 0
    largest: int = 0
    first: Where | None = None
    last: Where | None = None


ActionSink = Callable[[list[Action], Where], None]
SharedSink = Callable[[Hit, Where], None]  # a shared rule's match, to add to the fleet's window
LossSink = Callable[[LogLoss, Where], None]
StepSink = Callable[[int, Where], None]  # how far back (microseconds), and the line
FormatSink = Callable[[FormatChange], None]  # a source's header format, found or changed
BlindSink = Callable[[SourceHeaders], None]  # a source's Postfix lines: none readable


class Pipeline:
    """Holds the stages and the running summary.

    ``on_actions`` is called with the actions decided on a line, and that
    line; the replay hands them to the dry-run responder, a live run to the
    real ones.
    """

    def __init__(
        self,
        parser: Parser,
        correlator: Correlator,
        detector: Detector,
        decider: Decider,
        *,
        on_actions: ActionSink | None = None,
        on_loss: LossSink | None = None,
        on_time_step: StepSink | None = None,
        evidence_cap: int = 5000,
        on_format: FormatSink | None = None,
        on_blind: BlindSink | None = None,
    ) -> None:
        self.parser = parser
        self.correlator = correlator
        self.detector = detector
        self.decider = decider
        self.on_actions = on_actions
        self.on_loss = on_loss
        self.on_time_step = on_time_step
        self.on_format = on_format
        self.on_blind = on_blind
        self.headers: dict[str, SourceHeaders] = {}  # per source: its header format
        self.evidence_cap = evidence_cap
        self.summaries = {r.name: self._summary(r) for r in detector.rules}
        self.actions: list[tuple[Action, Where]] = []
        self.loss = LossSummary()
        self.time_steps = StepSummary()
        self._clock: int | None = None  # the latest time of an event the rules may see
        self.events = 0
        self.first_time: int | None = None
        self.last_time: int | None = None
        self.switch_tripped: Where | None = None
        self.ladder = Ladder(detector.content_filters)
        # the fleet (watcher.core.fleet): set by the runtime when [fleet] is configured
        self.on_shared: SharedSink | None = None
        self.fleet_shares: dict[str, Shares] = {}  # rule -> the hosts' shares it tripped on
        self._fleet_last: dict[tuple[str, str], tuple[Hit, Where]] = {}

    @classmethod
    def build(
        cls,
        rules: Sequence[Rule],
        parser: Parser,
        *,
        content_filters: Iterable[str] | None = None,
        local_domains: Iterable[str] = (),
        max_open: int = 50_000,
        ttl_seconds: float = 86_400.0,
        on_actions: ActionSink | None = None,
        on_loss: LossSink | None = None,
        on_time_step: StepSink | None = None,
        on_format: FormatSink | None = None,
        on_blind: BlindSink | None = None,
    ) -> Pipeline:
        detector = (
            Detector(rules, local_domains=local_domains)
            if content_filters is None
            else Detector(rules, content_filters=content_filters, local_domains=local_domains)
        )
        return cls(
            parser,
            Correlator(max_open=max_open, ttl_seconds=ttl_seconds),
            detector,
            Decider(rules),
            on_actions=on_actions,
            on_loss=on_loss,
            on_time_step=on_time_step,
            on_format=on_format,
            on_blind=on_blind,
        )

    @classmethod
    def from_settings(
        cls,
        rules: Sequence[Rule],
        parser: Parser,
        settings: Settings,
        *,
        on_actions: ActionSink | None = None,
        on_loss: LossSink | None = None,
        on_time_step: StepSink | None = None,
        on_format: FormatSink | None = None,
        on_blind: BlindSink | None = None,
    ) -> Pipeline:
        """:meth:`build` with the content filters and join limits of the settings."""
        return cls.build(
            rules,
            parser,
            content_filters=settings.content_filters,
            local_domains=settings.local_domains,
            max_open=settings.correlate.max_open,
            ttl_seconds=settings.correlate.ttl_seconds,
            on_actions=on_actions,
            on_loss=on_loss,
            on_time_step=on_time_step,
            on_format=on_format,
            on_blind=on_blind,
        )

    def _summary(self, rule: Rule) -> RuleSummary:
        return RuleSummary(rule, evidence=deque(maxlen=self.evidence_cap))

    def replace_rules(
        self,
        rules: Sequence[Rule],
        content_filters: Iterable[str],
        local_domains: Iterable[str] = (),
    ) -> None:
        """Swap in reloaded rules; windows, latch and summaries of kept rules survive."""
        detector = Detector(rules, content_filters=content_filters, local_domains=local_domains)
        detector.adopt_windows(self.detector)
        self.detector = detector
        self.decider.replace_rules(rules)
        self.summaries = {
            r.name: self.summaries.get(r.name) or self._summary(r) for r in detector.rules
        }
        for r in detector.rules:
            self.summaries[r.name].rule = r

    def run(self, lines: Iterable[str], source: str, start: int = 1) -> int:
        """Feed lines (newlines already stripped); return the last line number.

        Lines are batched into blocks for :meth:`run_text`: there is one way
        through the pipeline, whatever the source.
        """
        n = start
        batch: list[str] = []
        for line in lines:
            batch.append(line)
            if len(batch) >= 4096:
                n += self.run_text("\n".join(batch) + "\n", source, n)
                batch.clear()
        if batch:
            n += self.run_text("\n".join(batch) + "\n", source, n)
        return n - 1

    def run_text(self, text: str, source: str, start: int = 1) -> int:
        """Feed a block of whole lines; return how many lines it held."""
        kind, at = block_kind(text)
        if kind is None:  # not in a format the fast path reads: line by line
            text = self.rewrite_headers(text, source, start)
        elif kind:
            self.note_format(source, kind, start + at)
        scanned = scan_block(text, self.detector.collapsible, self.detector.origin_wants)
        self.apply(scanned, source, start, lambda pos: line_at(text, pos))
        return scanned[0]

    def headers_of(self, source: str) -> SourceHeaders:
        h = self.headers.get(source)
        if h is None:
            h = self.headers[source] = SourceHeaders(source)
        return h

    def note_format(self, source: str, kind: str, lineno: int) -> None:
        """Readable Postfix lines in ``kind`` (a fast format, or the journal's fields)."""
        change = self.headers_of(source).saw(kind, lineno)
        if change is not None and self.on_format is not None:
            self.on_format(change)

    def rewrite_headers(self, text: str, source: str, start: int) -> str:
        """A block in a rare (or unknown) header format, in the fast path's form; its
        unreadable Postfix-looking lines are counted, and a source gone blind is said."""
        h = self.headers_of(source)
        text, changes, missed = h.rewrite(text, start)
        stats = self.parser.stats
        for bad in missed:
            stats.unreadable += 1
            stats.unreadable_samples.append((bad.reason, bad.text))
        if self.on_format is not None:
            for change in changes:
                self.on_format(change)
        if h.blind and not h.blind_reported:
            h.blind_reported = True
            if self.on_blind is not None:
                self.on_blind(h)
        return text

    def apply(
        self,
        scanned: Scanned,
        source: str,
        start: int,
        fetch: Callable[[int], tuple[str, int]],
    ) -> None:
        """Run one scanned block (:func:`watcher.scanner.scan_block`) through the stages.

        The hot loop. Queue-ID bookkeeping is done without building events,
        and only the lines some rule could count are parsed in full (and
        counted as unparsed if they are malformed). ``fetch(offset)`` gives
        ``(line, lineno in block)`` for a delivery the scanner left out.
        Queue IDs are not validated here: a malformed one is only ever a
        key, and the parser checks any line a rule could count.
        """
        n_lines, events, collapsed, first_ts, last_ts = scanned
        parser = self.parser
        parser.stats.lines += n_lines
        self.events += collapsed
        # the span's ends in log order: the pass of a repeated DST hour is read from the
        # time before (watcher.core.parse.Parser._local)
        t = parser.timestamp(first_ts) if first_ts else None
        if t is not None:
            self._saw(t)
        corr = self.correlator
        forget, note_sender, sender_of = corr.forget, corr.note_sender, corr.sender_of
        note_origin, origin_of = corr.note_origin, corr.origin_of
        wants_origin = self.detector.wants_origin
        by_origin = bool(self.detector.origin_wants.kinds)
        timestamp = parser.timestamp
        known_time = parser.cached_time  # a dict lookup: most timestamps repeat
        want_null, want_other, want_unknown = self.detector.wants_for_senders()
        wants_loops = self.detector.wants_loops
        wants = self.detector.wants_delivery
        parse = parser.parse_known
        feed = self.feed_event
        count = 0
        for ev in events:
            kind = ev[0]
            if kind == REMOVED:
                ts: str = ev[2]  # type: ignore[assignment]  # the scanner's tuples are untyped
                if not ts or known_time(ts) is not None or timestamp(ts) is not None:
                    forget(ev[1])  # type: ignore[arg-type]
                    count += 1
                    continue
                line, lineno = fetch(ev[3])  # type: ignore[arg-type]  # the parser counts it
            elif kind == SENDER:
                ts = ev[3]  # type: ignore[assignment]
                time = known_time(ts) or timestamp(ts)
                if time is not None:
                    note_sender(ev[1], ev[2], time)  # type: ignore[arg-type]
                    count += 1
                    continue
                # a bad timestamp: the per-line parser counts it
                line, lineno = fetch(ev[4])  # type: ignore[arg-type]
            elif kind == DELIVERY:
                sender = sender_of(ev[1])  # type: ignore[arg-type]
                wanted = (
                    want_null if sender == "" else want_unknown if sender is None else want_other
                )
                if (
                    not wanted
                    and not (wants_loops and ev[5] and wants(sender, True))
                    # the scanner gives the line of every delivery an origin rule may count
                    and not (by_origin and ev[3] is not None and wants_origin(origin_of(ev[1])))  # type: ignore[arg-type]
                ):
                    count += 1
                    continue
                if ev[3] is None:
                    line, lineno = fetch(ev[2])  # type: ignore[arg-type]
                else:
                    line, lineno = ev[3], ev[4]  # type: ignore[assignment]
            elif kind == HOP:
                corr.inherit(ev[2], ev[1])  # type: ignore[arg-type]
                continue
            elif kind == ORIGIN:
                ts = ev[3]  # type: ignore[assignment]
                time = known_time(ts) or timestamp(ts)
                origin = parse_origin(ev[2])  # type: ignore[arg-type]
                if time is not None and origin is not None:
                    note_origin(ev[1], origin, time)  # type: ignore[arg-type]
                    count += 1
                    continue
                line, lineno = fetch(ev[4])  # type: ignore[arg-type]  # the parser counts it
            else:
                lineno, line = ev[1], ev[2]  # type: ignore[assignment]
            parsed = parse(line)
            if parsed is not None:
                self.events += count
                count = 0
                feed(parsed, source, start + lineno, line)
        self.events += count
        t = parser.timestamp(last_ts) if last_ts else None
        if t is not None:
            self._saw(t)

    def feed_event(self, ev: AnyEvent, source: str, lineno: int, line: str) -> None:
        """One parsed event (from a block, or a journal record) through the stages."""
        if isinstance(ev, Submitted) and ev.origin.kind not in self.detector.origin_wants.kinds:
            return  # an origin no rule needs: left out, as the block scanner leaves it out
        self.events += 1
        corr = self.correlator
        if isinstance(ev, Removed):
            corr.forget(ev.qid)
            return
        if isinstance(ev, QueueSender):
            corr.note_sender(ev.qid, ev.sender, ev.time)
            self._saw(ev.time)
            return
        if isinstance(ev, Submitted):
            corr.note_origin(ev.qid, ev.origin, ev.time)
            return
        if isinstance(ev, Delivery) and ev.status == "sent" and self._hop(ev):
            child = queued_as(ev.detail)
            if QID_RE.fullmatch(child) is not None:
                corr.inherit(child, ev.qid)
        if isinstance(ev, Delivery) and not self.detector.wants_delivery(
            corr.sender_of(ev.qid), isinstance(ev, ForwardingLoop), corr.origin_of(ev.qid)
        ):
            return
        self._saw(ev.time)
        clock = self._clock
        if clock is None or ev.time >= clock:
            self._clock = ev.time
        elif clock - ev.time > self.detector.shortest_window:
            self._stepped(clock - ev.time, Where(source, lineno, line, ev.time))
        if isinstance(ev, LogLoss):
            self._loss(ev, Where(source, lineno, line, ev.time))
            return
        fact = corr.feed(ev)
        if fact is None:
            return
        hits = self.detector.feed(fact)
        where: Where | None = None
        if hits:
            where = Where(source, lineno, line, ev.time)
            for hit in hits:
                self._hit(hit, where)
                if hit.rule.shared and self.on_shared is not None:
                    self._fleet_last[(hit.rule.name, hit.key)] = (hit, where)
                    self.on_shared(hit, where)
        if self.ladder.watching:
            step = self.ladder.on_fact(fact)
            if step is not None:
                self.decider.mark_done(step.kind)
                self._act([step], where or Where(source, lineno, line, ev.time))

    def _hop(self, ev: Delivery) -> bool:
        """Is ``ev`` a hand-off to a content filter the origin hops across? (The block
        scanner's test: the relay as ``[ip]:port,`` is one of ``hop_relays``.)"""
        hops = self.detector.origin_wants.hop_relays
        return bool(hops) and f"[{ev.relay_ip}]:{ev.relay_port}," in hops

    def _saw(self, t: int) -> None:
        if self.first_time is None or t < self.first_time:
            self.first_time = t
        if self.last_time is None or t > self.last_time:
            self.last_time = t

    def _stepped(self, step: int, where: Where) -> None:
        """Time went back beyond a window: the windows re-base as they see it; say so."""
        self._clock = where.time
        self.last_time = where.time  # status and the rules' window counts follow the re-base
        steps = self.time_steps
        steps.back += 1
        steps.largest = max(steps.largest, step)
        steps.first = steps.first or where
        steps.last = where
        if self.on_time_step is not None:
            self.on_time_step(step, where)

    def _loss(self, ev: LogLoss, where: Where) -> None:
        loss = self.loss
        loss.events += 1
        loss.lost += ev.lost
        if loss.first is None:
            loss.first = where
        loss.last = where
        if self.on_loss is not None:
            self.on_loss(ev, where)

    def _hit(self, hit: Hit, where: Where) -> None:
        s = self.summaries[hit.rule.name]
        s.matches += 1
        if s.first is None:
            s.first = where
        s.last = where
        fact = hit.fact
        domain = _destination(fact)
        sender = fact.sender if fact.sender is not None else "?"
        s.by_domain[domain] += 1
        s.by_sender[sender] += 1
        origin = ""
        if hit.rule.match.origin != "any" or hit.rule.window.group_by in ORIGIN_GROUPS:
            origin = describe(fact.origin)
            s.by_origin[origin] += 1
        if isinstance(fact.event, Delivery):
            s.transports[fact.event.transport] += 1
        if len(s.evidence) == s.evidence.maxlen:
            s.evidence_dropped += 1
        s.evidence.append(Evidence(where, fact.event.qid, domain, sender, origin, hit.key))
        if self.switch_tripped is not None:
            s.after_switch += 1
        self._decide(s, hit, where)

    def fleet_count(self, count: FleetCount) -> list[Action]:
        """The fleet's window of a shared rule's group: decide on its total as on a local
        count (warn, trip), at this host's last line of that group; the actions name the
        hosts' shares (:attr:`fleet_shares`)."""
        last = self._fleet_last.get(count.group)
        s = self.summaries.get(count.rule)
        if last is None or s is None or s.rule.name != last[0].rule.name:
            return []
        hit, where = last
        fleet_hit = Hit(s.rule, hit.fact, count.total, count.key)
        return self._decide(s, fleet_hit, where, count.shares)

    def trip_for_fleet(self, rule: str, offender: str, where: Where) -> list[Action]:
        """Another host tripped ``rule``: trip it here too (its actions, at ``where``:
        a line naming that host), if this host has the rule and it has not tripped."""
        s = self.summaries.get(rule)
        if s is None:
            return []
        actions = [
            with_evidence(a, self.correlator, s.evidence) if a.offender else a
            for a in self.decider.trip_for_fleet(s.rule, where.time, offender)
        ]
        if actions:
            s.tripped = where
            if self.switch_tripped is None:
                self.switch_tripped = where
            self._act(actions, where)
        return actions

    def _decide(
        self, s: RuleSummary, hit: Hit, where: Where, shares: Shares | None = None
    ) -> list[Action]:
        """The decider's verdict on a count (local, or the fleet's with its ``shares``)."""
        if shares is None:
            self.fleet_shares.pop(hit.rule.name, None)
        else:
            self.fleet_shares[hit.rule.name] = shares
        was_tripped = self.decider.is_tripped(hit.rule.name)
        actions = self.decider.on_hit(hit)
        if actions:  # rare: most hits decide nothing
            actions = [
                with_evidence(a, self.correlator, s.evidence) if a.offender else a for a in actions
            ]
        if not was_tripped and self.decider.is_tripped(hit.rule.name):
            s.tripped = where
            s.count_at_trip = hit.count
            if self.switch_tripped is None:
                self.switch_tripped = where
        elif actions:
            s.warned = s.warned or where
        if actions:
            if any(a.kind == "freeze-postfix" for a in actions):
                self.ladder.frozen()  # the ladder starts when the kill switch says step 1 took
            self._act(actions, where)  # effect: in a replay, what follows the trip line is
            # what happened without stormwatch, no evidence that step 1 would have failed
        return actions

    def _act(self, actions: list[Action], where: Where) -> None:
        self.actions.extend((a, where) for a in actions)
        if self.on_actions is not None:
            self.on_actions(actions, where)

    def rearm(self) -> None:
        """A human re-armed the switch: latch, warnings and the ladder start afresh."""
        self.decider.rearm()
        self.ladder.reset()


def line_at(text: str, pos: int) -> tuple[str, int]:
    """The line of ``text`` that holds ``pos``, and its number (0-based)."""
    start = text.rfind("\n", 0, pos) + 1
    end = text.find("\n", pos)
    return text[start : end if end >= 0 else len(text)], text.count("\n", 0, start)


def _destination(fact: Fact) -> str:
    """Where the counted message is going: a delivery's recipient domain;
    for a bounce notice, the original sender's domain (the bounce's target)."""
    ev = fact.event
    if isinstance(ev, BounceNotice):
        return recipient_domain(fact.sender or "") or "?"
    return recipient_domain(ev.recipient) or "?"
