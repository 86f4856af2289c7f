"""Turn tables for every onboarding path."""

from __future__ import annotations

import pytest

from tests.dialog import ONBOARD, render, turns

pytestmark = pytest.mark.backends


async def test_full_onboarding_records_everything(harness, store):
    lan = harness.person()
    await turns(lan, ONBOARD)
    user = await store.users.find("test", "1001")
    assert user.onboarded and user.news_enabled
    loc = await store.localities.get(user.locality_id)
    assert loc.name == "Hải Lăng" and loc.level == 1
    consents = await store.users.consents(user.id)
    # The sensitive purpose is asked only when its topic is chosen
    assert {p: c.granted for p, c in consents.items()} == {"news": True, "opinions": True}
    assert all(c.text_version.startswith("vi-") and c.at for c in consents.values())
    topics = await store.topics.all()
    assert await store.users.topic_ids(user.id) == {t.id for t in topics if t.code == "nong-thon-moi"}
    assert "Cài đặt" in lan.text()  # the main menu follows the summary
    assert await store.conversations.get("test", "1001") is None


async def test_consent_versions_differ_by_text(harness, store):
    lan = harness.person()
    await turns(lan, ONBOARD[:3])
    history = await store.users.consent_history((await store.users.find("test", "1001")).id)
    assert len({c.text_version for c in history}) == 2


async def test_decline_everything_asks_no_personal_data(harness, store):
    hung = harness.person("2002")
    await turns(hung, [
        ("/start", ["Mục đích 1/2"]),
        ("[Không đồng ý]", ["Mục đích 2/2"]),
        ("[Không đồng ý]", ["không lưu địa bàn", "!xã, phường nào", "!lĩnh vực nào"]),
    ])
    user = await store.users.find("test", "2002")
    assert user.onboarded and user.locality_id is None and not user.news_enabled
    assert await store.users.topic_ids(user.id) == set()


async def test_opinions_only_asks_locality_but_not_topics(harness, store):
    p = harness.person("2003")
    await turns(p, [
        ("/start", []), ("[Không đồng ý]", []),
        ("[Đồng ý]", ["xã, phường nào"]),
        ("dong ha", ["Đông Hà"]),
    ])
    await p.click("phường Đông Hà")
    await turns(p, [("[Bỏ qua]", ["Thông tin của Ông/Bà", "!lĩnh vực nào"])])


async def test_read_full_notice_then_consent(harness):
    p = harness.person()
    await turns(p, [
        ("/start", []),
        ("[Đọc thông báo đầy đủ]", ["Thông báo về xử lý dữ liệu cá nhân", "Thời gian lưu", "Mục đích 1/2"]),
        ("[Đồng ý]", ["Mục đích 2/2"]),
    ])


async def test_search_without_diacritics_and_pagination(harness):
    p = harness.person()
    await turns(p, ONBOARD[:3])
    await turns(p, [
        ("[Sau »]", ["xã, phường nào", "!Tìm thấy"]),
        ("[« Trước]", ["xã, phường nào"]),
        ("khe sanh", ["thôn, tổ dân phố nào của xã Khe Sanh"]),
    ])


async def test_search_not_found_and_bad_lengths_reask(harness):
    p = harness.person()
    await turns(p, ONBOARD[:3])
    await turns(p, [
        ("xyz không có", ["Không tìm thấy", "«xyz không có»", "xã, phường nào"]),
        ("a", ["từ 2 đến 60", "xã, phường nào"]),
        ("x" * 61, ["từ 2 đến 60"]),
    ])
    answer = render(await p.sticker())
    assert "gõ tên xã" in answer and "xã, phường nào" in answer.split("gõ tên xã", 1)[1]


async def test_typed_village_and_other_commune(harness, store):
    p = harness.person()
    await turns(p, ONBOARD[:5])
    await turns(p, [
        ("[Chọn xã, phường khác]", ["xã, phường nào"]),
        ("lao bao", ["thôn, tổ dân phố nào của xã Lao Bảo"]),
    ])
    lao_bao = await store.localities.search("lao bao", level=1)
    village = (await store.localities.children(lao_bao[0].id))[0]
    await turns(p, [(village.name.lower(), ["lĩnh vực nào"]), ("[Xong]", [village.name])])


async def test_text_where_buttons_expected(harness):
    p = harness.person()
    await turns(p, [
        ("/start", []),
        ("có", ["chọn «Đồng ý» hoặc «Không đồng ý»", "Mục đích 1/2"]),
    ])


async def test_deep_link_locality_commune_and_village(harness, store):
    hai_lang = (await store.localities.search("hai lang", level=1))[0]
    p = harness.person("3001")
    await turns(p, [(f"/start l_{hai_lang.code}", ["Mục đích 1/2"]), ("[Đồng ý]", []),
                    ("[Đồng ý]", ["Địa bàn theo đường dẫn", "xã Hải Lăng", "thôn, tổ dân phố nào"])])
    village = (await store.localities.children(hai_lang.id))[0]
    q = harness.person("3002")
    await turns(q, [(f"/start l_{village.code}", []), ("[Đồng ý]", []),
                    ("[Không đồng ý]", ["lĩnh vực nào"]), ("[Xong]", [village.name, "xã Hải Lăng"])])


