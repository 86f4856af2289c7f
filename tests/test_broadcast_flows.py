"""Composing broadcasts and managing campaigns in chat (turn tables), the audience, quiet hours, what
citizens cannot do (forged buttons included), the admin's HTML, and the command line."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from PIL import Image

from bot.broadcasts import BroadcastEngine, EngineSettings, Run
from bot.cli import main
from handlers.base import Media
from handlers.broadcast import in_quiet, plan_start
from handlers.richtext import HtmlProblem, check, marked
from storage import Store
from storage.broadcasts import Audience, NewBroadcast
from storage.conversations import Conversation
from tests.dialog import ONBOARD, render, turns
from tests.images import encoded, gps_of, opened, phone_photo
from tests.people import make_people

pytestmark = pytest.mark.backends

TZ = ZoneInfo("Asia/Ho_Chi_Minh")
PNG = b"\x89PNG\r\n\x1a\n"


async def admin_of(harness, store, user_id="9001"):
    p = harness.person(user_id, name="Võ Thị Hà")
    await p.say("/huongdan")
    user = await store.users.find("test", user_id)
    await store.users.update(user.id, harness.clock(), role="admin", onboarded=1)
    return p


def engine_for(harness, quiet=None) -> BroadcastEngine:
    engine = BroadcastEngine(harness.store, harness.router.outbound, harness.clock,
                             EngineSettings(quiet_hours=quiet, tz=TZ))
    engine.ready = True
    return engine


async def deliver(engine: BroadcastEngine, broadcast_id: int) -> None:
    await engine.tick(engine.clock())
    async with asyncio.timeout(10):
        await engine.wait(broadcast_id)


def sent_to(harness, chat_id: str):
    return [reply for chat, reply, _ in harness.channel.sent if chat == chat_id]


# ---- composing ---------------------------------------------------------------------------------------------


async def test_admin_composes_with_simple_marks_targets_and_sends(harness, store):
    topic = await store.topics.by_code("nong-thon-moi")
    campaign_id = await store.campaigns.upsert("ntm-2026", "Chung tay xây dựng nông thôn mới", "Mỗi hộ một việc làm",
                                               topic.id)
    inside = await make_people(store, 6, channel="test", first_chat=300)  # xã Hải Lăng
    village = await make_people(store, 2, channel="test", first_chat=400, locality="19702-02")
    english = await make_people(store, 1, channel="test", first_chat=500, language="en")
    elsewhere = await make_people(store, 3, channel="test", first_chat=600, locality="19333")  # Đông Hà
    other_topic = await make_people(store, 2, channel="test", first_chat=700, topics=("an-sinh",))
    admin = await admin_of(harness, store)
    await turns(admin, [
        ("/thongbao", ["thuộc cuộc vận động nào", "Không thuộc cuộc vận động nào"]),
        ("[Chung tay xây dựng nông thôn mới]", ["Gõ nội dung thông báo"]),
        ("   ", ["Gõ nội dung thông báo"]),
        ("*Họp dân thôn Hà Lộc* tối thứ Bảy & _chủ nhật_: 5 < 6 hộ, xem https://quangtri.gov.vn/ntm_2026.",
         ["Gửi một ảnh"]),
    ])
    big = Media("photo", "poster", 21 * 1024 * 1024, "image/jpeg")
    assert "Ảnh quá lớn (tối đa 20 MB)" in render(await admin.send(admin._event("media", text="", media=big)))
    await turns(admin, [
        ("[Bỏ qua]", ["Nút bấm kèm thông báo", "✅ 💬 Góp ý ngay"]),
        ("[Thêm nút đường dẫn]", ["Gửi đường dẫn"]),
        ("javascript:alert(1)", ["phải bắt đầu bằng http"]),
        ("https://quangtri.gov.vn/ntm", ["Đường dẫn: https://quangtri.gov.vn/ntm"]),
        ("[Tiếp tục]", ["bản tiếng Anh"]),
        ("*Village meeting* on Saturday", ["Người nhận", "Lĩnh vực: Xây dựng nông thôn mới",
                                                 "Số người sẽ nhận: <b>12</b>"]),
        ("[Thêm địa bàn]", ["Chọn địa bàn", "!Ông/Bà"]),
        ("hai lang", []),
        ("[xã Hải Lăng]", ["Chọn thôn, tổ dân phố"]),
        ("[Bỏ qua]", ["Địa bàn: xã Hải Lăng", "Số người sẽ nhận: <b>9</b>"]),
        ("[Tiếp tục]", ["Gửi khi nào"]),
        ("[Gửi ngay]", ["Xem trước", "Để ngừng nhận thông báo", "To stop receiving", "Xác nhận gửi",
                        "Số người: <b>9</b>", "ngay bây giờ"]),
        ("[Xác nhận gửi]", ["Đã ghi nhận thông báo #1"]),
    ])
    broadcast = await store.broadcasts.get(1)
    assert broadcast.campaign_id == campaign_id and broadcast.feedback and broadcast.status == "scheduled"
    assert broadcast.text_vi == ("<b>Họp dân thôn Hà Lộc</b> tối thứ Bảy &amp; <i>chủ nhật</i>: 5 &lt; 6 hộ, xem "
                                 '<a href="https://quangtri.gov.vn/ntm_2026">https://quangtri.gov.vn/ntm_2026</a>.')
    engine = engine_for(harness)
    await deliver(engine, 1)
    rows = await store.broadcasts.recipients(1)
    assert set(rows) == set(inside + village + english) and {r[0] for r in rows.values()} == {"sent"}
    assert not set(rows) & set(elsewhere + other_topic)
    (vi,) = sent_to(harness, "300")
    assert vi.text.startswith(harness.seen("<b>Họp dân thôn Hà Lộc</b>"))
    if harness.channel.capabilities.buttons:
        assert vi.text.endswith("gửi /dunggui.</i>")
        assert [o.label for row in vi.options for o in row] == ["🔗 Xem chi tiết", "💬 Góp ý ngay"]
        assert vi.options[1][0].data == f"1:new:gopy:{campaign_id}" and vi.options[0][0].url.startswith("https://")
    else:  # the link in the text, the feedback button a number to type
        assert "🔗 Xem chi tiết: https://quangtri.gov.vn/ntm\n1. 💬 Góp ý ngay" in vi.text and "<b>" not in vi.text
        assert "5 < 6 hộ" in vi.text and "<a " not in vi.text
    reader, feedback = harness.person("300", name="Người dân 300"), f"1:new:gopy:{campaign_id}"
    assert await reader.offers(feedback)
    assert "Để gửi góp ý" in render(await reader.choose(feedback))  # the feedback flow, asking consent first
    (en,) = sent_to(harness, "500")
    assert en.text.startswith(harness.seen("<b>Village meeting</b>")) and "To stop receiving" in en.text
    reports = [r for r in sent_to(harness, "9001") if "Thông báo #1" in r.text]
    finals = [r for r in reports if "đã gửi xong" in r.text]
    assert len(finals) == 1 and finals[0] is reports[-1]  # once, and the status message points to it
    assert harness.seen("<b>9</b>/9") in finals[0].text and " 0 tin/giây" not in finals[0].text
    assert " 9 tin/giây" in finals[0].text  # nine sent well within a second: nine a second, not zero
    audit = await store.audit.by_actor((await store.users.find("test", "9001")).id)
    assert "broadcast.created" in [a.action for a in audit]


async def test_a_recipient_who_stops_news_is_skipped(harness, store):
    ids = await make_people(store, 3, channel="test", first_chat=300)
    await store.users.update(ids[1], harness.clock(), news_enabled=0)  # /dunggui after the audience was counted
    now = harness.clock()
    created = await store.broadcasts.create(NewBroadcast(text_vi="Tin", scheduled_at=now), now)
    assert await store.broadcasts.start(created.id, now)
    await store.broadcasts.resolve(created.id)
    await store.users.update(ids[2], now, news_enabled=0)  # opts out while it is being sent
    engine = engine_for(harness)
    await engine.resume()
    await engine.wait(created.id)
    rows = await store.broadcasts.recipients(created.id)
    assert set(rows) == {ids[0], ids[2]} and rows[ids[2]][0] == "skipped" and rows[ids[0]][0] == "sent"


# ---- quiet hours -----------------------------------------------------------------------------------------


def test_quiet_hours_postpone_to_their_end():
    quiet = (time(21), time(7))
    at = lambda h, m=0, d=26: datetime(2026, 11, d, h, m, tzinfo=TZ)  # noqa: E731
    assert not in_quiet(at(20, 59), quiet, TZ) and in_quiet(at(21), quiet, TZ)
    assert in_quiet(at(6, 59), quiet, TZ) and not in_quiet(at(7), quiet, TZ)
    assert plan_start(at(23), quiet, TZ, False) == at(7, d=27)
    assert plan_start(at(3), quiet, TZ, False) == at(7)
    assert plan_start(at(23), quiet, TZ, True) == at(23)
    assert plan_start(at(12), quiet, TZ, False) == at(12)
    assert not in_quiet(at(23), None, TZ)


async def test_quiet_hours_in_chat_and_in_the_engine(harness, store, clock):
    clock.now = datetime(2026, 11, 26, 15, 30, tzinfo=UTC)  # 22:30 in Vietnam
    await make_people(store, 2, channel="test", first_chat=300)
    admin = await admin_of(harness, store)
    compose = [("/thongbao", []), ("[Không thuộc cuộc vận động nào]", []), ("Nước sạch về thôn", []),
               ("[Bỏ qua]", []), ("[Tiếp tục]", []), ("[Không có bản tiếng Anh]", ["Số người sẽ nhận: <b>2</b>"]),
               ("[Tiếp tục]", []),
               ("[Gửi ngay]", ["giờ yên tĩnh (21:00–07:00)", "sẽ được gửi lúc 27/11/2026 07:00"])]
    await turns(admin, [*compose, ("[Đồng ý, gửi lúc 27/11/2026 07:00]", ["Thời gian gửi: 27/11/2026 07:00"]),
                        ("[Xác nhận gửi]", ["Đã hẹn gửi thông báo #1 lúc 27/11/2026 07:00"])])
    await turns(admin, [*compose, ("[Vẫn gửi ngay trong giờ yên tĩnh]", ["gửi cả trong giờ yên tĩnh"]),
                        ("[Xác nhận gửi]", ["Đã ghi nhận thông báo #2"])])
    await turns(admin, [("/thongbao", []), ("[Không thuộc cuộc vận động nào]", []), ("Lịch cắt điện", []),
                        ("[Bỏ qua]", []), ("[Tiếp tục]", []), ("[Không có bản tiếng Anh]", []), ("[Tiếp tục]", []),
                        ("[Hẹn giờ]", ["Gõ ngày giờ gửi"]), ("hôm nay", ["Chưa đúng dạng ngày giờ"]),
                        ("25/11/2026 08:00", ["đã qua"]), ("26/11/2026 23:15", ["sẽ được gửi lúc 27/11/2026 07:00"])])
    engine = engine_for(harness, quiet=(time(21), time(7)))
    # A broadcast due now without the override (as the command line may write it) waits too.
    late = await store.broadcasts.create(NewBroadcast(text_vi="Muộn", scheduled_at=clock()), clock())
    await engine.tick(clock())
    assert set(engine.runs) == {2}
    await engine.wait(2)
    assert (await store.broadcasts.get(1)).status == "scheduled"
    assert (await store.broadcasts.get(late.id)).status == "scheduled"
    clock.now = datetime(2026, 11, 27, 0, 0, tzinfo=UTC)  # 07:00
    await engine.tick(clock())
    assert set(engine.runs) == {1, late.id}
    await engine.wait(1)
    await engine.wait(late.id)
    assert (await store.broadcasts.get(1)).status == "done"


async def test_progress_is_edited_in_place_or_where_a_channel_cannot_edit_sent_at_most_every_30_s(harness, store,
                                                                                                   clock):
    admin = await admin_of(harness, store)
    await make_people(store, 3, channel="test", first_chat=300)
    broadcast = await store.broadcasts.create(NewBroadcast(
        text_vi="Nước sạch", scheduled_at=clock(), created_by=(await store.users.find("test", "9001")).id), clock())
    run = Run(engine_for(harness), broadcast.id)
    run.total = 3
    start = clock.now
    for seconds in (0, 3, 6, 29, 31, 45, 62):  # every few seconds, as the reporter runs
        clock.now = start + timedelta(seconds=seconds)
        await run._report(broadcast, final=False)
    await run._report(broadcast, final=True)
    reports = [(reply, ref) for chat, reply, ref in harness.channel.sent if chat == admin.id and "#1" in reply.text]
    if harness.channel.capabilities.edits:
        refs = [ref for _, ref in reports]  # one message, edited at every report; the final one also anew
        assert refs[0] is None and refs[1] is not None and refs[1:8] == [refs[1]] * 7 and refs[8:] == [None]
    else:  # at 0, 31 and 62 s, then the final one: each a new message, in plain text
        assert len(reports) == 4 and all(ref is None and not reply.options for reply, ref in reports)
        assert "<b>" not in "".join(reply.text for reply, _ in reports) and "đã gửi xong" in reports[-1][0].text


# ---- who may do what ---------------------------------------------------------------------------------------


async def test_citizens_and_cadres_cannot_broadcast_or_stop_even_with_forged_buttons(harness, store):
    admin = await admin_of(harness, store)
    await store.campaigns.upsert("ntm-2026", "Nông thôn mới", "…", None)
    await make_people(store, 2, channel="test", first_chat=300)
    now = harness.clock()
    pending = await store.broadcasts.create(NewBroadcast(text_vi="Sắp gửi", scheduled_at=now.replace(year=2027)), now)
    citizen = harness.person("1001")
    await turns(citizen, ONBOARD)
    for command in ("/thongbao", "/huythongbao", "/chiendich"):
        await turns(citizen, [(command, ["chỉ dành cho cán bộ hoặc quản trị viên"])])
    for payload in ("1:bcstop:1:y", "1:bcstop:1", "1:bcnew:1"):
        replies = await citizen.choose(payload)
        assert "chỉ dành cho cán bộ hoặc quản trị viên" in replies[0].text
    for payload in ("1:bc.preview:send", "1:cmp.show:qr", "1:cmp.list:new", "1:bc.camp:c:1"):
        replies = await citizen.choose(payload)
        assert citizen.stale in replies[0].text
    # A conversation left over from when the person was an admin, or forged into the database.
    draft = {"text_vi": "Giả mạo", "roles": [], "topics": [], "places": []}
    await store.conversations.save("test", "1001", Conversation("bc", "preview", draft), now)
    replies = await citizen.choose("1:bc.preview:send")
    assert "chỉ dành cho cán bộ hoặc quản trị viên" in replies[0].text
    await store.conversations.save("test", "1001", Conversation("cmp", "show", {"campaign_id": 1}), now)
    replies = await citizen.choose("1:cmp.show:qr")
    assert all(r.document is None for r in replies)
    cadre = harness.person("8001")
    await cadre.say("/huongdan")
    await store.users.update((await store.users.find("test", "8001")).id, now, role="cadre")
    await turns(cadre, [("/thongbao", ["chỉ dành cho"]), ("/huythongbao", ["chỉ dành cho"])])
    # An admin demoted while composing cannot send what they composed.
    await turns(admin, [("/thongbao", []), ("[Không thuộc cuộc vận động nào]", []), ("Tin thử", []), ("[Bỏ qua]", []),
                        ("[Tiếp tục]", []), ("[Không có bản tiếng Anh]", []), ("[Tiếp tục]", []),
                        ("[Gửi ngay]", ["Xác nhận gửi"])])
    await store.users.update((await store.users.find("test", "9001")).id, now, role="citizen")
    await turns(admin, [("[Xác nhận gửi]", ["chỉ dành cho cán bộ hoặc quản trị viên"])])
    assert [b.id for b in await store.broadcasts.recent()] == [pending.id]
    assert (await store.broadcasts.get(pending.id)).status == "scheduled"
    denied = [e for e in await store.audit.recent(100) if e.action == "denied"]
    assert len(denied) >= 6


async def test_admin_stops_a_scheduled_broadcast(harness, store):
    admin = await admin_of(harness, store)
    now = harness.clock()
    later = await store.broadcasts.create(NewBroadcast(text_vi="<b>Tiêm chủng</b> thứ Hai",
                                                       scheduled_at=now.replace(year=2027)), now)
    await turns(admin, [("/huythongbao", ["Chọn thông báo cần dừng", "#1 · chờ gửi · Tiêm chủng thứ Hai"]),
                        ("[#1]", ["Dừng thông báo #1?"]), ("[Dừng hẳn]", ["Đã dừng thông báo #1"]),
                        ("/huythongbao", ["Hiện không có thông báo nào"])])
    assert (await store.broadcasts.get(later.id)).status == "cancelled"


# ---- the audience ------------------------------------------------------------------------------------------


async def test_audience_topics_places_roles_and_who_never_receives(store, clock):
    hai_lang = (await store.localities.by_code("19702")).id
    village = (await store.localities.by_code("19702-02")).id
    ntm, an_sinh = (await store.topics.by_code("nong-thon-moi")).id, (await store.topics.by_code("an-sinh")).id
    a = await make_people(store, 10, first_chat=1000)
    b = await make_people(store, 5, first_chat=2000, locality="19702-02")
    await make_people(store, 4, first_chat=3000, locality="19333")
    await make_people(store, 3, first_chat=4000, topics=("an-sinh",))
    await make_people(store, 2, first_chat=5000, news=False)  # /dunggui
    await make_people(store, 2, first_chat=6000, reachable=False)  # blocked the bot
    await make_people(store, 2, first_chat=7000, consent=False)  # withdrew consent for news
    await make_people(store, 2, first_chat=8000, role="cadre", consent=False)  # staff: no consent needed
    await store.users.erase(a[0], "vi-test", clock(), marker="đã xóa")  # deleted their data
    await store.users.ensure("telegram", "9999", "9999", "Chưa bắt đầu", "vi", clock())  # never onboarded
    count = store.broadcasts.count_audience
    assert await count(Audience()) == 9 + 5 + 4 + 3 + 2
    assert await count(Audience(topics=(ntm,), localities=(hai_lang,))) == 9 + 5 + 2
    assert await count(Audience(topics=(ntm,), localities=(hai_lang,), roles=("citizen",))) == 9 + 5
    assert await count(Audience(topics=(ntm, an_sinh), localities=(hai_lang,))) == 9 + 5 + 3 + 2
    assert await count(Audience(localities=(village,))) == 5
    assert await count(Audience(roles=("cadre", "admin"))) == 2
    now = clock()
    created = await store.broadcasts.create(NewBroadcast(
        text_vi="x", scheduled_at=now, audience=Audience(topics=(ntm,), localities=(hai_lang,))), now)
    assert await store.broadcasts.resolve(created.id, batch=7) == 16
    assert await store.broadcasts.resolve(created.id, batch=7) == 16
    assert set(b) <= set(await store.broadcasts.recipients(created.id))


async def test_a_person_on_two_linked_channels_is_one_recipient(store, clock):
    """Where their account is kept; the linked account's settings are those from before the link (news on, here)."""
    [kept] = await make_people(store, 1, first_chat=1000)
    [linked] = await make_people(store, 1, channel="zalo", first_chat=1000)
    ttl = timedelta(minutes=15)
    await store.links.redeem(await store.links.new_code(kept, clock(), ttl), linked, "zalo", clock(), ttl)
    assert await store.broadcasts.count_audience(Audience()) == 1
    created = await store.broadcasts.create(NewBroadcast(text_vi="x", scheduled_at=clock()), clock())
    assert await store.broadcasts.resolve(created.id) == 1
    assert set(await store.broadcasts.recipients(created.id)) == {kept}


