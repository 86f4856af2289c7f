"""The single wiring point: production, the web sandbox, tests and benchmarks build the bot here,
with fakes injected where the outside world is."""

from __future__ import annotations

import asyncio
import gc
import logging
import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import handlers
from bot.backup import DailyBackup
from bot.broadcasts import BroadcastEngine, EngineSettings
from bot.channels.telegram import TelegramChannel
from bot.channels.web import WebChannel
from bot.channels.zalo import ZaloChannel
from bot.config import Config
from bot.demo import seed_demo
from bot.file_links import FileLinks, link_secret
from bot.health import Health
from bot.intake import Intake
from bot.jobs import CadreSchedule
from bot.outbound import Gate, Outbound
from bot.retention import Retention
from bot.router import Router
from bot.scheduler import Scheduler
from bot.shared_pace import SharedPace
from bot.survey_invites import SurveyReminders
from bot.web_upkeep import WebUpkeep
from handlers.features import commands_for
from messages import DEFAULT_LANGUAGE, LANGUAGES, Texts
from storage import Store
from storage.claims import Claims
from storage.db import DatabaseUnavailable
from storage.files import DatabaseFileStore, local_dir
from storage.notify import TOPIC_LIST, LocalSignals
from storage.web_files import WebFileRepo, WebFolder

if TYPE_CHECKING:
    from storage.send_gate import SendGateRepo

log = logging.getLogger(__name__)
DRAIN_SECONDS = 5.0  # at a stop, how long updates being handled may take to finish


def utc_now() -> datetime:
    return datetime.now(UTC)


class PollerTaken(Exception):
    """Another worker long-polls this channel on the same database: a platform serves one poller at a time."""

    def __init__(self, channel: str) -> None:
        super().__init__(channel)
        self.channel = channel


