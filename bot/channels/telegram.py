"""Telegram through python-telegram-bot: updates become Inbound events, Replies become Bot API calls."""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
import warnings
from collections.abc import Awaitable, Callable

from telegram import (
    Bot,
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeDefault,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Update,
)
from telegram.constants import ChatAction, ChatMemberStatus, ChatType, ParseMode
from telegram.error import (
    BadRequest,
    Forbidden,
    InvalidToken,
    NetworkError,
    RetryAfter,
    TelegramError,
    TimedOut,
)
from telegram.warnings import PTBDeprecationWarning

from bot.channels.base import BadUpdate, ChannelFatal, DeliveryError, Polling, split_text
from bot.channels.telegram_http import AiohttpRequest
from handlers import images
from handlers.base import Capabilities, Inbound, Media, Reply

log = logging.getLogger(__name__)
PHOTO_IDS = 64  # photos whose Telegram file_id is remembered
POLL_SECONDS = 10  # a long poll's wait for updates
MAX_PAUSE = 30.0  # the longest pause between failed polls
JOURNAL_PAUSE = 5.0  # before asking again for updates that could not be journalled
GONE = ("chat not found", "user is deactivated", "bot was blocked", "bot was kicked", "not enough rights",
        "peer_id_invalid", "have no rights to send")


def to_inbound(update: Update) -> Inbound | None:
    """The channel-neutral event for a Telegram update, or None for what the bot ignores."""
    member = update.my_chat_member
    if member is not None:
        if member.chat.type != ChatType.PRIVATE:
            return None
        status = member.new_chat_member.status
        kind = "blocked" if status in (ChatMemberStatus.BANNED, ChatMemberStatus.LEFT) else "unblocked"
        return Inbound("telegram", str(member.chat.id), str(member.from_user.id), kind)
    query = update.callback_query
    if query is not None:
        if query.message is None:
            return None
        return Inbound("telegram", str(query.message.chat.id), str(query.from_user.id), "choice",
                       payload=query.data or "", message_ref=str(query.message.message_id),
                       display_name=query.from_user.full_name, language=_language(query.from_user.language_code))
    message = update.message
    if message is None or message.chat.type != ChatType.PRIVATE or message.from_user is None:
        return None
    base = {"channel": "telegram", "chat_id": str(message.chat.id), "user_id": str(message.from_user.id),
            "display_name": message.from_user.full_name, "language": _language(message.from_user.language_code)}
    if message.text is not None:  # a typed "/command" too: commands are parsed once, for every channel
        if not isinstance(message.text, str):
            raise TypeError("the message's text is not a string")
        return Inbound(kind="text", text=message.text, **base)
    if message.photo:
        photo = message.photo[-1]
        return Inbound(kind="media", text=message.caption or "",
                       media=Media("photo", photo.file_id, photo.file_size, "image/jpeg"), **base)
    for kind in ("document", "voice", "video", "audio"):
        item = getattr(message, kind)
        if item is not None:
            mime = getattr(item, "mime_type", None)
            # A photo sent "as a file" keeps the camera's EXIF and GPS: it is a photo, and is cleaned like one.
            if kind == "document" and mime in images.MIMES:
                kind = "photo"
            return Inbound(kind="media", text=message.caption or "",
                           media=Media(kind, item.file_id, item.file_size, mime, getattr(item, "file_name", None)),
                           **base)
    if message.location is not None:
        return Inbound(kind="location", location=(message.location.latitude, message.location.longitude), **base)
    if message.contact is not None:
        return Inbound(kind="contact", text=message.contact.phone_number or "", **base)
    return Inbound(kind="unsupported", **base)


def _language(code: str | None) -> str | None:
    return "en" if code and code.startswith("en") else ("vi" if code else None)


def _markup(reply: Reply) -> InlineKeyboardMarkup | None:
    if not reply.options:
        return None
    return InlineKeyboardMarkup([
        [InlineKeyboardButton(o.label, url=o.url) if o.url else InlineKeyboardButton(o.label, callback_data=o.data)
         for o in row]
        for row in reply.options
    ])