# ---- the admin's HTML ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("text", "key"), [
    ("<b>x", "richtext.unclosed"), ("<b><i>x</b></i>", "richtext.wrong_close"), ("x</b>", "richtext.unexpected_close"),
    ("<img src=x>", "richtext.unknown_tag"), ("a < b", "richtext.stray_lt"), ('<a href="javascript:x">y</a>',
                                                                             "richtext.bad_link"),
    ('<b onclick="x">y</b>', "richtext.bad_attribute"), ('<span class="red">y</span>', "richtext.bad_span"),
])
def test_html_refused_precisely(text, key):
    with pytest.raises(HtmlProblem) as problem:
        check(text)
    assert problem.value.key == key and "at" in problem.value.values


def test_html_accepted_and_normalised():
    checked = check('<b>Đậm</b> & <a href="https://a.vn/?x=1&y=2">link</a> <tg-spoiler>bí mật</tg-spoiler> '
                    '<span class="tg-spoiler">s</span> <pre><code class="language-python">x</code></pre> 3 > 2')
    assert checked.html.startswith("<b>Đậm</b> &amp; <a href=\"https://a.vn/?x=1&amp;y=2\">")
    assert checked.plain == "Đậm & link bí mật s x 3 > 2" and checked.length == len(checked.plain)


