"""How the HTTP server bounds what strangers can hold open: the number of connections, how long one may sit
without sending a request, the size of a request's head, and the process's open-file limit.

Idle connections cost a file descriptor each; past the open-file limit the database and the Bot API client
can no longer open anything, and the bot goes down while logging every refused accept."""

from __future__ import annotations

import asyncio
import logging
import resource

import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from bot.config import Config

log = logging.getLogger(__name__)

HEAD_TIMEOUT = 10  # seconds a new connection has to send its first request's head
KEEP_ALIVE = 5  # seconds an idle keep-alive connection is kept after a response
MAX_HEAD = 16 * 1024  # bytes of a request line and headers (h11's own buffer limit)
OPEN_FILES_CAP = 65536  # what the soft open-file limit is raised to at most
SPARE_FILES = 100  # descriptors beyond the connections: the database, its journal, the Bot API client, logs


class BoundedH11(H11Protocol):
    """uvicorn's h11 protocol with two bounds it lacks: a connection beyond the limit is closed at once
    (uvicorn would keep it until it sent a request, then answer 503), and one that has not sent a complete
    request head within HEAD_TIMEOUT is closed."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        if self.limit_concurrency is not None and len(self.connections) > self.limit_concurrency:
            transport.close()
            return
        self.loop.call_later(HEAD_TIMEOUT, self._head_deadline)

    def _head_deadline(self) -> None:
        if self.cycle is None:  # not one request yet; later ones are bounded by uvicorn's keep-alive timeout
            self.timeout_keep_alive_handler()


def server_config(asgi, config: Config) -> uvicorn.Config:
    proxies = [p.strip() for p in config.trusted_proxies.split(",") if p.strip()]
    return uvicorn.Config(asgi, log_level="warning", lifespan="off", timeout_graceful_shutdown=5,
                          http=BoundedH11, limit_concurrency=config.max_connections,
                          timeout_keep_alive=KEEP_ALIVE, h11_max_incomplete_event_size=MAX_HEAD,
                          proxy_headers=bool(proxies), forwarded_allow_ips=proxies)


def raise_open_files(wanted: int) -> int:
    """Raise the soft open-file limit towards the hard one (at most OPEN_FILES_CAP); returns the limit now.
    Logs it, with a warning when it leaves too few descriptors for `wanted` connections."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = OPEN_FILES_CAP if hard == resource.RLIM_INFINITY else min(hard, OPEN_FILES_CAP)
    if soft != resource.RLIM_INFINITY and soft < target:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as err:
            log.warning("could not raise the open-file limit from %d to %d: %s", soft, target, err)
    if soft != resource.RLIM_INFINITY and soft < wanted + SPARE_FILES:
        log.warning("the open-file limit is %d, too low for DANVAN_MAX_CONNECTIONS=%d; raise LimitNOFILE", soft,
                    wanted)
    else:
        log.info("open-file limit: %s", "unlimited" if soft == resource.RLIM_INFINITY else soft)
    return soft