async def test_deep_link_campaign_preselects_topic(harness, store):
    topic = await store.topics.by_code("do-thi-van-minh")
    await store.campaigns.upsert("dtvm-dongha", "Đông Hà văn minh", "Chung tay xây dựng đô thị văn minh", topic.id)
    p = harness.person()
    await turns(p, [("/start c_dtvm-dongha", ["Đông Hà văn minh", "Mục đích 1/2"])])
    await turns(p, ONBOARD[1:6])
    assert "✅ Đô thị văn minh" in p.text()


async def test_bad_deep_links_get_a_clear_answer_and_a_normal_start(harness):
    for n, payload in enumerate(["l_99999999", "c_nope", "i_forged-token", "zzz", "l_", "x" * 80]):
        p = harness.person(f"40{n}")
        replies = await p.say(f"/start {payload}")
        text = "\n".join(r.text for r in replies)
        assert "không hợp lệ" in text or "Mã mời không đúng" in text, payload
        assert "Mục đích 1/2" in text, payload


async def test_start_is_always_safe_mid_flow_and_restarts(harness):
    p = harness.person()
    await turns(p, ONBOARD[:4])
    await turns(p, [("/start", ["Mục đích 1/2"])])


async def test_onboarded_start_shows_menu_and_campaign_adds_topic(harness, store):
    p = harness.person()
    await turns(p, ONBOARD)
    topic = await store.topics.by_code("dan-van-kheo")
    await store.campaigns.upsert("dvk-2026", "Dân vận khéo 2026", "Phong trào thi đua", topic.id)
    await turns(p, [("/start c_dvk-2026", ["Dân vận khéo 2026", "«Dân vận khéo»", "đã trở lại"])])
    user = await store.users.find("test", "1001")
    assert topic.id in await store.users.topic_ids(user.id)


async def test_restart_mid_onboarding_resumes_at_the_same_step(tmp_path, clock):
    from storage import Store
    from tests.dialog import Harness

    first = await Store.open(tmp_path / "r.db")
    p = Harness(first, clock).person()
    await turns(p, ONBOARD[:5])
    await first.close()
    second = await Store.open(tmp_path / "r.db")
    try:
        p2 = Harness(second, clock).person()
        p2.last = p.last  # the buttons still on the person's screen
        await turns(p2, ONBOARD[5:])
    finally:
        await second.close()


async def test_plain_text_before_start_and_after_onboarding(harness):
    p = harness.person()
    await turns(p, [("xin chào", ["/start"])])
    await turns(p, ONBOARD)
    await turns(p, [("xin chào", ["chọn một mục", "Cài đặt"])])


async def test_unknown_command_keeps_the_flow(harness, store):
    p = harness.person()
    await turns(p, ONBOARD[:3])
    await turns(p, [("/khongco", ["Không có lệnh /khongco"])])
    assert (await store.conversations.get("test", "1001")).step == "commune"


async def test_cancel_leaves_any_flow(harness, store):
    p = harness.person()
    await turns(p, ONBOARD[:2])
    await turns(p, [("/huy", ["Đã hủy"]), ("/huy", ["không có thao tác nào"])])
    assert await store.conversations.get("test", "1001") is None


async def test_english_speaker_gets_english(harness):
    p = harness.person("5005", language="en")
    await turns(p, [("/start", ["Welcome", "Purpose 1/2"]), ("[I agree]", ["Purpose 2/2"])])


async def test_the_first_message_is_a_short_greeting_with_the_notice_one_tap_away(harness):
    from bot.render import plain

    p = harness.person()
    replies = await p.say("/start")
    greeting = plain(replies[0].text).split("Mục đích 1/2")[0]  # without buttons, the question shares its message
    assert len(greeting) < 400, len(greeting)
    assert "Ban Dân vận Tỉnh ủy Quảng Trị" in greeting and "tự động" in greeting and "góp ý" in greeting
    await turns(p, [("[Đọc thông báo đầy đủ]", ["Thông báo về xử lý dữ liệu cá nhân", "Mục đích 1/2"])])


async def test_onboarding_asks_two_purposes_in_six_taps(harness, store):
    p = harness.person()
    await turns(p, ONBOARD)
    typed = [said for said, _ in ONBOARD[1:] if not said.startswith("[")]
    assert len(ONBOARD) - 1 - len(typed) == 6  # was 7, with the sensitive purpose asked of everyone
    history = await store.users.consent_history((await store.users.find("test", "1001")).id)
    assert [c.purpose for c in history] == ["news", "opinions"]


async def test_choosing_the_sensitive_topic_asks_its_consent_then_and_there(harness, store):
    p = harness.person()
    await turns(p, ONBOARD[:6])
    await turns(p, [
        ("[Góp ý văn kiện Đại hội]", ["dữ liệu cá nhân nhạy cảm", "!lĩnh vực nào"]),
        ("[Không đồng ý]", ["không được chọn", "▫️ Góp ý văn kiện Đại hội"]),
        ("[Góp ý văn kiện Đại hội]", ["dữ liệu cá nhân nhạy cảm"]),
        ("[Đồng ý]", ["✅ Góp ý văn kiện Đại hội"]),
        ("[Xong]", ["Góp ý văn kiện: có"]),
    ])
    user = await store.users.find("test", "1001")
    assert [(c.purpose, c.granted) for c in await store.users.consent_history(user.id)][2:] == [
        ("sensitive", False), ("sensitive", True)]
    sensitive = await store.topics.by_code("gop-y-van-kien")
    assert sensitive.id in await store.users.topic_ids(user.id)