def classify(err: TelegramError) -> DeliveryError:
    """DESIGN.md §4: retry later, recipient gone, or permanent."""
    if isinstance(err, RetryAfter):
        with warnings.catch_warnings():  # int or timedelta, depending on PTB_TIMEDELTA: both handled
            warnings.simplefilter("ignore", PTBDeprecationWarning)
            wait = err.retry_after
        seconds = wait.total_seconds() if hasattr(wait, "total_seconds") else float(wait)
        return DeliveryError("retry", "429 too many requests", seconds)
    if isinstance(err, Forbidden):
        return DeliveryError("gone", err.message)
    if isinstance(err, BadRequest):
        if any(marker in err.message.lower() for marker in GONE):
            return DeliveryError("gone", err.message)
        return DeliveryError("permanent", err.message)
    if isinstance(err, TimedOut | NetworkError):
        return DeliveryError("retry", err.message)
    return DeliveryError("permanent", err.message)


class TelegramChannel(Polling):
    """Receives by long polling (getUpdates) or a webhook, and acknowledges an update only once `accept` has
    journalled it: python-telegram-bot's Updater moves the getUpdates offset on as soon as it has fetched a
    batch, before anything is handled, so the bot polls with its own loop over PTB's `Bot`."""

    name = "telegram"
    capabilities = Capabilities(buttons=True, edits=True, max_text=4096, html=True, unit="utf16")

    def __init__(self, token: str, base_url: str, base_file_url: str,
                 accept: Callable[[str, list[tuple[str, Inbound]]], Awaitable[None]], webhook: bool = False, *,
                 connections: int = 64, timeout: float = 5.0,
                 on_fatal: Callable[[str], None] = lambda reason: None) -> None:
        tls = ssl.create_default_context()  # one for all: each costs tens of milliseconds to build

        def transport(pool: int) -> AiohttpRequest:
            return AiohttpRequest(pool, read_timeout=timeout, write_timeout=timeout, connect_timeout=timeout,
                                  pool_timeout=10.0, tls=tls)

        # Every call goes through aiohttp (bot/channels/telegram_http.py): replies, edits and button answers
        # share one pool of `connections`; getUpdates has a connection of its own.
        self._transports = (transport(connections), transport(1))
        self.bot = Bot(token, base_url=base_url, base_file_url=base_file_url, request=self._transports[0],
                       get_updates_request=self._transports[1])
        self._photos: dict[tuple[int, int], tuple[bytes, str]] = {}  # a photo sent once is sent again by file_id
        self.accept = accept
        self.on_fatal = on_fatal
        self.webhook = webhook
        self.username: str | None = None
        self.heartbeat: float | None = None  # time.monotonic() of the last answer to getUpdates or webhook call
        self._answers: set[asyncio.Task] = set()

    async def start(self, webhook_url: str | None = None, webhook_secret: str | None = None) -> None:
        try:
            await self.bot.initialize()
            if self.webhook:
                await self.bot.set_webhook(webhook_url, secret_token=webhook_secret, allowed_updates=Update.ALL_TYPES)
            else:  # getUpdates is refused while a webhook is set; pending updates are kept
                await self.bot.delete_webhook(drop_pending_updates=False)
        except InvalidToken as err:
            raise ChannelFatal(self.name, f"the Bot API refused the token ({err.message})") from None
        except TelegramError as err:  # the details go through the log, which hides the token in URLs
            log.error("Telegram could not be reached at start", exc_info=err)
            raise ChannelFatal(self.name, type(err).__name__) from None
        self.username = self.bot.username
        self.heartbeat = time.monotonic()

    async def stop(self) -> None:
        await self.stop_receiving()
        await asyncio.gather(*self._answers, return_exceptions=True)
        # The transports are closed here even when start failed half-way (Telegram unreachable).
        await asyncio.gather(*(t.shutdown() for t in self._transports))

    async def _poll(self) -> None:
        """Long polling. A batch is acknowledged (the next offset) only once it is journalled; a token the
        Bot API refuses stops the bot, anything else is retried with a growing pause."""
        offset, failures = 0, 0
        while True:
            try:
                updates = await self.bot.get_updates(offset=offset, timeout=POLL_SECONDS,
                                                     allowed_updates=Update.ALL_TYPES)
            except InvalidToken as err:
                log.critical("Telegram refused the bot token (%s): stopping", err.message)
                self.on_fatal(f"the Bot API refused the token ({err.message})")
                return
            except TelegramError as err:
                failures += 1
                pause = classify(err).retry_after or min(2.0 ** failures, MAX_PAUSE)
                (log.warning if failures < 3 else log.error)("getUpdates failed (%s: %s); again in %.0f s",
                                                             type(err).__name__, err.message, pause)
                await asyncio.sleep(pause)
                continue
            self.heartbeat = time.monotonic()
            failures = 0
            if not updates:
                continue
            try:
                await self._take(updates)
            except Exception:  # not journalled: asked for again, not acknowledged
                log.exception("%d update(s) could not be journalled; asking for them again", len(updates))
                await asyncio.sleep(JOURNAL_PAUSE)
                continue
            offset = updates[-1].update_id + 1

    async def feed(self, payload: dict) -> None:
        """A webhook delivered this update (the secret header was already checked); raises when it could not
        be journalled, and the webhook then answers with an error so that Telegram delivers it again; raises
        BadUpdate, before journalling, for a body it cannot read as an update."""
        self.heartbeat = time.monotonic()
        try:
            update = Update.de_json(payload, self.bot)
            to_inbound(update)  # what a handler would stumble on fails here, before the journal keeps it
        except (TypeError, ValueError, KeyError, AttributeError) as err:
            raise BadUpdate(self.name, f"{type(err).__name__} in update {payload.get('update_id')}") from None
        await self._take([update])

    async def _take(self, updates: list[Update]) -> None:
        events = [(str(u.update_id), inbound) for u in updates if (inbound := to_inbound(u)) is not None]
        if events:
            await self.accept(self.name, events)
        for update in updates:  # the button's spinner stops once the press is safely kept
            if update.callback_query is not None:
                task = asyncio.create_task(self._answer(update.callback_query.id))
                self._answers.add(task)
                task.add_done_callback(self._answers.discard)

    async def _answer(self, query_id: str) -> None:
        try:
            await self.bot.answer_callback_query(query_id)
        except TelegramError:
            pass  # an old button's spinner: nothing the person needs to know

    async def send(self, chat_id: str, reply: Reply, edit_ref: str | None = None) -> str | None:
        bot, markup = self.bot, _markup(reply)
        try:
            # A caption goes whole: its length is checked where it is written (Telegram counts the text shown,
            # 1024), and cutting the HTML could split a tag, which Telegram refuses.
            if reply.photo is not None:
                content = reply.photo.content
                key = (hash(content), len(content))
                known = self._photos.get(key)
                photo = known[1] if known and known[0] == content else InputFile(content, filename=reply.photo.filename)
                message = await bot.send_photo(int(chat_id), photo, caption=reply.text or None,
                                               parse_mode=ParseMode.HTML, reply_markup=markup)
                if known is None and message.photo:
                    if len(self._photos) >= PHOTO_IDS:
                        self._photos.pop(next(iter(self._photos)))
                    self._photos[key] = (content, message.photo[-1].file_id)
                return str(message.message_id)
            if reply.document is not None:
                message = await bot.send_document(
                    int(chat_id), InputFile(reply.document.content, filename=reply.document.filename),
                    caption=reply.text or None, parse_mode=ParseMode.HTML)
                return str(message.message_id)
            pieces = split_text(reply.text, self.capabilities.max_text, self.capabilities.unit)
            if edit_ref is not None and len(pieces) == 1:
                try:
                    await bot.edit_message_text(pieces[0], chat_id=int(chat_id), message_id=int(edit_ref),
                                                parse_mode=ParseMode.HTML, reply_markup=markup)
                    return edit_ref
                except BadRequest as err:
                    if "not modified" in err.message.lower():
                        return edit_ref
                    # too old or deleted to edit: send it as a new message instead
            message = None
            for index, piece in enumerate(pieces):
                message = await bot.send_message(int(chat_id), piece, parse_mode=ParseMode.HTML,
                                                 reply_markup=markup if index == len(pieces) - 1 else None)
            return str(message.message_id) if message else None
        except TelegramError as err:
            raise classify(err) from None

    async def typing(self, chat_id: str) -> None:
        try:
            await self.bot.send_chat_action(int(chat_id), ChatAction.TYPING)
        except TelegramError as err:
            raise classify(err) from None

    async def fetch(self, media: Media) -> bytes:
        """The bytes of a file a person sent (the Bot API serves files up to 20 MB)."""
        try:
            file = await self.bot.get_file(media.ref)
            return bytes(await file.download_as_bytearray())
        except TelegramError as err:
            raise classify(err) from None

    async def set_commands(self, chat_id: str | None, language: str | None,
                           commands: list[tuple[str, str]]) -> None:
        scope = BotCommandScopeChat(int(chat_id)) if chat_id else BotCommandScopeDefault()
        await self.bot.set_my_commands([BotCommand(c, d[:256]) for c, d in commands], scope=scope,
                                           language_code=None if chat_id else language)

    def deep_link(self, payload: str) -> str | None:
        return f"https://t.me/{self.username}?start={payload}" if self.username else None
