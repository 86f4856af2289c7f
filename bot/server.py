"""One ASGI application, one port: the web chat, /healthz and the Telegram webhook (later Zalo's)."""

from __future__ import annotations

import hmac
import json
import logging

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.app import App
from bot.channels.web import WebChat

log = logging.getLogger(__name__)
MAX_UPDATE_BYTES = 1_000_000


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
        if app.telegram is None or secret is None or not hmac.compare_digest(given, secret.get_secret_value()):
            return Response(status_code=403)
        body = await request.body()
        if len(body) > MAX_UPDATE_BYTES:
            return Response(status_code=413)
        try:
            payload = json.loads(body)
        except ValueError:
            return Response(status_code=400)
        try:
            await app.telegram.feed(payload)
        except Exception:  # not journalled: Telegram is asked to deliver it again
            log.exception("a webhook update could not be taken")
            return Response(status_code=503)
        return Response(status_code=200)

    return Starlette(routes=[
        Route("/healthz", healthz),
        Route("/telegram/webhook", telegram_webhook, methods=["POST"]),
        *WebChat(app).routes(),
    ])