# ---- campaigns in chat ---------------------------------------------------------------------------------------


async def test_admin_creates_edits_and_prints_a_campaign_which_opens_the_bot(harness, store):
    admin = await admin_of(harness, store)
    await turns(admin, [
        ("/chiendich", ["Các cuộc vận động", "Tạo cuộc vận động mới"]),
        ("[Tạo cuộc vận động mới]", ["mã cuộc vận động"]),
        ("ntm 2026", ["Mã chỉ gồm"]),
        ("ntm-hai-lang", ["tên cuộc vận động"]),
        ("Nông thôn mới kiểu mẫu Hải Lăng", ["nội dung giới thiệu"]),
        ("ngắn", ["Cần dài từ 10 đến 1000"]),
        ("Mỗi thôn một tuyến đường hoa, mỗi hộ một hàng rào xanh.", ["thuộc lĩnh vực nào"]),
        ("[Xây dựng nông thôn mới]", ["thời gian của cuộc vận động"]),
        ("31/12/2026 - 01/01/2026", ["Chưa đúng dạng"]),
        ("01/01/2026 - 31/12/2026", ["tên tiếng Anh"]),
        ("[Bỏ qua]", ["giới thiệu bằng tiếng Anh"]),
        ("[Bỏ qua]", ["Đã tạo cuộc vận động", "ntm-hai-lang", "01/01/2026 – 31/12/2026", "Kết quả",
                      "https://t.me/danvan_test_bot?start=c_ntm-hai-lang", "Ý kiến gửi từ cuộc vận động: 0"]),
    ])
    replies = await admin.click("Mã QR")
    (qr,) = [r for r in replies if r.document is not None]
    assert qr.document.content.startswith(PNG) and qr.document.mime == "image/png"
    await turns(admin, [("[Sửa]", ["Sửa mục nào"]), ("[Tên tiếng Anh]", ["tên tiếng Anh"]),
                        ("Model new rural Hải Lăng", ["Đã lưu: Tên tiếng Anh", "Tiếng Anh: Model new rural Hải Lăng"])])
    campaign = await store.campaigns.by_code("ntm-hai-lang")
    assert campaign.starts_on == "2026-01-01" and campaign.title_en == "Model new rural Hải Lăng"
    citizen = harness.person("1001")
    await turns(citizen, ONBOARD)
    await turns(citizen, [
        ("/start c_ntm-hai-lang", ["Nông thôn mới kiểu mẫu Hải Lăng", "Góp ý ngay"]),
        ("[Góp ý ngay]", ["về địa bàn xã Hải Lăng"]),
        ("[Đúng]", []), ("Đề nghị làm đường hoa ở thôn 2", []), ("[Tiếp tục]", []), ("[Gửi kèm tên]", []),
        ("[Gửi]", ["GY-26-000001"]),
    ])
    stats = await store.campaigns.stats(campaign.id)
    assert stats.opens == 1 and stats.cases == 1


