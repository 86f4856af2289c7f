"""Delivering broadcasts: durable, paced by each channel's Gate, resumed after a crash.

One run per broadcast. Its pump is the only task that writes the broadcast's rows: it claims a few
recipients at a time ('queued' → 'sending', one transaction), starts a send for each (at most
`concurrency` in flight, through Outbound.attempt at BROADCAST priority, so replies go first), and
settles the outcomes in batches. At most `in_flight_bound` rows are 'sending' at any moment: a crash
leaves exactly those, which the next start counts as 'uncertain' (delivered or not, nobody knows) and,
unless configured otherwise, does not send again.

Outcomes (DESIGN.md §4): sent; blocked (403, chat not found, user deactivated: the person is marked
unreachable and skipped from then on); failed (another 400, with its reason; or retries used up);
retry later (429: the channel's broadcasts pause for its retry_after; 5xx and timeouts: backoff).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot import render
from bot.channels.base import DeliveryError
from bot.outbound import Outbound, Priority
from handlers.base import Option, Reply, cb
from handlers.broadcast import Quiet, in_quiet, quiet_end, render_broadcast
from handlers.survey_results import poll_results
from messages import Key, Texts
from storage import Store
from storage.broadcasts import Broadcast, Outcome, Target

log = logging.getLogger(__name__)

SETTLE_EVERY = 0.02  # seconds an outcome may wait before it is written
STATUS_EVERY = 0.5  # seconds between looks at whether the broadcast was cancelled
CLAIM_AHEAD = 0.1  # seconds of sending claimed ahead of the gate
STOP_WAIT = 5.0  # seconds a stopping bot waits for messages in flight
UNEDITED_PROGRESS_EVERY = timedelta(seconds=30)  # where a channel cannot edit, each report is a new message


@dataclass(frozen=True)
class EngineSettings:
    concurrency: int = 100  # recipients in flight at once ('sending'), hence uncertain after a crash at most
    resend_uncertain: bool = False  # after a crash, send again to those who may have received it
    max_attempts: int = 4  # per recipient, for 5xx and timeouts
    max_throttled: int = 10  # per recipient, for 429s
    progress_every: float = 3.0  # seconds between edits of the admin's status message
    quiet_hours: Quiet = None
    tz: ZoneInfo = ZoneInfo("Asia/Ho_Chi_Minh")


def backoff(attempts: int) -> float:
    return min(30.0, 2.0 ** (attempts - 1))


class BroadcastEngine:
    def __init__(self, store: Store, outbound: Outbound, clock: Callable[[], datetime],
                 settings: EngineSettings | None = None) -> None:
        self.store = store
        self.outbound = outbound
        self.clock = clock
        self.settings = settings or EngineSettings()
        self.runs: dict[int, Run] = {}
        self.ready = False  # set once the channels are started
        self.stopping = False

    @property
    def in_flight_bound(self) -> int:
        """The most recipients that can be 'sending' at once, hence uncertain after a crash."""
        return self.settings.concurrency

    async def resume(self) -> None:
        """At start: carry on with every broadcast that was running (a crash or a restart)."""
        self.ready = True
        for broadcast in await self.store.broadcasts.running():
            if broadcast.id not in self.runs:
                self._launch(broadcast.id, recovering=True)
        await self.tick(self.clock())  # and what fell due while the bot was down

    async def tick(self, now: datetime) -> None:
        """The scheduler's job: start what is due; let running broadcasts look at their status now."""
        if not self.ready or self.stopping:
            return
        for run in self.runs.values():
            run.poke()
        for broadcast in await self.store.broadcasts.running():  # a run that failed goes on, as after a restart
            if broadcast.id not in self.runs:
                self._launch(broadcast.id, recovering=True)
        quiet = in_quiet(now, self.settings.quiet_hours, self.settings.tz)
        for broadcast in await self.store.broadcasts.due(now):
            if broadcast.id in self.runs or (quiet and not broadcast.quiet_override):
                continue
            key = f"broadcast:{broadcast.id}"
            if not await self.store.schedule.claim(key, now):
                continue
            if await self.store.broadcasts.start(broadcast.id, now):
                self._launch(broadcast.id, recovering=False)
            else:  # cancelled before it started
                await self.store.schedule.complete(key, now)

    def _launch(self, broadcast_id: int, *, recovering: bool) -> None:
        run = Run(self, broadcast_id)
        self.runs[broadcast_id] = run
        run.task = asyncio.create_task(run.main(recovering), name=f"broadcast-{broadcast_id}")

    async def wait(self, broadcast_id: int) -> None:
        """Until the run of `broadcast_id` in this process ends (tests, the benchmark)."""
        run = self.runs.get(broadcast_id)
        if run is not None and run.task is not None:
            await asyncio.shield(run.task)

    def stalled(self, now: float, limit: float) -> list[int]:
        """The broadcasts with recipients waiting but no delivery outcome for `limit` seconds (`now`:
        time.monotonic()), though neither quiet hours nor a 429 held them back: /healthz reports them."""
        paused = max((gate.paused_until for gate in self.outbound.gates.values()), default=0.0)
        return [run.id for run in self.runs.values()
                if run.unfinished and now - max(run.progress, paused) > limit]

    async def stop(self) -> None:
        """An orderly stop: no new sends; what is in flight may finish and is recorded."""
        self.stopping = True
        for run in self.runs.values():
            run.poke()
        tasks = [run.task for run in self.runs.values() if run.task is not None]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)


