"""End to end in the web chat: a resident sends a case with a photo, the cadre answers, the resident
sees the answer and rates it — each persona in its own chat, as in the demo."""

from __future__ import annotations

from tests.test_web_api import build_app, client, png, text_of


async def test_case_from_the_web_chat_answered_and_rated(tmp_path, clock):
    app = await build_app(tmp_path, clock, demo=True)
    try:
        async with client(app) as web:
            await web.open()
            await web.post("/api/persona", {"persona": "lan"})
            await web.say("/phananh")
            await web.click("An sinh xã hội")
            await web.click("Đúng", exact=True)
            answer = await web.http.post("/api/upload", content=png(), headers={"X-CSRF-Token": web.csrf,
                                                                                 "Content-Type": "image/png"})
            assert answer.status_code == 200 and "Đã nhận ảnh" in text_of(answer.json()["messages"])
            await web.say("Nhà bà Hoa ở thôn 1 bị tốc mái sau bão, cần hỗ trợ khẩn cấp.")
            await web.click("Tiếp tục")
            await web.click("Gửi kèm tên", exact=True)
            await web.click("Khẩn cấp", exact=True)
            sent = text_of((await web.click("✅ Gửi", exact=True))[-1:])  # after the review, marked as pressed
            assert "PA-26-" in sent
            code = sent.split("<b>")[1].split("</b>")[0]

            await web.post("/api/persona", {"persona": "cadre"})
            pushed = text_of(await web.history())
            assert "Phản ánh khẩn cấp" in pushed and code in pushed  # pushed to the cadre at once
            await web.click("Mở ý kiến")
            shown = await web.history()
            assert any(m.get("photo") for m in shown), "the photo travels with the case"
            assert "Nguyễn Thị Lan" in text_of(shown)
            await web.click("Trả lời", exact=True)
            await web.say("Xã đã cử tổ thanh niên tình nguyện đến lợp lại mái nhà ngay chiều nay.")
            await web.click("Gửi", exact=True)  # after the preview

            await web.post("/api/persona", {"persona": "lan"})
            told = text_of(await web.history())
            assert "Xã đã cử tổ thanh niên" in told and "Ban Dân vận Đảng ủy xã Hải Lăng" in told
            await web.click("Xem", exact=True)
            thanked = text_of(await web.click("Hài lòng"))
            assert "Cảm ơn Ông/Bà đã đánh giá" in thanked
        case = await app.store.cases.by_code(code)
        assert case.rating == "good" and case.status == "answered" and case.urgent
    finally:
        await app.stop()


async def test_demo_cases_are_seeded_once_and_visible_from_both_sides(tmp_path, clock):
    from bot.demo import seed_demo

    app = await build_app(tmp_path, clock, demo=True)
    try:
        await seed_demo(app.store, clock())
        lan = await app.store.users.find("web", "demo-lan")
        mine, total = await app.store.cases.of_user(lan.id)
        assert total == 2 and {c.status for c in mine} == {"answered", "acknowledged"}
        async with client(app) as web:
            await web.open()
            await web.post("/api/persona", {"persona": "cadre"})
            inbox = await web.say("/hopthu")
            labels = [o["label"] for m in inbox for row in m.get("options", []) for o in row]
            assert "Quá hạn (1)" in labels and "Đang mở (2) •" in labels  # the anonymous report is 20 days old
            await web.post("/api/persona", {"persona": "lan"})
            mine = await web.say("/theodoi")
            labels = [o["label"] for m in mine for row in m.get("options", []) for o in row]
            assert "PA-26-000001 · Đoạn đường bê tông liên…" in labels  # what it is about; its status in the text
            assert "PA-26-000001</b> · Xây dựng nông thôn mới · đã trả lời" in text_of(mine)
    finally:
        await app.stop()
