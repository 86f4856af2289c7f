"""Arbitrary text, Unicode, huge input and forged callback data at every step: always a polite answer,
never an exception, and the conversation stays in a state the bot knows."""

from __future__ import annotations

import asyncio
import io

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import ExifTags, Image

import handlers
from handlers.base import Inbound, Media
from handlers.images import LONG_SIDE, BadImage, normalise
from messages import Texts
from storage import Store
from storage.conversations import Conversation
from tests.dialog import Clock, Harness
from tests.images import GPS, encoded, png

ERROR = Texts("vi")("common.error")
ERROR_EN = Texts("en")("common.error")

KEYS = sorted({f"{flow}.{step}" for flow, step in handlers.registry.steps} | set(handlers.registry.actions))
COMMANDS = sorted(handlers.registry.commands)

callback_args = st.lists(st.one_of(st.sampled_from(["c", "v", "t", "pg", "y", "n", "yes", "no", "done", "skip",
                                                     "back", "add", "all", "next", "more", "-1", "999999999"]),
                                   st.integers(-5, 10**6).map(str), st.text(max_size=10)), max_size=3)
payloads = st.one_of(
    st.text(max_size=100),
    st.binary(max_size=80).map(lambda b: b.decode("latin-1")),
    st.builds(lambda k, a, v: ":".join([v, k, *a]), st.sampled_from(KEYS), callback_args,
              st.sampled_from(["1", "0", "2"])),
)
texts = st.one_of(st.text(max_size=300), st.text(min_size=3000, max_size=6000),
                  st.sampled_from(["hai lang", "<script>alert(1)</script>", "  ", "🙂" * 50, "\u202e\u0000x", "%",
                                   "_"]))


@st.composite
def events(draw):
    kind = draw(st.sampled_from(["text", "choice", "command", "unsupported", "media", "location", "contact"]))
    if kind == "text":
        return {"kind": "text", "text": draw(texts)}
    if kind == "choice":
        return {"kind": "choice", "payload": draw(payloads), "message_ref": "1"}
    if kind == "command":
        return {"kind": "command", "command": draw(st.one_of(st.sampled_from(COMMANDS), st.text(max_size=40))),
                "text": draw(st.one_of(st.just(""), texts, st.builds(lambda s: "i_" + s, st.text(max_size=70))))}
    if kind == "media":
        return {"kind": "media", "media": Media("photo", "file-1", draw(st.integers(0, 10**9)), "image/jpeg"),
                "text": draw(st.text(max_size=50))}
    if kind == "location":
        return {"kind": "location", "location": (draw(st.floats(-90, 90)), draw(st.floats(-180, 180)))}
    return {"kind": kind}


STEPS = sorted(handlers.registry.steps)


@pytest.mark.parametrize(("flow", "step"), STEPS, ids=[f"{f}.{s}" for f, s in STEPS])
def test_any_input_at_every_step_gets_a_polite_answer(tmp_path, flow, step):
    loop = asyncio.new_event_loop()
    store = loop.run_until_complete(Store.open(tmp_path / "p.db"))
    harness = Harness(store, Clock())
    commune = loop.run_until_complete(store.localities.search("hai lang", level=1))[0]
    role = "citizen" if "citizen" in handlers.registry.flow_roles[flow] else "admin"
    case = loop.run_until_complete(_a_case(store, commune.id))
    task = loop.run_until_complete(_a_task(store, commune.id))
    consultation, comment = loop.run_until_complete(_a_consultation(store, commune.id))
    data = {"commune_id": commune.id, "places": [commune.id], "topics": [1], "target": 1,
            "granted": {"news": True, "opinions": True}, "kind": "phananh", "topic_id": 1,
            "locality_id": commune.id, "content": "Đường liên thôn bị sạt lở", "attachments": [],
            "case_id": case.id, "forward_to": commune.id, "view": "open", "page": 0,
            "task_id": task.id, "title": "Báo cáo sơ kết công tác dân vận", "deadline": "2026-12-15",
            "note": "Đã gửi báo cáo lên Ban Dân vận Tỉnh ủy",
            "text_vi": "<b>Họp dân</b> thôn Hà Lộc tối thứ Bảy", "roles": ["citizen"], "feedback": True,
            "field": "title_vi", "values": {"code": "ntm-2026"}, "carried": {"text": "Đường liên thôn bị sạt lở"},
            "cid": consultation, "pos": 1, "cmt": comment, "purpose": "sensitive", "stance": "comment",
            "then": "answer", "text": "Xã sẽ sửa trong tuần"}
    data.update(loop.run_until_complete(_a_nomination(store, commune.id)))
    known = set(handlers.registry.steps)

    async def one(event, language):
        person = harness.person("42", language=language)
        await person.say("/huongdan")  # make sure the person exists
        user = await store.users.find("test", "42")
        await store.users.update(user.id, harness.clock(), role=role, onboarded=1, language=language)
        await store.conversations.save("test", "42", Conversation(flow, step, dict(data)), harness.clock())
        replies = await harness.router.handle(Inbound("test", "42", "42", display_name="Người thử",
                                                      language=language, **event))
        shown = repr(event)[:300]
        assert replies, f"silence at {flow}.{step} for {shown}"
        for reply in replies:
            assert reply.text.strip(), f"empty reply at {flow}.{step}"
            assert reply.text not in (ERROR, ERROR_EN), f"handler failed at {flow}.{step} for {shown}"
        after = await store.conversations.get("test", "42")
        assert after is None or (after.flow, after.step) in known

    @settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
    @given(event=events(), language=st.sampled_from(["vi", "en"]))
    def check(event, language):
        loop.run_until_complete(one(event, language))

    try:
        # Every kind of event at least once, then whatever hypothesis finds.
        for kind in ("text", "choice", "command", "unsupported", "media", "location", "contact"):
            loop.run_until_complete(one(events_of_kind(kind), "vi"))
        check()
    finally:
        loop.run_until_complete(store.close())
        loop.close()


