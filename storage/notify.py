"""Signals between the workers on one database: `notify(topic, payload)` reaches every worker's `listen(topic, …)`
callbacks, the sender's own included. A signal says only that something changed; what changed is in the database,
so a signal lost (no worker listening, a connection being made again) costs a delay, never data.

On SQLite the one process is the whole deployment and signals stay in it (here); on PostgreSQL they are
LISTEN/NOTIFY (storage/pg_notify.py), and a callback hears None when whatever was signalled meanwhile may have been
missed.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable

log = logging.getLogger(__name__)

WAKE = "danvan_wake"  # a job's name: a non-leader asks the leader to run it now (bot/scheduler.py)
WEB = "danvan_web"  # "<channel> <version> <chat id>": a web chat's history changed (bot/channels/web.py)
WEB_MENU = "danvan_web_menu"  # JSON {"channel", "chat", "event"}: a web chat's commands changed (the event is pushed)
TOPIC_LIST = "danvan_topics"  # the topics (lĩnh vực) changed: every worker reads them again (storage/topics.py)
TOPICS = (WAKE, WEB, WEB_MENU, TOPIC_LIST)

Callback = Callable[[str | None], None]


class LocalSignals:
    """One process: a signal goes to this process's callbacks, at once."""

    def __init__(self) -> None:
        self._callbacks: dict[str, list[Callback]] = defaultdict(list)

    def listen(self, topic: str, callback: Callback) -> None:
        self._callbacks[topic].append(callback)

    async def start(self) -> None:
        pass

    async def notify(self, topic: str, payload: str) -> None:
        self._deliver(topic, payload)

    async def close(self) -> None:
        pass

    def _deliver(self, topic: str, payload: str | None) -> None:
        for callback in self._callbacks.get(topic, ()):
            try:
                callback(payload)
            except Exception:  # one listener's fault must not keep the signal from the others
                log.exception("a listener of %s failed", topic)
