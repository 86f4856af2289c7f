"""A round-robin HTTP proxy on loopback: what a load balancer in front of several `danvan run` workers does, small
enough for a test. Each request goes to the next worker in turn; a worker that refuses the connection (dead) is
skipped, and a worker that dies while it holds a request makes that request fail with 502, as a real balancer
would: the platform sends it again (the inbound journal makes the second delivery harmless)."""

from __future__ import annotations

import itertools
from typing import Self

import aiohttp
from aiohttp import web

# Hop-by-hop headers and those aiohttp sets itself: never forwarded.
SKIPPED = frozenset({"host", "connection", "keep-alive", "transfer-encoding", "content-length", "upgrade"})


class RoundRobin:
    def __init__(self) -> None:
        self.backends: list[str] = []
        self._turn = itertools.count()
        self.forwarded: list[int] = []  # requests each worker answered
        self._session: aiohttp.ClientSession | None = None
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def start(self) -> Self:
        # One connection per request to the worker, as the workers' own server closes idle ones at will.
        self._session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0),
                                              timeout=aiohttp.ClientTimeout(total=60), auto_decompress=False)
        server = web.Application(client_max_size=2 << 20)
        server.router.add_route("*", "/{path:.*}", self._forward)
        self._runner = web.AppRunner(server, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        port = self._runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def add(self, backend: str) -> None:
        """A worker's base URL, such as http://127.0.0.1:8081."""
        self.backends.append(backend)
        self.forwarded.append(0)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def _forward(self, request: web.Request) -> web.Response:
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in SKIPPED}
        for _ in self.backends:
            index = next(self._turn) % len(self.backends)
            try:
                async with self._session.request(request.method, self.backends[index] + request.path_qs,
                                                 data=body, headers=headers, allow_redirects=False) as answer:
                    content = await answer.read()
                    self.forwarded[index] += 1
                    return web.Response(body=content, status=answer.status, headers={
                        k: v for k, v in answer.headers.items() if k.lower() not in SKIPPED})
            except aiohttp.ClientConnectorError:  # nothing reached this worker: the next one may take it
                continue
            except aiohttp.ClientError:  # the worker took the request and died (or hung up) before answering
                return web.Response(status=502)
        return web.Response(status=502)
