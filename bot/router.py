"""The router: one person's events in order, different people's concurrently; loads the person and
their conversation, dispatches to the handler, saves the conversation, sends the replies."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import datetime

from bot import render
from bot.file_links import FileLinks
from bot.outbound import Outbound, Priority
from handlers.base import (
    Capabilities,
    Ctx,
    Inbound,
    Notice,
    Option,
    Registry,
    Reply,
    Settings,
    allowed,
    parse_cb,
    speaks,
    step_key,
)
from handlers.features import commands_for
from handlers.menu import show_menu
from handlers.offer import offer_case
from messages import DEFAULT_LANGUAGE, LANGUAGES, Texts
from storage import Store
from storage.conversations import Conversation
from storage.users import User

log = logging.getLogger(__name__)
MAX_TEXT = 4096
DEFAULT_MENU = f"citizen:{DEFAULT_LANGUAGE}"  # what a chat shows before it is given a menu of its own (App.start)


class _ChatLocks:
    """An asyncio.Lock per chat, dropped when nobody holds or waits for it."""

    def __init__(self) -> None:
        self._locks: dict[tuple[str, str], tuple[asyncio.Lock, int]] = {}

    async def __call__(self, key: tuple[str, str], work):
        lock, users = self._locks.get(key, (None, 0))
        if lock is None:
            lock = asyncio.Lock()
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                return await work()
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)


@dataclass
class Handled:
    """What one event comes to: the replies (in `t`'s language), whom else to tell, and where the person is now."""

    replies: list[Reply]
    notices: list[Notice]
    t: Texts
    in_flow: bool = False  # inside a flow after the event: what they type next is its answer
    failed: bool = False  # nothing was saved: the options shown before still mean what they showed
    notice_ids: list[int] = field(default_factory=list)  # the notices' rows in the outbox, in order
    rendered: list[Reply] | None = None  # the replies as the channel shows them, their options already kept


class Router:
    def __init__(self, store: Store, settings: Settings, registry: Registry, outbound: Outbound,
                 clock: Callable[[], datetime]) -> None:
        self.store = store
        self.settings = settings
        self.registry = registry
        self.outbound = outbound
        self.clock = clock
        self.wake: Callable[[str], None] = lambda job: None  # App: the scheduler runs that job now
        self.links: FileLinks | None = None  # App: download links for documents where a channel takes no files
        self._locks = _ChatLocks()

    def deep_links(self, payload: str) -> list[str]:
        links = [ch.deep_link(payload) for ch in self.outbound.channels.values()]
        return [link for link in links if link]

    async def handle(self, inbound: Inbound, entry_id: int | None = None) -> list[Reply]:
        """Process one event and deliver its replies; returns them (tests read them). `entry_id`: the event's
        inbound journal entry, marked applied together with the conversation it moves."""

        async def work() -> list[Reply]:
            try:
                handled = await self.process(inbound, entry_id)
            except Exception:  # the person could not even be read or written (a full disk): never silence
                if inbound.kind in ("blocked", "unblocked"):
                    raise
                log.exception("a %s event could not be processed", inbound.kind)
                t = Texts(inbound.language if inbound.language in LANGUAGES else "vi")
                handled = Handled([Reply(t("common.error"))], [], t, failed=True)
            t = handled.t
            shown = handled.rendered
            if shown is None:  # it failed: the options shown before still mean what they showed
                shown, _ = await self._render(inbound.channel, handled.replies, t, handled.in_flow)
            if not await self.outbound.replies(inbound.channel, inbound.chat_id, shown, inbound.message_ref, t):
                # The step's question may be among what was lost: it is asked again at their next message.
                await self.store.conversations.mark_unasked(inbound.channel, inbound.chat_id)
            for notice, notice_id in zip(handled.notices, handled.notice_ids, strict=True):
                await self.deliver_notice(notice)
                await self.store.notices.done(notice_id)
            return handled.replies

        return await self._locks((inbound.channel, inbound.chat_id), work)

    async def process(self, inbound: Inbound, entry_id: int | None = None) -> Handled:
        """What to answer (in which language) and whom else to tell; the conversation is saved before anything
        is sent."""
        now = self.clock()
        if inbound.kind in ("blocked", "unblocked"):
            await self.store.users.set_reachable(inbound.channel, inbound.chat_id, inbound.kind == "unblocked", now)
            return Handled([], [], Texts("vi"))
        if len(inbound.text) > MAX_TEXT:
            inbound = _truncated(inbound)
        inbound = render.parse(inbound)
        # Only the chat to answer is kept of someone who has not accepted a purpose (handlers/consent.py).
        user, conversation, shown, menu = await self.store.users.arrive(inbound.channel, inbound.user_id,
                                                                        inbound.chat_id, now)
        if not user.reachable:
            user = await self.store.users.update(user.id, now, reachable=1)
        channel = self.outbound.channels.get(inbound.channel)
        capabilities = channel.capabilities if channel else Capabilities()
        # Typed words: a keyword, or on a channel without buttons an option shown.
        inbound = render.understand(inbound, None if capabilities.buttons else shown, conversation is not None)
        ctx = Ctx(self.store, self.settings, self.registry, user, inbound, now, conversation, self.deep_links,
                  capabilities, getattr(channel, "fetch", None), self.wake,
                  typing=lambda: self.outbound.typing(inbound.channel, inbound.chat_id))
        try:
            await self._dispatch(ctx)
            # Rendered before the save, so that the options it shows as numbers are kept by the same transaction.
            rendered, options = await self._render(inbound.channel, ctx.replies, ctx.t, ctx.conversation is not None)
            if ctx.dirty:
                await self.store.conversations.save(inbound.channel, inbound.chat_id, ctx.conversation, now, entry_id,
                                                    options)
            elif options is not None:
                await self.store.conversations.show(inbound.channel, inbound.chat_id, options, now)
            if ctx.kept_files:  # named by now (the draft, a row): a delete that took them meanwhile is undone
                try:
                    await self.store.files.restore(ctx.kept_files)
                except Exception:  # what the person sent is saved: the answer goes out as it is
                    log.warning("files kept by a %s event could not be checked again", inbound.kind, exc_info=True)
        except Exception:
            # The draft stays as it was before this event; the person is told, never left in silence.
            log.exception("handler failed for a %s event in flow %s", inbound.kind,
                          conversation.flow if conversation else None)
            t = Texts(speaks(user, inbound), staff=user.role != "citizen")
            return Handled([Reply(t("common.error"))], [], t, conversation is not None, failed=True)
        if ctx.user is not None:  # a role given elsewhere (the command line, an invite) shows in this chat's menu now
            if (menu or DEFAULT_MENU) != f"{ctx.user.role}:{ctx.user.language}":
                await self.refresh_commands(inbound.channel, inbound.chat_id, ctx.user.role, ctx.user.language)
        for channel_name, chat_id in ctx.forget:  # before the replies: the confirmation is all the chat keeps
            forget = getattr(self.outbound.channels.get(channel_name), "forget", None)
            if forget is not None:
                await forget(chat_id)
        for user_id in ctx.role_changed:
            target = await self.store.users.get(user_id)
            if target and target.chat_id:
                await self.refresh_commands(target.channel, target.chat_id, target.role, target.language)
        # Kept until delivered: a crash before they go out sends them at the next start (resend_notices).
        notice_ids = await self.store.notices.add([(n.user_id, n.dump()) for n in ctx.notices], now) \
            if ctx.notices else []
        notices = ctx.notices + [n for n, _ in ctx.kept_notices]  # kept by the handler's own write
        notice_ids += [i for _, i in ctx.kept_notices]
        return Handled(ctx.replies, notices, ctx.t, ctx.conversation is not None, notice_ids=notice_ids,
                       rendered=rendered)

    async def _dispatch(self, ctx: Ctx) -> None:
        inbound, conversation = ctx.inbound, ctx.conversation
        if inbound.kind == "command":
            await self._command(ctx)
            return
        if conversation is not None:
            step = self.registry.steps.get((conversation.flow, conversation.step))
            if step is None:  # a flow that no longer exists after an upgrade
                ctx.finish()
                await show_menu(ctx)
                return
            if not allowed(ctx.user, self.registry.flow_roles[conversation.flow]):
                ctx.finish()
                ctx.say(ctx.t("common.not_allowed"))
                return
            if conversation.unasked and not _answers_step(inbound, conversation):
                ctx.dirty = True  # saved with the question marked as asked
                await step.prompt(ctx)
                return
        if inbound.kind == "choice":
            parsed = parse_cb(inbound.payload)
            if parsed is not None:
                key, ctx.args = parsed
                if conversation is not None and key == step_key(conversation.flow, conversation.step):
                    await step.handle(ctx)
                    return
                action = self.registry.actions.get(key)
                if action is not None:
                    if allowed(ctx.user, action.roles):
                        await action.handler(ctx)
                    else:
                        await ctx.audit("denied", inbound.payload[:64])
                        ctx.say(ctx.t("common.not_allowed"))
                    return
            ctx.args = ()
            if conversation is not None:
                await ctx.reask(ctx.stale_key)
            else:
                ctx.say(ctx.t(ctx.stale_key))
                await show_menu(ctx)
            return
        if conversation is not None:
            await step.handle(ctx)
        elif not ctx.user.onboarded:
            ctx.say(ctx.t("common.start_first"))
        elif inbound.kind == "unsupported":  # a sticker, or what a platform would not show the bot (Zalo's
            # protected users): said plainly, with the web chat's address where there is a public one
            web = ctx.settings.web_chat
            await show_menu(ctx, ctx.t("common.cannot_read_web", url=web) if web else ctx.t("common.cannot_read"))
        elif not await offer_case(ctx):  # text or a file outside a flow: offered as a report or a suggestion
            await show_menu(ctx, ctx.t("common.use_menu"))

    async def _command(self, ctx: Ctx) -> None:
        name = (ctx.inbound.command or "").lower()
        guarded = self.registry.commands.get(name)
        if guarded is None:
            ctx.say(ctx.t("common.unknown_command", command=name[:32]))
            return  # a mistyped command keeps the flow and its draft
        if ctx.conversation is not None:
            ctx.left_flow = ctx.conversation.flow
            ctx.finish()
        if not allowed(ctx.user, guarded.roles):
            await ctx.audit("denied", f"/{name}")
            ctx.say(ctx.t("common.not_allowed"))
            return
        await guarded.handler(ctx)

    async def _render(self, channel_name: str, replies: list[Reply], t: Texts, in_flow: bool = False
                      ) -> tuple[list[Reply], list[tuple[str, str]] | None]:
        """The replies as the channel can show them (bot/render.py), and on a channel without buttons the options
        they show as numbers (None on other channels or without replies): kept for the chat (`_show`), so that the
        number typed next means what it showed."""
        channel = self.outbound.channels.get(channel_name)
        if channel is None or not replies:
            return replies, None
        if not channel.capabilities.files and self.links is not None:
            replies = [render.linked(reply, await self.links.document(reply.document), t)
                       if reply.document is not None else reply for reply in replies]
        shown, options = render.outgoing(replies, channel.capabilities, t, in_flow)
        return shown, None if channel.capabilities.buttons else options

    async def _show(self, channel_name: str, chat_id: str, replies: list[Reply], t: Texts) -> list[Reply]:
        """`_render` for someone who did not just write, the options shown as numbers kept."""
        shown, options = await self._render(channel_name, replies, t)
        if options is not None:
            await self.store.conversations.show(channel_name, chat_id, options, self.clock())
        return shown

    async def resend_notices(self) -> int:
        """Deliver the notices a stop or a crash left in the outbox; returns how many."""
        pending = await self.store.notices.pending()
        for notice_id, user_id, text in pending:
            await self.deliver_notice(Notice.load(user_id, text))
            await self.store.notices.done(notice_id)
        if pending:
            log.info("delivered %d notice(s) left from before the last stop", len(pending))
        return len(pending)

    async def deliver_notice(self, notice: Notice) -> bool:
        """Send a notice to its recipient, if they can be reached on a running channel."""
        user = await self.store.users.get(notice.user_id)
        channel = self.outbound.channels.get(user.channel) if user else None
        if user is None or channel is None or not user.chat_id or not user.reachable:
            return False
        t = Texts(user.language, staff=user.role != "citizen")
        options = tuple((Option(t(label), data),) for label, data in notice.buttons)
        [reply] = await self._show(user.channel, user.chat_id, [Reply(t(notice.key, **notice.values), options)], t)
        return await self.outbound.deliver(channel, user.chat_id, reply)

    async def deliver_to(self, user: User, replies: list[Reply], priority: Priority = Priority.SCHEDULED) -> bool:
        """Send replies to someone who did not just write (digests, reminders), on their own channel, at
        `priority`; False when they cannot be reached or a reply could not be delivered."""
        channel = self.outbound.channels.get(user.channel)
        if channel is None or not user.chat_id or not user.reachable:
            return False
        for reply in await self._show(user.channel, user.chat_id, replies,
                                       Texts(user.language, staff=user.role != "citizen")):
            if not await self.outbound.deliver(channel, user.chat_id, reply, priority=priority):
                return False
        return True

    async def refresh_commands(self, channel_name: str, chat_id: str, role: str, language: str) -> None:
        """Give the chat the menu of `role` in `language`, and remember it was given."""
        channel = self.outbound.channels.get(channel_name)
        if channel is None:
            return
        t = Texts(language)
        try:
            await channel.set_commands(chat_id, language, [(c, t(f"cmd.{c}")) for c in commands_for(role)])
        except Exception:  # a menu that could not be updated must not break the conversation; tried again later
            log.warning("could not update the command menu on %s", channel_name)
            return
        await self.store.conversations.set_menu(channel_name, chat_id, f"{role}:{language}", self.clock())


def _answers_step(inbound: Inbound, conversation: Conversation) -> bool:
    """A press of one of the current step's own buttons: the person did see its question."""
    parsed = parse_cb(inbound.payload) if inbound.kind == "choice" else None
    return parsed is not None and parsed[0] == step_key(conversation.flow, conversation.step)


def _truncated(inbound: Inbound) -> Inbound:
    return replace(inbound, text=inbound.text[:MAX_TEXT])
