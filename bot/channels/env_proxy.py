"""The proxy that HTTP(S)_PROXY / NO_PROXY name for a host, looked up once per host.

An office network may reach the platforms only through a proxy. aiohttp's `trust_env` honours the variables,
but looks them up (and the netrc file) in a worker thread on every request: two thread hops per Bot API call,
a good part of a message's cost at hundreds of messages a second (bench/README.md). The variables do not
change while the bot runs, so each host is looked up once; the Bot APIs take their token in the URL, not
netrc credentials.
"""

from __future__ import annotations

import asyncio
from contextlib import suppress

from aiohttp import BasicAuth
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL


class EnvProxy:
    def __init__(self) -> None:
        self._known: dict[str, dict] = {}  # by "scheme://host:port"

    async def __call__(self, url: str) -> dict:
        """`proxy` and `proxy_auth` for aiohttp's request methods to `url` (empty: go direct)."""
        origin = "/".join(url.split("/", 3)[:3])
        known = self._known.get(origin)
        if known is None:
            try:
                parsed = URL(url)
            except ValueError:  # aiohttp refuses it with its own error, which the log redacts (the token)
                return {}
            known = self._known[origin] = await asyncio.to_thread(_lookup, parsed)
        return known


def _lookup(url: URL) -> dict:
    proxy: tuple[URL, BasicAuth | None] | None = None
    with suppress(LookupError):
        proxy = get_env_proxy_for_url(url)
    return {"proxy": proxy[0], "proxy_auth": proxy[1]} if proxy else {}
