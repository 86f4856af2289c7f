"""One ASGI application, one port: the web chat, /healthz and the Telegram and Zalo webhooks."""

from __future__ import annotations

import hmac
import logging
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
                             "mode": "demo" if app.config.demo else "production", "problems": problems},
                            status_code=503 if problems else 200, headers={"Cache-Control": "no-store"})

    async def telegram_webhook(request: Request) -> Response:
        secret = app.config.telegram_webhook_secret
        given = request.headers.get("x-telegram-bot-api-secret-token", "")
        # As bytes: compare_digest refuses a str with non-ASCII characters, which any sender can put in a header.
        if app.telegram is None or secret is None or not hmac.compare_digest(given.encode(),
                                                                             secret.get_secret_value().encode()):
            return Response(status_code=403)
        try:
            payload = parse_json(await read_capped(request, MAX_UPDATE_BYTES), MAX_UPDATE_DEPTH)
        except TooLarge:
            return Response(status_code=413)
        except ValueError:
            return Response(status_code=400)
        update_id = payload.get("update_id") if isinstance(payload, dict) else None
        if isinstance(update_id, bool) or not isinstance(update_id, int):
            return Response(status_code=400)
        try:
            await app.telegram.feed(payload)
        except BadUpdate as err:  # sending it again would not help: Telegram may drop it
            log.warning("a webhook update was not understood: %s", err.reason)
            return Response(status_code=400)
        except Exception:  # not journalled: Telegram is asked to deliver it again
            log.exception("a webhook update could not be taken")
            return Response(status_code=503)
        return Response(status_code=200)

    async def zalo_webhook(request: Request) -> Response:
        secret = app.config.zalo_webhook_secret
        given = request.headers.get("x-bot-api-secret-token", "")
        if app.zalo is None or secret is None or not hmac.compare_digest(given.encode(),
                                                                         secret.get_secret_value().encode()):
            return Response(status_code=403)
        try:
            payload = parse_json(await read_capped(request, MAX_UPDATE_BYTES), MAX_UPDATE_DEPTH)
        except TooLarge:
            return Response(status_code=413)
        except ValueError:
            return Response(status_code=400)
        try:
            await app.zalo.feed(payload)
        except BadUpdate as err:
            log.warning("a Zalo webhook update was not understood: %s", err.reason)
            return Response(status_code=400)
        except Exception:  # not journalled: the platform is asked to deliver it again
            log.exception("a Zalo webhook update could not be taken")
            return Response(status_code=503)
        return JSONResponse({"ok": True})

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
                           burst=config.web_burst, rate=config.web_rate, https=config.web_url.startswith("https://"))
    return WebChat(app.store, app.intake.handle, app.web_channels, settings, app.clock)
