"""Zalo through the Zalo Bot API: updates become Inbound events, Replies become API calls (bot/channels/zalo_api.py).
Text only: the rendering step has already turned options into numbers and HTML into plain text (DESIGN.md §2)."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Protocol

from bot.channels.base import BadUpdate, ChannelFatal, DeliveryError, Polling, split_text
from bot.channels.zalo_api import ZaloAPI, ZaloError
from handlers.base import Capabilities, Document, Inbound, Media, Reply

log = logging.getLogger(__name__)
POLL_SECONDS = 30  # a long poll's wait for an update (the platform's default)
MAX_PAUSE = 30.0  # the longest pause between failed polls
JOURNAL_PAUSE = 5.0  # before asking again for an update that could not be journalled
MAX_PHOTO = 20 * 1024 * 1024  # a photo a person sent, downloaded at most this far
GONE = ("block", "not found", "not exist", "unfollow", "deactivat", "invalid user", "invalid chat")


class Links(Protocol):
    """Where the platform can fetch a photo: bot/file_links.py."""

    async def photo(self, document: Document) -> str: ...


def to_inbound(update: dict) -> tuple[str, Inbound] | None:
    """(the update's id for the journal, its event), or None for what the bot ignores (a group chat, an event it
    does not know). Raises TypeError, ValueError or KeyError on a body that is not an update."""
    event = update["event_name"]
    message = update["message"]
    if not isinstance(event, str) or not isinstance(message, dict):
        raise TypeError("event_name or message has the wrong type")
    chat, sender = message["chat"], message["from"]
    if not isinstance(chat, dict) or not isinstance(sender, dict):
        raise TypeError("chat or from is not an object")
    if chat.get("chat_type", "PRIVATE") != "PRIVATE":
        return None
    message_id = _string(message["message_id"])
    name = next((n for n in (sender.get(k) for k in ("display_name", "name", "first_name")) if isinstance(n, str)),
                None)
    base = {"channel": "zalo", "chat_id": _string(chat["id"]), "user_id": _string(sender["id"]),
            "display_name": name}
    text, caption = message.get("text"), message.get("caption")
    if (text is not None and not isinstance(text, str)) or (caption is not None and not isinstance(caption, str)):
        raise TypeError("text or caption is not a string")
    if event == "message.text.received":
        inbound = Inbound(kind="text", text=text or "", **base)
    elif event == "message.image.received":
        url = message.get("photo_url") or message.get("photo")
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            raise ValueError("an image without a photo URL")
        inbound = Inbound(kind="media", text=caption or "", media=Media("photo", url, None, "image/jpeg"), **base)
    elif event in ("message.sticker.received", "message.unsupported.received"):
        # The platform sends only "unsupported" for what a protected user wrote: the bot cannot read it.
        inbound = Inbound(kind="unsupported", **base)
    else:
        return None
    return f"{event}:{message_id}", inbound


def _string(value: object) -> str:
    """Ids are strings on Zalo; a number is taken as one, anything else refused."""
    if isinstance(value, bool) or not isinstance(value, str | int) or value == "":
        raise TypeError("an id is not a string")
    return str(value)


def classify(err: ZaloError) -> DeliveryError:
    """DESIGN.md §4: retry later, recipient gone, or permanent."""
    if err.status == 429:
        return DeliveryError("retry", "429 too many requests", err.retry_after)
    if err.status == 0 or err.status >= 500 or err.status == 408:
        return DeliveryError("retry", err.description)
    if err.status == 403 or any(marker in err.description.lower() for marker in GONE):
        return DeliveryError("gone", err.description)
    return DeliveryError("permanent", f"{err.status} {err.description}")


class ZaloChannel(Polling):
    """Receives by long polling (getUpdates returns one update, or HTTP 408 when none came) or a webhook, and
    lets the platform move on (the next poll, the webhook's 200) only once `accept` has journalled it."""

    name = "zalo"
    capabilities = Capabilities(buttons=False, edits=False, max_text=2000, html=False, unit="char", staff=True,
                                files=False)

    def __init__(self, token: str, base_url: str, accept: Callable[[str, list[tuple[str, Inbound]]], Awaitable[None]],
                 webhook: bool = False, *, links: Links, connections: int = 64, timeout: float = 5.0,
                 on_fatal: Callable[[str], None] = lambda reason: None) -> None:
        self.api = ZaloAPI(token, base_url, connections=connections, timeout=timeout)
        self._poll_api = ZaloAPI(token, base_url, connections=1, timeout=timeout)  # a long poll waits alone
        self.accept = accept
        self.links = links
        self.webhook = webhook
        self.on_fatal = on_fatal
        self.username: str | None = None
        self.heartbeat: float | None = None  # time.monotonic() of the last answer to getUpdates or webhook call

    async def start(self, webhook_url: str | None = None, webhook_secret: str | None = None) -> None:
        try:
            me = await self.api.call("getMe")
            if self.webhook:
                await self.api.call("setWebhook", {"url": webhook_url, "secret_token": webhook_secret})
            else:  # getUpdates is refused while a webhook is set
                await self.api.call("deleteWebhook")
        except ZaloError as err:
            if err.status == 401:
                raise ChannelFatal(self.name, "the Bot API refused the token") from None
            raise ChannelFatal(self.name, f"Zalo could not be reached ({err.description})") from None
        if isinstance(me, dict):
            self.username = str(me.get("account_name") or me.get("name") or me.get("id") or "") or None
        self.heartbeat = time.monotonic()

    async def stop(self) -> None:
        await self.stop_receiving()
        await asyncio.gather(self.api.close(), self._poll_api.close())

    async def _poll(self) -> None:
        """One update per call; the next call is its acknowledgement, made only once it is journalled."""
        failures = 0
        update: dict | None = None
        while True:
            if update is None:
                try:
                    update = await self._poll_api.call("getUpdates", {"timeout": str(POLL_SECONDS)},
                                                       read_timeout=POLL_SECONDS + 10)
                except ZaloError as err:
                    if err.status == 408:  # nothing came in the poll's time: ask again at once
                        self.heartbeat = time.monotonic()
                        failures = 0
                        continue
                    if err.status == 401:
                        log.critical("Zalo refused the bot token: stopping")
                        self.on_fatal("the Zalo Bot API refused the token")
                        return
                    failures += 1
                    pause = err.retry_after or min(2.0 ** failures, MAX_PAUSE)
                    (log.warning if failures < 3 else log.error)("Zalo getUpdates failed (%s); again in %.0f s",
                                                                 err, pause)
                    await asyncio.sleep(pause)
                    continue
                self.heartbeat = time.monotonic()
                failures = 0
            try:
                await self._take(update)
            except BadUpdate as err:
                log.warning("a Zalo update was not understood: %s", err.reason)
            except Exception:  # not journalled: kept, and journalled again before the next poll
                log.exception("a Zalo update could not be journalled; trying again")
                await asyncio.sleep(JOURNAL_PAUSE)
                continue
            update = None

    async def feed(self, payload: object) -> None:
        """A webhook delivered this body (the secret was already checked), as `{ok, result}` or bare. Raises
        BadUpdate for a body that is not an update, anything else when it could not be journalled (the webhook
        then answers with an error so that the platform delivers it again)."""
        self.heartbeat = time.monotonic()
        if isinstance(payload, dict) and "result" in payload and "event_name" not in payload:
            payload = payload["result"]
        await self._take(payload)

    async def _take(self, update: object) -> None:
        try:
            if not isinstance(update, dict):
                raise TypeError("an update is not an object")
            event = to_inbound(update)
        except (TypeError, ValueError, KeyError) as err:
            raise BadUpdate(self.name, f"{type(err).__name__}: {err}") from None
        if event is not None:
            await self.accept(self.name, [event])

    async def send(self, chat_id: str, reply: Reply, edit_ref: str | None = None) -> str | None:
        """Zalo takes photos only by URL and no files at all: a photo goes as a signed link the platform fetches,
        with the text as its caption where it fits. A document has already become a download link in the text, in
        the reader's language (the rendering step: `files=False`)."""
        text, limit = reply.text, self.capabilities.max_text
        if reply.document is not None:
            raise DeliveryError("permanent", "Zalo takes no files")
        try:
            message_id = None
            if reply.photo is not None:
                caption = text if len(text) <= limit else ""
                if not caption and text:
                    message_id = await self._text(chat_id, text)
                url = await self.links.photo(reply.photo)
                result = await self.api.call("sendPhoto", {"chat_id": chat_id, "photo": url,
                                                           **({"caption": caption} if caption else {})})
                message_id = result.get("message_id") if isinstance(result, dict) else message_id
            else:
                message_id = await self._text(chat_id, text)
        except ZaloError as err:
            raise classify(err) from None
        return str(message_id) if message_id is not None else None

    async def _text(self, chat_id: str, text: str) -> object:
        message_id = None
        for piece in split_text(text, self.capabilities.max_text, self.capabilities.unit):
            result = await self.api.call("sendMessage", {"chat_id": chat_id, "text": piece})
            message_id = result.get("message_id") if isinstance(result, dict) else None
        return message_id

    async def typing(self, chat_id: str) -> None:
        try:
            await self.api.call("sendChatAction", {"chat_id": chat_id, "action": "typing"})
        except ZaloError as err:
            raise classify(err) from None

    async def fetch(self, media: Media) -> bytes:
        """The bytes of a photo a person sent (its `photo_url`), at most 20 MB."""
        try:
            return await self.api.fetch(media.ref, MAX_PHOTO)
        except ZaloError as err:
            raise classify(err) from None

    async def set_commands(self, chat_id: str | None, language: str | None,
                           commands: list[tuple[str, str]]) -> None:
        """Zalo has no command menu: the numbered menu is the way in."""

    def deep_link(self, payload: str) -> str | None:
        return None
