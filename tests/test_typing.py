""""typing…" while a chart or an export is built: a place in the channel's rate gate when one is free now, never a
wait for one, never a retry; a channel that cannot show it is skipped."""

from __future__ import annotations

from bot.channels.base import DeliveryError
from bot.outbound import Gate, Outbound, Priority
from tests.dialog import RecordingChannel


class Seconds:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_typing_takes_a_place_in_the_gate_and_never_waits_for_one(store, clock):
    channel, seconds = RecordingChannel(name="zalo"), Seconds()
    gate = Gate(1, clock=seconds)
    outbound = Outbound(store, clock)
    outbound.add(channel, gate)
    await outbound.typing("zalo", "z1")
    assert channel.typed == [("z1", 0)]
    assert gate.try_acquire(Priority.REPLY) is None  # the sign holds this second's one place, like a message
    await outbound.typing("zalo", "z1")  # no place free now: not shown, and nothing waited for it
    assert channel.typed == [("z1", 0)]
    seconds.now += 2
    await outbound.typing("zalo", "z1")
    assert channel.typed == [("z1", 0), ("z1", 0)]


async def test_a_refused_sign_gives_its_place_back_and_a_channel_without_it_is_skipped(store, clock):
    class Refusing(RecordingChannel):
        async def typing(self, chat_id: str) -> None:
            raise DeliveryError("retry", "500 Internal Server Error", answered=True)

    seconds = Seconds()
    gate = Gate(1, clock=seconds)
    outbound = Outbound(store, clock)
    outbound.add(Refusing(name="zalo"), gate)
    await outbound.typing("zalo", "z1")  # not raised: the reply it announces still goes
    seconds.now += 2
    assert gate.try_acquire(Priority.REPLY) is not None

    class Silent:  # the web chat shows no such sign
        name = "web"

    outbound.add(Silent())
    await outbound.typing("web", "w1")


async def test_my_data_is_announced_by_typing(harness):
    p = harness.person()
    await p.say("/start")
    await p.click("Đồng ý")
    sent = len(harness.channel.sent)
    await p.say("/dulieu")
    assert harness.channel.typed == [(p.id, sent)]