class Run:
    """One broadcast being delivered in this process."""

    def __init__(self, engine: BroadcastEngine, broadcast_id: int) -> None:
        self.engine = engine
        self.store = engine.store
        self.id = broadcast_id
        self.task: asyncio.Task | None = None
        self.cancelled = False
        self.counts: dict[str, int] = {}
        self.total = 0
        self.quiet_until: datetime | None = None
        self.progress = time.monotonic()  # the latest delivery outcome, or moment it was right to wait
        self._changed = asyncio.Event()
        self._outcomes: list[Outcome] = []
        self._first_outcome = 0.0
        self._unsettled = 0  # claimed, outcome not yet written
        self._waiting: set[asyncio.Task] = set()  # claimed, not yet let through the gate
        self._sending: set[asyncio.Task] = set()
        self._replies: dict[str, Reply] = {}
        self._chunk = 1  # recipients claimed or settled at once
        self._reported_at: datetime | None = None  # the latest status sent as a new message (no edits)
        self._refill = 0  # claim again when no more than this many wait for the gate

    def poke(self) -> None:
        self._changed.set()

    @property
    def unfinished(self) -> bool:
        """Recipients are still to be sent to, or their sends have not ended."""
        return self.counts.get("queued", 0) > 0 or self._unsettled > 0

    async def main(self, recovering: bool) -> None:
        try:
            await self._main(recovering)
        except Exception:
            log.exception("broadcast %s failed; it goes on at the next tick", self.id)
        finally:
            self.engine.runs.pop(self.id, None)

    async def _main(self, recovering: bool) -> None:
        store, engine = self.store, self.engine
        if recovering:
            count = await store.broadcasts.recover(self.id, engine.settings.resend_uncertain)
            if count:
                log.warning("broadcast %s: %d recipient(s) were in flight at a restart: %s", self.id, count,
                            "queued again" if engine.settings.resend_uncertain else "counted as uncertain")
        broadcast = await store.broadcasts.get(self.id)
        if broadcast.status != "running":
            return
        self.total = await store.broadcasts.resolve(self.id)
        self.counts = await store.broadcasts.counts(self.id)
        await self._prepare(broadcast)
        log.info("broadcast %s: %d recipients, %d to go", self.id, self.total, self.counts["queued"])
        reporter = asyncio.create_task(self._report_progress(broadcast))
        began, sent_before = time.monotonic(), self.counts.get("sent", 0)
        try:
            await self._pump(broadcast)
        finally:
            reporter.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reporter
        if engine.stopping and not self.cancelled:
            return  # resumed at the next start
        self.cancelled = self.cancelled or await store.broadcasts.status(self.id) == "cancelled"
        now = engine.clock()
        if self.cancelled:
            await store.broadcasts.cancel(self.id, now)  # anyone queued again by a retry is skipped too
        else:
            await store.broadcasts.finish(self.id, now)
        await store.schedule.complete(f"broadcast:{self.id}", now)
        self.counts = await store.broadcasts.counts(self.id)
        # The run's average; a run shorter than a second counts as one, not as thousands of messages a second.
        rate = (self.counts.get("sent", 0) - sent_before) / max(time.monotonic() - began, 1.0)
        await self._report(broadcast, final=True, rate=rate)
        log.info("broadcast %s %s: %s", self.id, "cancelled" if self.cancelled else "done", self.counts)

    async def _prepare(self, broadcast: Broadcast) -> None:
        photo = await self.store.files.get(broadcast.photo_sha256) if broadcast.photo_sha256 else None
        for language in ("vi", "en"):
            self._replies[language] = await render_broadcast(self.store, broadcast, language, photo)

    # -- the pump: the one writer of this broadcast's rows

    @property
    def _ahead(self) -> int:
        """Recipients claimed ahead of the gate: enough for CLAIM_AHEAD seconds at the fastest rate."""
        rates = [g.broadcast_rate for g in self.engine.outbound.gates.values()]
        concurrency = self.engine.settings.concurrency
        wanted = math.ceil(max(rates) * CLAIM_AHEAD) if rates else concurrency
        return max(1, min(concurrency // 2, wanted))

    async def _pump(self, broadcast: Broadcast) -> None:
        engine, store = self.engine, self.store
        ahead, bound = self._ahead, engine.in_flight_bound
        self.progress = time.monotonic()  # resolving a large audience took its time
        chunk = self._chunk = max(1, ahead // 2)
        self._refill = ahead - chunk
        checked, quiet = -math.inf, False
        while True:
            self._changed.clear()
            now = engine.clock()
            if time.monotonic() - checked >= STATUS_EVERY:
                checked = time.monotonic()
                if await store.broadcasts.status(self.id) == "cancelled":
                    self.cancelled = True
                quiet = not broadcast.quiet_override and in_quiet(now, engine.settings.quiet_hours,
                                                                  engine.settings.tz)
                self.quiet_until = quiet_end(now, engine.settings.quiet_hours, engine.settings.tz) if quiet else None
                if quiet:
                    self.progress = checked
            if self.cancelled or engine.stopping:
                await self._drain()
                return
            room = 0 if quiet else min(ahead - len(self._waiting), bound - self._unsettled + len(self._outcomes))
            claim = room >= chunk or (room > 0 and self._unsettled == len(self._outcomes))
            settle = bool(self._outcomes) and (len(self._outcomes) >= chunk or self._unsettled == len(self._outcomes)
                                               or time.monotonic() - self._first_outcome >= SETTLE_EVERY)
            if claim or settle:
                outcomes, self._outcomes = self._outcomes, []
                targets = await store.broadcasts.step(self.id, outcomes, room if claim else 0, now)
                self._unsettled -= len(outcomes)
                self.counts["queued"] -= len(targets)
                for target in targets:
                    self._unsettled += 1
                    self._waiting.add(asyncio.create_task(self._send(target)))
                if targets or (settle and not claim):
                    continue
            if self._unsettled == 0:
                if quiet:
                    await self._wait(STATUS_EVERY)
                    continue
                queued, due = await store.broadcasts.pending(self.id)
                if queued == 0:
                    return
                delay = (due - engine.clock()).total_seconds() if due else 0.0
                await self._wait(min(max(delay, 0.01), STATUS_EVERY))
                continue
            await self._wait(SETTLE_EVERY if self._outcomes else STATUS_EVERY)

    async def _wait(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._changed.wait()

    async def _settle(self) -> None:
        outcomes, self._outcomes = self._outcomes, []
        await self.store.broadcasts.settle(self.id, outcomes, self.engine.clock())
        self._unsettled -= len(outcomes)

    async def _drain(self) -> None:
        """Cancelled or stopping: recipients not yet let through are given back (cancelled: skipped);
        those in flight finish, for a while, and every outcome is written."""
        for task in list(self._waiting):
            task.cancel()
        pending = list(self._waiting | self._sending)
        if pending:
            _, late = await asyncio.wait(pending, timeout=STOP_WAIT)
            for task in late:  # still in flight: 'sending', so uncertain at the next start
                task.cancel()
        if self._outcomes:
            await self._settle()

    # -- one recipient

    async def _send(self, target: Target) -> None:
        task = asyncio.current_task()
        engine = self.engine
        started = False

        def on_start() -> None:
            nonlocal started
            started = True
            self._waiting.discard(task)
            self._sending.add(task)
            if len(self._waiting) <= self._refill:  # wake the pump only when a batch can be claimed
                self._changed.set()

        channel = engine.outbound.channels.get(target.channel)
        reply = self._replies.get(target.language, self._replies["vi"])
        try:
            if channel is None:
                on_start()
                outcome = Outcome(target.user_id, "skipped", f"no {target.channel} channel")
            else:
                [reply], numbered = render.outgoing([reply], channel.capabilities, Texts(target.language))
                await engine.outbound.attempt(channel, target.chat_id, reply, priority=Priority.BROADCAST,
                                              on_start=on_start)
                if numbered:  # "Góp ý ngay" typed as its number, where the channel has no buttons
                    await self.store.conversations.show(target.channel, target.chat_id, numbered, engine.clock())
                outcome = Outcome(target.user_id, "sent")
        except DeliveryError as err:
            outcome = self._failed(target, err)
        except asyncio.CancelledError:
            if started:
                raise  # in flight when the bot stopped: stays 'sending', uncertain at the next start
            outcome = (Outcome(target.user_id, "skipped", "cancelled") if self.cancelled
                       else Outcome(target.user_id, "queued", "stopped before sending"))
        except Exception as err:  # a bug or an unexpected library error: recorded, never silent
            log.exception("broadcast %s: sending to user %s failed", self.id, target.user_id)
            outcome = Outcome(target.user_id, "failed", f"{type(err).__name__}: {err}"[:200])
        finally:
            self._waiting.discard(task)
            self._sending.discard(task)
        self._record(outcome)

    def _failed(self, target: Target, err: DeliveryError) -> Outcome:
        if err.kind == "gone":
            return Outcome(target.user_id, "blocked", err.reason[:200])
        if err.kind == "permanent":
            return Outcome(target.user_id, "failed", err.reason[:200])
        limit = self.engine.settings.max_throttled if err.retry_after else self.engine.settings.max_attempts
        if target.attempts >= limit:
            return Outcome(target.user_id, "failed", f"{err.reason} ({target.attempts} attempts)"[:200])
        wait = err.retry_after if err.retry_after else backoff(target.attempts)
        return Outcome(target.user_id, "queued", err.reason[:200], self.engine.clock() + timedelta(seconds=wait))

    def _record(self, outcome: Outcome) -> None:
        self.progress = time.monotonic()
        if not self._outcomes:
            self._first_outcome = time.monotonic()
        self._outcomes.append(outcome)
        self.counts[outcome.status] = self.counts.get(outcome.status, 0) + 1
        if len(self._outcomes) >= self._chunk or len(self._outcomes) == self._unsettled:
            self._changed.set()  # otherwise the pump settles them within SETTLE_EVERY

    # -- the admin's status message

    async def _report_progress(self, broadcast: Broadcast) -> None:
        await self._report(broadcast, final=False)
        last_sent, last_at = self.counts.get("sent", 0), time.monotonic()
        while True:
            await asyncio.sleep(self.engine.settings.progress_every)
            now = time.monotonic()
            rate = (self.counts.get("sent", 0) - last_sent) / (now - last_at)
            last_sent, last_at = self.counts.get("sent", 0), now
            await self._report(broadcast, final=False, rate=rate)

    async def _report(self, broadcast: Broadcast, *, final: bool, rate: float = 0.0) -> None:
        if broadcast.created_by is None:
            return
        admin = await self.store.users.get(broadcast.created_by)
        channel = self.engine.outbound.channels.get(admin.channel) if admin else None
        if channel is None or not admin.chat_id or not admin.reachable:
            return
        t = Texts(admin.language, staff=True)
        text = progress_text(t, self.id, self.total, self.counts, rate, final=final, cancelled=self.cancelled,
                             quiet_until=self.quiet_until, now=self.engine.clock().astimezone(self.engine.settings.tz))
        if final and broadcast.survey_id:  # a quick poll's answers so far
            text += await poll_results(self.store, broadcast.survey_id, t)
        capabilities, outbound = channel.capabilities, self.engine.outbound
        # Without buttons, stopping is /huythongbao typed: a number kept for a stop button would take the place of
        # the options the admin last saw.
        buttons = () if final or not capabilities.buttons else (
            (Option(t("broadcast.stop_button"), cb("bcstop", self.id)),),)
        if final and broadcast.survey_id and capabilities.buttons:  # answers keep coming: read them live
            buttons = ((Option(t("survey_results.live"), cb("svr", broadcast.survey_id)),),)
        [reply], _ = render.outgoing([Reply(text, buttons)], capabilities, t)
        try:
            if not capabilities.edits:  # each report a new message: few enough not to flood the admin's chat
                now = self.engine.clock()
                if not final and self._reported_at is not None and now - self._reported_at < UNEDITED_PROGRESS_EVERY:
                    return
                self._reported_at = now
                await outbound.send(channel, admin.chat_id, reply, None, Priority.SCHEDULED)
                return
            ref = (await self.store.broadcasts.get(self.id)).report_ref
            if not final:  # the status message: edited in place
                sent = await outbound.send(channel, admin.chat_id, reply, ref, Priority.SCHEDULED)
                if ref is None and sent:
                    await self.store.broadcasts.set_report(self.id, admin.channel, admin.chat_id, sent)
            elif ref is not None:  # it points to the report below, and its stop button goes
                over = t("broadcast.progress_over", id=self.id)
                await outbound.send(channel, admin.chat_id, Reply(over), ref, Priority.SCHEDULED)
            if final:  # the report itself, once, as a new message: the admin is notified
                await outbound.send(channel, admin.chat_id, reply, None, Priority.SCHEDULED)
        except Exception:  # the report must never stop the broadcast
            log.warning("broadcast %s: progress message not delivered", self.id, exc_info=True)


def progress_text(t: Texts, broadcast_id: int, total: int, counts: dict[str, int], rate: float, *,
                  final: bool, cancelled: bool, quiet_until: datetime | None, now: datetime) -> str:
    done = sum(counts.get(s, 0) for s in ("sent", "blocked", "failed", "uncertain", "skipped"))
    left = max(0, total - done)
    if final:
        state = Key("broadcast.state_cancelled" if cancelled else "broadcast.state_done")
    elif quiet_until is not None:
        state = t("broadcast.state_quiet", until=quiet_until.astimezone(now.tzinfo).strftime("%d/%m/%Y %H:%M"))
    else:
        state = Key("broadcast.state_running")
    eta = t("broadcast.eta", minutes=math.ceil(left / rate / 60)) if rate > 0 and left and not final else ""
    return t("broadcast.progress", id=broadcast_id, state=state, sent=counts.get("sent", 0), total=total,
             rate=f"{rate:.0f}", eta=eta, blocked=counts.get("blocked", 0), failed=counts.get("failed", 0),
             uncertain=counts.get("uncertain", 0), skipped=counts.get("skipped", 0), at=now.strftime("%H:%M:%S"))