def _seeds() -> list[bytes]:
    """Small valid images of every format taken, some with EXIF, for hypothesis to cut and corrupt."""
    exif = Image.Exif()
    exif[ExifTags.Base.Orientation] = 8
    exif[ExifTags.IFD.GPSInfo] = GPS
    square = Image.new("RGB", (24, 16), (163, 29, 29))
    return [encoded(square, "JPEG", exif=exif), encoded(square, "JPEG", progressive=True),
            png(9, 7, "RGBA", (0, 0, 0, 0)), png(9, 7, "LA", (10, 128)), encoded(square.convert("P"), "PNG"),
            encoded(square, "WEBP"), encoded(square, "WEBP", lossless=True, exif=exif)]


SEEDS = _seeds()
image_bytes = st.one_of(
    st.binary(max_size=2048),
    st.builds(lambda seed, cut, tail: seed[:cut] + tail, st.sampled_from(SEEDS), st.integers(0, 2000),
              st.binary(max_size=512)),
    st.builds(lambda seed, flips: bytes(_flipped(seed, flips)), st.sampled_from(SEEDS),
              st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=8)),
)


def _flipped(seed: bytes, flips: list[tuple[int, int]]) -> bytearray:
    data = bytearray(seed)
    for at, value in flips:
        data[at % len(data)] = value
    return data


@settings(max_examples=400, deadline=None)
@given(data=image_bytes)
def test_any_bytes_are_a_clean_jpeg_or_a_bad_image(data):
    """Whatever arrives as a photo: either a JPEG Pillow opens, without EXIF, within the size, or BadImage."""
    try:
        out = normalise(data)
    except BadImage as bad:
        assert bad.key in ("image.unreadable", "image.too_big")
        return
    image = Image.open(io.BytesIO(out))
    image.load()
    assert image.format == "JPEG" and image.mode == "RGB" and max(image.size) <= LONG_SIDE
    assert not image.getexif() and b"Exif" not in out


async def _a_case(store, commune_id):
    """A case of person "42", so that tracking and inbox steps have something real to show."""
    from datetime import UTC, datetime, timedelta

    from storage.cases import NewCase

    now = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
    user = await store.users.ensure("test", "42", "42", "Người thử", "vi", now)
    return await store.cases.create(NewCase("phananh", user.id, False, 1, commune_id, "Đèn đường hỏng", False, None,
                                            now + timedelta(days=1), now + timedelta(days=14)), now)