class App:
    def __init__(self, config: Config, store: Store, clock: Callable[[], datetime]) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.outbound = Outbound(store, clock)
        # Several workers may share a PostgreSQL database: they signal each other (storage/notify.py) and one of them
        # leads the scheduler (bot/scheduler.py). SQLite's one process is the whole deployment.
        self.signals = LocalSignals()
        leadership = None
        if store.db.dialect.name == "postgresql":
            from storage.leader import Leadership  # psycopg is loaded only where PostgreSQL is used
            from storage.pg_notify import PostgresSignals

            self.signals = PostgresSignals(store.db, config.worker_name)
            leadership = Leadership(store.db.path, config.worker_name)
        # A topic renamed, hidden or added on one worker is read again by all of them.
        store.topics.announce = lambda: self.signals.notify(TOPIC_LIST, "")
        self.signals.listen(TOPIC_LIST, lambda _: store.topics.forget())
        self.router = Router(store, config.handler_settings(), handlers.registry, self.outbound, clock)
        self.telegram: TelegramChannel | None = None
        self.zalo: ZaloChannel | None = None
        # Files sent where a channel takes only URLs, served at /f/<token> (bot/server.py).
        secret = config.file_secret.get_secret_value() if config.file_secret else None
        self.links = FileLinks(store.files, config.web_url, link_secret(secret, config.store_path), clock)
        self.router.links = self.links
        # The web chat is always on; only in demo mode may staff act through it.
        uploads = local_dir(config.store_path) / "uploads"
        shared = self.signals if leadership is not None else None  # each page hears what any worker wrote to it

        def files(channel: str) -> WebFolder | WebFileRepo:
            """Where the web chat keeps its files: in the database when another worker may be asked for one."""
            if isinstance(store.files, DatabaseFileStore):
                return WebFileRepo(store.db, store.files, channel)
            return WebFolder(uploads / channel)

        self.web = WebChannel(config.web_url, files("web"), store.web_messages, clock, staff=config.demo,
                              signals=shared)
        self.outbound.add(self.web)
        # In the demo, the web chat as on Zalo (bot/webchat.py): anyone can try the text-only experience.
        self.webtext: WebChannel | None = None
        if config.demo:
            self.webtext = WebChannel(config.web_url, files("webtext"), store.web_messages, clock, staff=True,
                                      text_only=True, signals=shared)
            self.outbound.add(self.webtext)
        self.scheduler = Scheduler(clock, config.tick_seconds, leadership=leadership, signals=self.signals)
        # Digests, case reminders and escalation, task announcements and reminders (bot/jobs.py).
        self.cadre_schedule = CadreSchedule(store, self.router, self.router.settings, config.escalate_days)
        self.cadre_schedule.register(self.scheduler)
        # Broadcasts: due ones start on the tick (or at once, when a handler wakes the job).
        self.broadcasts = BroadcastEngine(store, self.outbound, clock, EngineSettings(
            concurrency=config.broadcast_concurrency, resend_uncertain=config.broadcast_resend_uncertain,
            quiet_hours=config.quiet, tz=self.router.settings.tz))
        self.scheduler.every_tick("broadcasts", self.broadcasts.tick)
        SurveyReminders(store, config.quiet, self.router.settings.tz).register(self.scheduler)
        self.router.wake = self.scheduler.wake
        # What a start does once for the whole deployment: on several workers, the leader does it on taking over.
        self.scheduler.on_leading(self.router.resend_notices)
        self.scheduler.on_leading(self.broadcasts.resume)
        self.health = Health(store.db, self.outbound, self.scheduler, self.broadcasts)
        # Every update is journalled before the platform is told it arrived (bot/intake.py). On PostgreSQL other
        # workers may share the database: each chat's updates are then handled by one worker at a time.
        self.claims = Claims(store.db) if store.db.dialect.name == "postgresql" else None
        self.intake = Intake(store, self.router, clock, self.claims)
        if self.intake.drainers is not None:  # chats that a worker which died was handling: any worker takes them
            self.scheduler.every_tick("stranded chats", self.intake.drainers.sweep, everywhere=True)
        # What has been kept long enough goes, once a day: case senders, files and locations, the journal, stale
        # notices and options, expired web sessions (bot/retention.py).
        self.retention = Retention(store, config.retention_months, self.router.settings.tz)
        self.retention.register(self.scheduler)
        self.web_upkeep = WebUpkeep(store, lambda: self.web_channels, lambda: self.send_gate)
        self.web_upkeep.register(self.scheduler)
        self.fatal: str | None = None  # why a channel cannot go on; `halted` is then set
        self.fatal_channel = "telegram"
        self.halted = asyncio.Event()  # the program should stop: a signal, or a fatal channel error
        self.backups: DailyBackup | None = None
        self.send_gate: SendGateRepo | None = None  # PostgreSQL's shared send rate (App.build)
        if config.backup_dir and not config.demo:  # the demo's data is not worth keeping
            self.backups = DailyBackup(store, config.backup_dir, config.backup_keep, self.router.settings.tz, clock)
            self.backups.register(self.scheduler)

    @classmethod
    async def build(cls, config: Config, *, clock: Callable[[], datetime] = utc_now) -> App:
        store = await Store.open(config.store_path)
        try:
            if config.demo:
                await seed_demo(store, clock())
        except BaseException as err:  # an open store's thread would keep the process alive
            await store.close()
            if isinstance(err, sqlite3.Error):  # disk full or read-only at start
                raise DatabaseUnavailable(str(config.store_path), str(err)) from err
            raise
        app = cls(config, store, clock)
        if store.db.dialect.name == "postgresql":  # several workers may send: the platform's rate is shared
            from storage.send_gate import SendGateRepo

            app.send_gate = await SendGateRepo.open(store.db.path)
        if config.telegram_token is not None and not config.demo:  # the demo never talks to real people
            app.telegram = TelegramChannel(
                config.telegram_token.get_secret_value(), config.telegram_api_url, config.telegram_file_url,
                app.intake.accept, webhook=config.telegram_webhook_url is not None, on_fatal=app.fail,
                # a broadcast's senders plus room for replies, so that no reply waits for a connection
                connections=config.broadcast_concurrency + 32, timeout=config.telegram_timeout)
            app.outbound.add(app.telegram, app.gate("telegram", config.telegram_rate, config.broadcast_rate))
        if config.zalo_token is not None and not config.demo:
            app.zalo = ZaloChannel(config.zalo_token.get_secret_value(), config.zalo_api_url, app.intake.accept,
                                   webhook=config.zalo_webhook_url is not None,
                                   links=app.links, on_fatal=lambda reason: app.fail(reason, "zalo"),
                                   connections=config.broadcast_concurrency + 32, timeout=config.telegram_timeout)
            app.outbound.add(app.zalo, app.gate("zalo", config.zalo_rate, min(config.broadcast_rate, config.zalo_rate)))
        return app

    def gate(self, channel: str, rate: int, broadcast_rate: int) -> Gate:
        """A channel's Gate; on PostgreSQL sharing the rate with the other workers (bot/shared_pace.py)."""
        gate = Gate(rate, broadcast_rate)
        if self.send_gate is not None:
            gate.share(SharedPace(self.send_gate, channel, rate, broadcast_rate))
        return gate

    @property
    def web_channels(self) -> list[WebChannel]:
        """The web chat's channel, then its text-only view where there is one."""
        return [self.web, *([self.webtext] if self.webtext else [])]

    def fail(self, reason: str, channel: str = "telegram") -> None:
        self.fatal, self.fatal_channel = reason, channel
        self.halted.set()

    @property
    def alone(self) -> bool:
        """The process is the whole deployment (SQLite), rather than one of several workers sharing PostgreSQL."""
        return self.scheduler.leadership is None

    async def start(self) -> None:
        if self.claims is not None:
            await self._claim_polling()
        await self.signals.start()
        if self.alone:
            self.scheduler.start()
        if self.telegram is not None:
            secret = self.config.telegram_webhook_secret
            await self.telegram.start(self.config.telegram_webhook_url,
                                      secret.get_secret_value() if secret else None)
        if self.zalo is not None:
            secret = self.config.zalo_webhook_secret
            await self.zalo.start(self.config.zalo_webhook_url, secret.get_secret_value() if secret else None)
        # What was journalled before a crash goes first, ahead of anything new from the same chat.
        await self.intake.replay()
        if self.alone:
            await self.router.resend_notices()  # what a crash kept from going out to people other than the writer
        if self.telegram is not None:
            self.telegram.listen()
            # A default for each catalog language, and the default language's for every other language code (a
            # person whose Telegram speaks French still gets a menu).
            for language in (*LANGUAGES, None):
                t = Texts(language or DEFAULT_LANGUAGE)
                await self.telegram.set_commands(None, language, [(c, t(f"cmd.{c}")) for c in commands_for("citizen")])
            log.info("Telegram bot @%s is running (%s)", self.telegram.username,
                     "webhook" if self.telegram.webhook else "long polling")
        if self.zalo is not None:
            self.zalo.listen()
            log.info("Zalo bot %s is running (%s)", self.zalo.username,
                     "webhook" if self.zalo.webhook else "long polling")
        if self.alone:
            await self.broadcasts.resume()  # what was running before a crash or a restart carries on
        else:  # the deployment's leader, if no other worker is, resumes now that the channels are running
            await self.scheduler.elect()
            self.scheduler.start()
        # What is loaded by now lives as long as the process: the collector need not rescan it, and runs
        # less often (its passes stall the event loop; bench/README.md measures the difference).
        gc.collect()
        gc.freeze()
        gc.set_threshold(20_000, 20, 20)

    async def _claim_polling(self) -> None:
        polling = [channel for channel in (self.telegram, self.zalo) if channel is not None and not channel.webhook]
        for channel in polling:
            if not await self.claims.take_polling(channel.name):
                raise PollerTaken(channel.name)
        if polling:
            log.info("on PostgreSQL, this worker alone polls %s", ", ".join(channel.name for channel in polling))
        else:
            log.info("on PostgreSQL in webhook mode: several workers may run on this database")

    async def stop(self) -> None:
        await self.scheduler.stop()
        if self.telegram is not None:
            await self.telegram.stop_receiving()
        if self.zalo is not None:
            await self.zalo.stop_receiving()
        await self.intake.drain(DRAIN_SECONDS)  # what does not finish stays journalled for the next start
        if self.claims is not None:
            await self.claims.close()
        await self.broadcasts.stop()
        for web in self.web_channels:
            web.close()
        if self.telegram is not None:
            await self.telegram.stop()
        if self.zalo is not None:
            await self.zalo.stop()
        if self.backups is not None:
            await self.backups.wait()
        await self.signals.close()
        if self.scheduler.leadership is not None:  # the lock goes now: another worker leads from its next tick
            await self.scheduler.leadership.close()
        for gate in self.outbound.gates.values():
            if gate.pace is not None:
                await gate.pace.close()
        if self.send_gate is not None:
            await self.send_gate.close()
        await self.store.close()
