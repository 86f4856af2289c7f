"""An admin makes a survey in the chat, step by step, sees it before publishing, and people can answer it at once;
nothing is saved before «Đăng»."""

from __future__ import annotations

import asyncio

import pytest

from tests.dialog import turns
from tests.test_roles import make_admin
from tests.test_surveys import resident

MAKE = [
    ("/khaosat", ["Tạo khảo sát"]),
    ("[Tạo khảo sát]", ["gõ tên khảo sát"]),
    ("Giờ thu gom rác", ["lời giới thiệu"]),
    ("ngắn", ["từ 10 đến 1000", "lời giới thiệu"]),
    ("Tổ dân phố muốn biết giờ thu gom rác nào thuận tiện cho bà con.", ["kết thúc vào ngày nào"]),
    ("31/02/2026", ["ngày có thật"]),
    ("01/01/2027", ["ẩn danh"]),
    ("[Ẩn danh]", ["Câu hỏi thứ 1", "Một lựa chọn"]),
    ("[Một lựa chọn]", ["Câu 1 (Một lựa chọn)"]),
    ("Giờ nào thuận tiện nhất?", ["mỗi lựa chọn một dòng"]),
    ("Sáng sớm", ["Cần từ 2 đến 10 lựa chọn"]),
    ("Sáng sớm\nChiều tối\n", ["Đã thêm câu 1", "Câu hỏi thứ 2", "Xem trước"]),
    ("[Một con số]", ["Câu 2 (Một con số)"]),
    ("Nhà Ông/Bà thải bao nhiêu túi rác mỗi ngày?", ["khoảng số"]),
    ("5-1", ["số đầu nhỏ hơn"]),
    ("0-20", ["Đã thêm câu 2"]),
    ("[Xem trước]", ["Giờ thu gom rác", "23:59 ngày 01/01/2027", "ẩn danh", "1. Giờ nào thuận tiện nhất?",
                     "Sáng sớm, Chiều tối", "2. Nhà Ông/Bà thải", "0–20", "Đăng"]),
]


async def test_an_admin_makes_publishes_and_people_answer(harness, store):
    admin = await make_admin(harness, store)
    await turns(admin, MAKE)
    assert await store.surveys.all() == []  # nothing before «Đăng»
    await turns(admin, [("[Đăng]", ["Đã đăng khảo sát", "ks-261126-1", "start=s_ks-261126-1", "Gửi lời mời"])])
    survey = await store.surveys.by_code("ks-261126-1")
    assert survey.anonymous and [q.kind for q in survey.questions] == ["single", "number"]
    p = await resident(harness)
    await turns(p, [("/khaosat", ["Giờ thu gom rác"]), ("[Giờ thu gom rác]", ["Câu 1/2", "Sáng sớm"]),
                    ("[Chiều tối]", ["Câu 2/2"]), ("3", ["Cảm ơn Ông/Bà"])])
    assert any(e.action == "survey.created" for e in await store.audit.by_actor(
        (await store.users.find("test", "9000")).id))


async def test_a_survey_being_made_can_be_discarded_and_citizens_cannot_make_one(harness, store):
    admin = await make_admin(harness, store)
    await turns(admin, [*MAKE, ("[Bỏ]", ["chưa có gì được lưu"])])
    assert await store.surveys.all() == []
    p = await resident(harness)
    await turns(p, [("/khaosat", ["!Tạo khảo sát"])])
    await p.choose("1:svb")
    assert "chỉ dành cho cán bộ" in p.text()


@pytest.mark.backends
async def test_two_admins_publishing_at_once_make_two_surveys(harness, store):
    """Each publish gets a code of its own: the second never overwrites the first survey."""
    first = await make_admin(harness, store)
    second = await make_admin(harness, store, user_id="9001")
    await turns(first, MAKE)
    await turns(second, [(said.replace("Giờ thu gom rác", "Ngày ra quân"),
                          [e.replace("Giờ thu gom rác", "Ngày ra quân") for e in expected]) for said, expected in MAKE])
    await asyncio.gather(first.click("Đăng"), second.click("Đăng"))
    surveys = {s.code: s.title_vi for s in await store.surveys.all()}
    assert sorted(surveys.values()) == ["Giờ thu gom rác", "Ngày ra quân"]
    assert sorted(surveys) == ["ks-261126-1", "ks-261126-2"]
    for admin, title in ((first, "Giờ thu gom rác"), (second, "Ngày ra quân")):
        [code] = [c for c, t in surveys.items() if t == title]
        assert f"start=s_{code}" in admin.text()