async def _a_nomination(store, commune_id) -> dict:
    """A "Dân vận khéo" nomination of person "42" asked for more, and a nomination's draft, for the dvk steps."""
    from datetime import UTC, datetime

    from storage.dvk import NewModel, repo

    now = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
    user = await store.users.ensure("test", "42", "42", "Người thử", "vi", now)
    model = await repo(store).create(NewModel(user.id, False, "Hiến đất làm đường", "Chi hội Phụ nữ", commune_id,
                                              "kinh_te", "Vận động các hộ hiến đất làm đường", None), None, now)
    await repo(store).record(model.id, None, "info_requested", now, body="Số hộ?", expect=("nominated",),
                             status="info_requested")
    return {"model_id": model.id, "name": model.name, "author": model.author, "deeds": model.deeds, "key": "k1",
            "model_field": "kinh_te", "photos": [], "year": 2026, "period": ["2026-01-01", "2026-12-31"],
            "criteria": "Có kết quả đo đếm được", "round_id": 1}


async def _a_task(store, commune_id):
    """A task of the commune, so that the task steps have something real to show."""
    from datetime import UTC, datetime

    now = datetime(2026, 11, 26, 1, 0, tzinfo=UTC)
    return await store.tasks.create("Tổng hợp ý kiến Nhân dân", "Gửi báo cáo trước hạn.",
                                    datetime(2026, 12, 15, 16, 59, 59, tzinfo=UTC), {commune_id}, None, now)


async def _a_consultation(store, commune_id):
    """An open consultation with a comment of person "42", so that its steps have something real to show."""
    from datetime import UTC, datetime, timedelta

    from storage.broadcasts import Audience
    from storage.consultations import Draft, Paragraph

    now = datetime(2026, 11, 26, 0, 0, tzinfo=UTC)
    user = await store.users.ensure("test", "42", "42", "Người thử", "vi", now)
    draft = Draft("Dự thảo", (("Mục một", (Paragraph(1, "Đoạn một."), Paragraph(2, "Đoạn hai."))),))
    consultation = await store.consultations.save("DT", draft, now, now + timedelta(days=14), Audience(), now)
    await store.consultations.publish(consultation.id, None, now)
    section = (await store.consultations.sections(consultation.id))[0]
    comment = await store.consultations.add_comment(section.id, user.id, 2, "Đề nghị bỏ đoạn hai", False, "test",
                                                    commune_id, now)
    return consultation.id, comment


def events_of_kind(kind: str) -> dict:
    return {
        "text": {"kind": "text", "text": "x" * 5000},
        "choice": {"kind": "choice", "payload": "1:zz.top:1", "message_ref": "1"},
        "command": {"kind": "command", "command": "start", "text": "i_" + "A" * 70},
        "media": {"kind": "media", "media": Media("photo", "f", 10, "image/jpeg")},
        "location": {"kind": "location", "location": (16.7, 107.2)},
    }.get(kind, {"kind": kind})


# ---- splitting long HTML at a channel's limit ---------------------------------------------------------------

_words = st.one_of(
    st.text(alphabet=st.characters(codec="utf-8", exclude_characters="<>&", exclude_categories=("Cs",)),
            min_size=1, max_size=12),
    st.sampled_from(["Hải Lăng", "🌾🌾", "👨‍👩‍👧", "a\u0301\u0302", "x" * 40, "&amp;", "&lt;", "&#128512;", "&quot;"]),
)
_spacing = st.sampled_from([" ", ". ", "\n", "\n\n", "! ", ""])
_html = st.recursive(
    st.lists(st.tuples(_words, _spacing).map("".join), min_size=1, max_size=8).map("".join),
    lambda inner: st.one_of(
        st.tuples(st.sampled_from(["b", "i", "u", "blockquote"]), inner).map(lambda t: f"<{t[0]}>{t[1]}</{t[0]}>"),
        inner.map(lambda t: f'<a href="https://danvan.example.vn/x?a=1&amp;b=2">{t}</a>'),
        st.lists(inner, min_size=2, max_size=4).map("".join),
    ),
    max_leaves=40,
)


@settings(max_examples=300, deadline=None)
@given(text=_html, limit=st.integers(2, 400), unit=st.sampled_from(["utf16", "char"]))
def test_split_pieces_fit_the_limit_and_keep_every_tag_and_entity_whole(text, limit, unit):
    from bot.channels.base import split_text
    from handlers.base import units
    from handlers.richtext import check

    pieces = split_text(text, limit, unit)
    for piece in pieces:
        checked = check(piece)  # balanced tags, no cut entity: the piece is sent as it is
        assert checked.html == piece, piece
        assert units(checked.plain, unit) <= limit, (piece, limit)
    shown = "".join(check(piece).plain for piece in pieces)
    assert "".join(shown.split()) == "".join(check(text).plain.split())  # nothing lost but spaces at the cuts
