"""/caidat, /dunggui, /nhantin, /quyenriengtu, /dulieu, /xoadulieu, /huongdan."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from tests.dialog import ONBOARD, turns
from tests.schedule_kit import staff

pytestmark = pytest.mark.backends


async def onboarded(harness, user_id="1001"):
    p = harness.person(user_id)
    await turns(p, ONBOARD)
    return p


async def test_change_locality_topics_language(harness, store):
    p = await onboarded(harness)
    await turns(p, [
        ("/caidat", ["Thông tin của Ông/Bà", "thay đổi gì"]),
        ("[Địa bàn]", ["xã, phường nào"]),
        ("dong ha", []),
        ("[phường Đông Hà]", ["thôn, tổ dân phố nào"]),
        ("[Bỏ qua]", ["Đã lưu", "phường Đông Hà"]),
        ("[Lĩnh vực]", ["✅ Xây dựng nông thôn mới"]),
        ("[Xây dựng nông thôn mới]", ["▫️ Xây dựng nông thôn mới"]),
        ("[Đô thị văn minh]", ["✅ Đô thị văn minh"]),
        ("[Xong]", ["Đã lưu", "Lĩnh vực theo dõi: Đô thị văn minh"]),
        ("[Ngôn ngữ]", ["Choose a language"]),
        ("[English]", ["Saved", "Your profile", "Civilized urban areas"]),
        ("[Close]", ["You can choose"]),
    ])
    user = await store.users.find("test", "1001")
    assert user.language == "en"
    assert harness.channel.commands["1001"][0] == "start"  # the menu follows the language change


async def test_withdraw_and_give_consent_in_settings(harness, store):
    p = await onboarded(harness)
    await turns(p, [
        ("/caidat", []),
        ("[Sự đồng ý]", ["✅ Nhận tin", "▫️ Góp ý văn kiện"]),
        ("[Nhận tin]", ["Đã rút lại", "▫️ Nhận tin"]),
        ("[Góp ý văn kiện]", ["Đã ghi nhận sự đồng ý", "✅ Góp ý văn kiện"]),
    ])
    user = await store.users.find("test", "1001")
    consents = await store.users.consents(user.id)
    assert not consents["news"].granted and consents["sensitive"].granted
    assert not user.news_enabled


async def test_opt_out_and_in(harness, store):
    p = await onboarded(harness)
    await turns(p, [("/dunggui", ["không nhận thông báo nữa", "/nhantin"])])
    assert not (await store.users.find("test", "1001")).news_enabled
    await turns(p, [("/nhantin", ["nhận lại thông báo"])])
    assert (await store.users.find("test", "1001")).news_enabled


async def test_resume_without_news_consent_asks_for_it(harness, store):
    p = harness.person()
    await turns(p, [("/start", []), ("[Không đồng ý]", []), ("[Không đồng ý]", [])])
    await turns(p, [("/nhantin", ["cần đồng ý", "Mục đích 1/2"]), ("[Không đồng ý]", ["vẫn chưa nhận"])])
    assert not (await store.users.find("test", "1001")).news_enabled
    await turns(p, [("/nhantin", []), ("[Đồng ý]", ["nhận lại thông báo"])])
    user = await store.users.find("test", "1001")
    assert user.news_enabled and (await store.users.consents(user.id))["news"].granted


async def test_privacy_notice_and_help(harness):
    p = await onboarded(harness)
    await turns(p, [
        ("/quyenriengtu", ["Bên kiểm soát", "Ban Dân vận Tỉnh ủy Quảng Trị", "Thời gian lưu", "/xoadulieu"]),
        ("/huongdan", ["/caidat", "/dulieu", "!/moicanbo", "!/phamvi"]),
    ])


async def test_export_contains_everything_held(harness):
    p = await onboarded(harness)
    replies = await p.say("/dulieu")
    document = replies[-1].document
    assert document.filename.endswith(".json")
    data = json.loads(document.content)
    assert data["profile"]["display_name"] == "Nguyễn Thị Lan"
    assert data["profile"]["locality"]["name"] == "xã Hải Lăng, tỉnh Quảng Trị"
    assert data["topics"] == ["Xây dựng nông thôn mới"]
    assert [c["purpose"] for c in data["consents"]] == ["news", "opinions"]


REPORT = [("/phananh", []), ("[Khác]", []), ("[Đúng]", []), ("Đèn đường thôn Hà Lộc bị hỏng từ tuần trước.", []),
          ("[Tiếp tục]", []), ("[Gửi ẩn danh]", []), ("[Không khẩn cấp]", []), ("[Gửi]", ["PA-26-000001"])]


async def test_export_includes_cases_drafts_and_announcements(harness, store):
    p = await onboarded(harness)
    await turns(p, REPORT)
    await turns(p, [("/gopy", []), ("[Khác]", []), ("[Đúng]", []), ("Nên có thêm thùng rác ở chợ xã", [])])
    data = json.loads((await p.say("/dulieu"))[-1].document.content)
    [case] = data["cases"]
    assert case["code"] == "PA-26-000001" and case["anonymous"] is True  # their own, even when anonymous
    assert case["content"] == "Đèn đường thôn Hà Lộc bị hỏng từ tuần trước." and case["status"] == "new"
    assert case["history"] and case["files"] == []
    assert data["case_draft"]["content"] == "Nên có thêm thùng rác ở chợ xã"
    assert data["announcements"] == [] and data["campaigns_opened"] == []
    assert "task_reports" not in data and "digest_settings" not in data  # a citizen has none


async def test_export_of_a_cadre_includes_digest_settings_and_task_reports(harness, store):
    now = harness.clock()
    user_id = await staff(store, now, "8001", "cadre", communes=("Hải Lăng",))
    commune = (await store.localities.search("Hải Lăng", level=1))[0]
    task = await store.tasks.create("Báo cáo sơ kết", "", now + timedelta(days=10), {commune.id}, None, now)
    await store.tasks.report(task.id, user_id, "Đã gửi báo cáo", now)
    await store.digests.update(user_id, now, mode="weekly", weekday=0)
    data = json.loads((await harness.person("8001").say("/dulieu"))[-1].document.content)
    assert data["scope"]["localities"] == ["xã Hải Lăng, tỉnh Quảng Trị"]
    assert data["digest_settings"]["mode"] == "weekly" and data["digest_settings"]["weekday"] == 0
    [report] = data["task_reports"]
    assert report["task"] == "Báo cáo sơ kết" and report["note"] == "Đã gửi báo cáo" and report["file"] is None


async def test_changing_topics_keeps_a_half_written_case(harness, store):
    p = await onboarded(harness)
    await turns(p, [("/gopy", []), ("[Khác]", []), ("[Đúng]", []), ("Nên có thêm thùng rác ở chợ xã", [])])
    user = await store.users.find("test", "1001")
    await store.users.set_topics(user.id, set())
    assert (await store.cases.draft(user.id))["content"] == "Nên có thêm thùng rác ở chợ xã"


async def test_delete_after_confirmation(harness, store):
    p = await onboarded(harness)
    user = await store.users.find("test", "1001")
    await turns(p, [("/xoadulieu", ["không hoàn tác"]), ("[Không, giữ lại]", ["giữ nguyên"])])
    assert await store.users.find("test", "1001") is not None
    await turns(p, [("/gopy", []), ("[Khác]", []), ("[Đúng]", []), ("Nên có thêm thùng rác ở chợ xã", [])])
    assert await store.cases.draft(user.id) is not None
    now = harness.clock()
    mine, theirs, waiting = await store.journal.accept("test", [("u1", "1001", '"Nhà tôi ở xóm 3"'),
                                                                ("u2", "1002", "{}"), ("u3", "1001", "{}")], now)
    for entry in (mine, theirs):
        await store.journal.done(entry.id, now)
    await turns(p, [("/xoadulieu", []), ("[Xóa dữ liệu của tôi]", ["Đã xóa dữ liệu"])])
    # What they wrote leaves the inbound journal too, except an update still being handled.
    assert not await store.journal.accept("test", [("u2", "1002", "{}"), ("u3", "1001", "{}")], now)
    assert len(await store.journal.accept("test", [("u1", "1001", "{}")], now)) == 1
    assert await store.users.find("test", "1001") is None
    assert await store.cases.draft(user.id) is None  # a half-written case is theirs too
    erased = await store.users.get(user.id)
    assert erased.display_name is None and erased.chat_id is None and erased.external_id.startswith("deleted:")
    commune = await store.localities.get(erased.locality_id)
    assert commune.level == 1  # kept for statistics, no finer than the commune
    assert await store.users.topic_ids(user.id) == set()
    assert await store.users.consent_history(user.id) == []  # kept only as anonymous counts (consent_tallies)
    # Coming back is a fresh start.
    await turns(p, [("/start", ["Mục đích 1/2"])])


async def test_delete_keeps_village_out_of_statistics(harness, store):
    p = harness.person()
    await turns(p, ONBOARD[:5])
    await p.click(p.labels()[0])  # the first village
    await turns(p, [("[Xong]", [])])
    user = await store.users.find("test", "1001")
    assert (await store.localities.get(user.locality_id)).level == 2
    await turns(p, [("/xoadulieu", []), ("[Xóa dữ liệu của tôi]", [])])
    assert (await store.localities.get((await store.users.get(user.id)).locality_id)).level == 1


async def test_blocked_and_unblocked_mark_reachability(harness, store):
    from handlers.base import Inbound

    p = await onboarded(harness)
    await harness.router.handle(Inbound("test", "1001", "1001", "blocked"))
    assert not (await store.users.find("test", "1001")).reachable
    await harness.router.handle(Inbound("test", "1001", "1001", "unblocked"))
    assert (await store.users.find("test", "1001")).reachable
    del p


async def test_sensitive_consent_is_asked_in_settings_topics_and_withdrawn_there(harness, store):
    p = await onboarded(harness)
    await turns(p, [
        ("/caidat", []),
        ("[Lĩnh vực]", ["▫️ Góp ý văn kiện Đại hội"]),
        ("[Góp ý văn kiện Đại hội]", ["dữ liệu cá nhân nhạy cảm"]),
        ("[Đồng ý]", ["✅ Góp ý văn kiện Đại hội"]),
        ("[Xong]", ["Đã lưu", "Góp ý văn kiện Đại hội", "Góp ý văn kiện: có"]),
        ("[Sự đồng ý]", ["✅ Góp ý văn kiện"]),
        ("[Góp ý văn kiện]", ["Đã rút lại", "▫️ Góp ý văn kiện"]),
    ])
    user = await store.users.find("test", "1001")
    assert not (await store.users.consents(user.id))["sensitive"].granted
    sensitive = await store.topics.by_code("gop-y-van-kien")
    assert sensitive.id not in await store.users.topic_ids(user.id)  # following it said as much


async def test_export_is_summarised_in_the_chat_with_every_place_in_full(harness, store):
    p = harness.person()
    await turns(p, ONBOARD[:5])
    village = (await store.localities.children((await store.localities.search("hai lang", level=1))[0].id))[0]
    await p.click(village.name)
    await turns(p, [("[Xong]", [])])
    await turns(p, REPORT)
    full = f"{village.name}, xã Hải Lăng, tỉnh Quảng Trị"
    await turns(p, [("/dulieu", [
        "Dữ liệu bot đang lưu về Ông/Bà", "Tên: Nguyễn Thị Lan", f"Địa bàn: {full}",
        "Nhận tin: đồng ý lúc 26/11/2026 07:30", "Gửi góp ý, phản ánh: đồng ý lúc 26/11/2026 07:30",
        f"PA-26-000001 — phản ánh, kiến nghị · mới tiếp nhận · {full}", "tệp JSON"])])
    data = json.loads(p.last[-1].document.content)
    assert data["profile"]["locality"] == {"code": village.code, "name": full}
    assert [c["locality"] for c in data["cases"]] == [full]


async def test_export_of_someone_who_declined_everything_lists_their_answers(harness):
    p = harness.person()
    await turns(p, [("/start", []), ("[Không đồng ý]", []), ("[Không đồng ý]", [])])
    await turns(p, [("/dulieu", ["Tên: (chưa có)", "Nhận tin: không đồng ý lúc", "Ý kiến đã gửi</b>\n(chưa có)"])])
