"""One ASGI application, one port: the web chat, /healthz and the Telegram and Zalo webhooks."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Callable
from urllib.parse import quote

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.app import App
from bot.channels.base import BadUpdate
from bot.request_body import TooLarge, parse_json, read_capped
from bot.webchat import WebChat, WebSettings

log = logging.getLogger(__name__)
MAX_UPDATE_BYTES = 1_000_000
MAX_UPDATE_DEPTH = 64  # a real update nests about a dozen levels (a reply to a message with entities…)


def build_asgi(app: App) -> Starlette:
    async def healthz(request: Request) -> Response:
        problems = await app.health.problems()  # bot/health.py says what each means
        return JSONResponse({"status": "error" if problems else "ok",
                             "database": "unavailable" if "database" in problems else "ok",
                             "mode": "demo" if app.config.demo else "production", "problems": problems,
                             # which worker answered, and whether it runs the scheduler's jobs (fine either way)
                             "worker": app.config.worker_name,
                             "role": "leader" if app.scheduler.is_leader else "follower"},
                            status_code=503 if problems else 200, headers={"Cache-Control": "no-store"})

    def webhook(channel_of, secret_of, header: str, valid, answer: Callable[[], Response]):
        """A platform's webhook: its secret header checked in constant time, the body read with a cap and
        parsed with a depth limit, then journalled by the channel's `feed` before the platform is answered."""

        async def endpoint(request: Request) -> Response:
            channel, secret = channel_of(), secret_of()
            given = request.headers.get(header, "")
            # As bytes: compare_digest refuses a str with non-ASCII characters, which any sender can put in a header.
            if channel is None or secret is None or not hmac.compare_digest(given.encode(),
                                                                            secret.get_secret_value().encode()):
                return Response(status_code=403)
            try:
                payload = parse_json(await read_capped(request, MAX_UPDATE_BYTES), MAX_UPDATE_DEPTH)
            except TooLarge:
                return Response(status_code=413)
            except ValueError:
                return Response(status_code=400)
            if not valid(payload):
                return Response(status_code=400)
            try:
                await channel.feed(payload)
            except BadUpdate as err:  # sending it again would not help: the platform may drop it
                log.warning("a %s webhook update was not understood: %s", channel.name, err.reason)
                return Response(status_code=400)
            except Exception:  # not journalled: the platform is asked to deliver it again
                log.exception("a %s webhook update could not be taken", channel.name)
                return Response(status_code=503)
            return answer()

        return endpoint

    def telegram_update(payload: object) -> bool:
        update_id = payload.get("update_id") if isinstance(payload, dict) else None
        return isinstance(update_id, int) and not isinstance(update_id, bool)

    telegram_webhook = webhook(lambda: app.telegram, lambda: app.config.telegram_webhook_secret,
                               "x-telegram-bot-api-secret-token", telegram_update, lambda: Response(status_code=200))
    zalo_webhook = webhook(lambda: app.zalo, lambda: app.config.zalo_webhook_secret, "x-bot-api-secret-token",
                           lambda payload: True, lambda: JSONResponse({"ok": True}))

    async def linked_file(request: Request) -> Response:
        """A file the bot sent by link (bot/file_links.py): anyone with an unexpired link may open it, as the
        platform must; only images are shown in place, and nothing served can run as a page of this site."""
        found = await app.links.read(request.path_params["token"])
        if found is None:
            return Response(status_code=404)
        linked, content = found
        disposition = "inline" if linked.mime.startswith("image/") else "attachment"
        return Response(content, media_type=linked.mime, headers={
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(linked.filename, safe='')}",
            "X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox",
            "Cache-Control": "private, max-age=3600", "Referrer-Policy": "no-referrer"})

    return Starlette(routes=[
        Route("/healthz", healthz),
        Route("/telegram/webhook", telegram_webhook, methods=["POST"]),
        Route("/zalo/webhook", zalo_webhook, methods=["POST"]),
        Route("/f/{token}", linked_file),
        *web_chat(app).routes(),
    ])


def web_chat(app: App) -> WebChat:
    """The web chat's HTTP API, given what it uses of the App."""
    config = app.config
    settings = WebSettings(demo=config.demo, operator=config.operator_name, session_days=config.web_session_days,
                           burst=config.web_burst, rate=config.web_rate, https=config.web_url.startswith("https://"),
                           shared=not app.alone)
    return WebChat(app.store, app.intake.handle, app.web_channels, settings, app.clock, app.send_gate, app.links.keyed)