# ---- the command line ------------------------------------------------------------------------------------------


@pytest.fixture
def cli_env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    for name in ("TELEGRAM_BOT_TOKEN", "TELEGRAM_WEBHOOK_URL", "TELEGRAM_WEBHOOK_SECRET", "DANVAN_TZ",
                 "DANVAN_QUIET_HOURS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("DANVAN_DB", str(tmp_path / "cli.db"))
    return tmp_path


CAMPAIGNS = """\
campaigns:
  - code: ntm-2026
    title_vi: Chung tay xây dựng nông thôn mới nâng cao
    title_en: Together for advanced new rural areas
    description_vi: Mỗi hộ một việc làm cụ thể.
    topic: nong-thon-moi
    starts_on: 2026-01-01
    ends_on: 2026-12-31
  - code: dvk-2026
    title_vi: Dân vận khéo 2026
    description_vi: Nhân rộng mô hình hay.
"""

BROADCAST = """\
campaign: ntm-2026
text_vi: |
  <b>Ngày thứ Bảy xanh</b>
  Mời bà con ra quân dọn vệ sinh đường làng.
text_en: <b>Green Saturday</b>
feedback_button: true
link: https://quangtri.gov.vn/ntm
audience:
  topics: [nong-thon-moi]
  localities: ["19702"]
  roles: [citizen]
at: "27/11/2026 22:00"
"""


def test_cli_campaigns_and_scripted_broadcasts(cli_env, capsys, monkeypatch):
    monkeypatch.setattr("bot.cli.utc_now", lambda: datetime(2026, 11, 26, 3, 0, tzinfo=UTC))  # BROADCAST's "at" ahead
    (cli_env / "campaigns.yaml").write_text(CAMPAIGNS, encoding="utf-8")
    assert main(["campaign", "load", "campaigns.yaml"]) == 0
    assert "ntm-2026, dvk-2026" in capsys.readouterr().out
    (cli_env / "bad.yaml").write_text(CAMPAIGNS.replace("nong-thon-moi", "no-such-topic"), encoding="utf-8")
    assert main(["campaign", "load", "bad.yaml"]) == 1
    assert "không có lĩnh vực 'no-such-topic'" in capsys.readouterr().err
    dates = CAMPAIGNS.replace("ntm-2026", "ntm-2027") + "    starts_on: 2026-05-01\n    ends_on: 2026-04-30\n"
    (cli_env / "dates.yaml").write_text(dates, encoding="utf-8")
    assert main(["campaign", "load", "dates.yaml"]) == 1
    assert "dvk-2026: ends_on 2026-04-30 ở trước starts_on 2026-05-01" in capsys.readouterr().err
    assert main(["campaign", "stats", "ntm-2027"]) == 1  # the good campaign before it was not saved either
    capsys.readouterr()
    (cli_env / "broken.yaml").write_text("campaigns: [", encoding="utf-8")
    assert main(["campaign", "load", "broken.yaml"]) == 1
    assert "không đúng cú pháp YAML" in capsys.readouterr().err
    assert main(["campaign", "qr", "ntm-2026", "--out", "qr.png", "--web"]) == 0
    assert (cli_env / "qr.png").read_bytes().startswith(PNG)
    assert "?start=c_ntm-2026" in capsys.readouterr().out
    assert main(["campaign", "qr", "nope", "--out", "x.png"]) == 1
    (cli_env / "send.yaml").write_text(BROADCAST, encoding="utf-8")
    assert main(["broadcast", "send", "send.yaml"]) == 0
    out = capsys.readouterr().out
    assert "Thông báo #1" in out and "28/11/2026 07:00" in out and "sau giờ yên tĩnh" in out
    (cli_env / "bad-html.yaml").write_text(BROADCAST.replace("</b>\n", "\n", 1), encoding="utf-8")
    assert main(["broadcast", "send", "bad-html.yaml"]) == 1
    assert "text_vi: Thẻ «b»" in capsys.readouterr().err
    assert main(["broadcast", "list"]) == 0
    assert "#1  scheduled 28/11/2026 07:00" in capsys.readouterr().out
    assert main(["campaign", "stats", "ntm-2026"]) == 0
    out = capsys.readouterr().out
    assert "01/01/2026 – 31/12/2026" in out and "người được gửi" in out
    monkeypatch.setenv("LANG", "en_GB.UTF-8")  # the operator's terminal speaks English
    assert main(["campaign", "stats", "ntm-2026"]) == 0
    assert "people addressed" in capsys.readouterr().out
    assert main(["broadcast", "cancel", "1"]) == 0
    assert "Announcement #1 stopped." in capsys.readouterr().out
    assert main(["broadcast", "cancel", "1"]) == 1
    assert "Announcement #1 is not being sent." in capsys.readouterr().err

    async def check() -> None:
        store = await Store.open(cli_env / "cli.db")
        try:
            broadcast = await store.broadcasts.get(1)
            campaign = await store.campaigns.by_code("ntm-2026")
            assert broadcast.campaign_id == campaign.id and broadcast.feedback and broadcast.status == "cancelled"
            assert broadcast.audience.roles == ("citizen",) and len(broadcast.audience.localities) == 1
            assert broadcast.text_en == "<b>Green Saturday</b>" and campaign.ends_on == "2026-12-31"
        finally:
            await store.close()

    asyncio.run(check())


@pytest.mark.filterwarnings("error::PIL.Image.DecompressionBombWarning")
def test_a_scripted_broadcast_s_photo_is_cleaned_and_a_bad_one_refused(cli_env, capsys, monkeypatch):
    monkeypatch.setattr("bot.cli.utc_now", lambda: datetime(2026, 11, 26, 3, 0, tzinfo=UTC))
    (cli_env / "campaigns.yaml").write_text(CAMPAIGNS, encoding="utf-8")
    assert main(["campaign", "load", "campaigns.yaml"]) == 0
    (cli_env / "poster.jpg").write_bytes(phone_photo())
    (cli_env / "bomb.png").write_bytes(encoded(Image.new("L", (10000, 10000)), "PNG"))
    (cli_env / "text.jpg").write_text("không phải ảnh", encoding="utf-8")
    for name, said in (("bomb.png", "quá nhiều điểm ảnh"), ("text.jpg", "không đọc được ảnh")):
        (cli_env / "bad.yaml").write_text(BROADCAST + f"photo: {name}\n", encoding="utf-8")
        assert main(["broadcast", "send", "bad.yaml"]) == 1
        err = capsys.readouterr().err
        assert f"{name}: " in err and said in err
    (cli_env / "send.yaml").write_text(BROADCAST + "photo: poster.jpg\n", encoding="utf-8")
    assert main(["broadcast", "send", "send.yaml"]) == 0

    async def stored() -> bytes:
        store = await Store.open(cli_env / "cli.db")
        try:
            return await store.files.get((await store.broadcasts.get(1)).photo_sha256)
        finally:
            await store.close()

    photo = asyncio.run(stored())
    assert opened(photo).size == (1920, 2560) and not gps_of(photo) and b"Exif" not in photo


async def test_demo_announcements_are_seeded_once(tmp_path, clock):
    from bot.demo import content, seed_demo

    store = await Store.open(tmp_path / "demo.db")
    try:
        await seed_demo(store, clock())
        first = [(b.id, b.status, await store.broadcasts.counts(b.id)) for b in await store.broadcasts.recent()]
        await seed_demo(store, clock())
        again = [(b.id, b.status, await store.broadcasts.counts(b.id)) for b in await store.broadcasts.recent()]
        stats = await store.campaigns.stats((await store.campaigns.by_code("vi-nguoi-ngheo")).id)
    finally:
        await store.close()
    assert first == again and len(first) == len(content()["broadcasts"])
    assert {status for _, status, _ in first} == {"done", "scheduled"} and stats.delivered > 0


def test_new_commands_have_help(capsys):
    for argv in (["campaign", "load", "--help"], ["campaign", "qr", "--help"], ["campaign", "stats", "--help"],
                 ["broadcast", "send", "--help"], ["broadcast", "list", "--help"], ["broadcast", "cancel", "--help"]):
        with pytest.raises(SystemExit) as exit_:
            main(argv)
        assert exit_.value.code == 0
    assert "usage: danvan" in capsys.readouterr().out


@pytest.mark.parametrize(("typed", "sent", "read"), [
    ("5 < 6 & 7 > 2", "5 &lt; 6 &amp; 7 &gt; 2", "5 < 6 & 7 > 2"),
    ("*Họp dân* lúc _19 giờ_", "<b>Họp dân</b> lúc <i>19 giờ</i>", "Họp dân lúc 19 giờ"),
    ("2*3*4 = 24, snake_case_name, a * b", "2*3*4 = 24, snake_case_name, a * b", "2*3*4 = 24, snake_case_name, a * b"),
    ("Xem https://a.vn/x_y_z?a=1&b=2.", 'Xem <a href="https://a.vn/x_y_z?a=1&amp;b=2">https://a.vn/x_y_z?a=1&amp;b=2</a>.',
     "Xem https://a.vn/x_y_z?a=1&b=2."),
    ("<b>không phải thẻ</b>", "&lt;b&gt;không phải thẻ&lt;/b&gt;", "<b>không phải thẻ</b>"),
    ("*đậm\nhai dòng*", "*đậm\nhai dòng*", "*đậm\nhai dòng*"),
])
def test_simple_marks_become_html_and_nothing_is_refused(typed, sent, read):
    checked = marked(typed)
    assert (checked.html, checked.plain) == (sent, read)
    assert check(checked.html).html == checked.html  # the HTML Telegram and the web chat accept
