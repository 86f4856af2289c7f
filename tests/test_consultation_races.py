"""Consultations when two things happen at once: a close in the instant between a person's step and its write,
a staff mark that does not take; and how much each button press reads."""

from __future__ import annotations

import pytest

from tests.dialog import ONBOARD, turns
from tests.test_consultation import READ_AND_COMMENT, consultation, staff

pytestmark = pytest.mark.backends

TEXT = "Đề nghị không nêu tên hộ vi phạm trên loa, chỉ nhắc nhở riêng."


async def commented(harness, store, clock):
    """A citizen who commented on paragraph 4 of section 2 (comment #1), and a cadre of their commune."""
    await consultation(store, clock)
    citizen = harness.person()
    await turns(citizen, ONBOARD)
    await turns(citizen, READ_AND_COMMENT[:8])
    return citizen, await staff(harness, store, "8001", "cadre", commune="Hải Lăng")


def closing_first(monkeypatch, store, clock, method: str) -> None:
    """The consultation is closed by an admin in the instant between the handler's check and its write."""
    write = getattr(store.consultations, method)

    async def racing(*args, **kwargs):
        assert await store.consultations.close(1, clock())
        return await write(*args, **kwargs)

    monkeypatch.setattr(store.consultations, method, racing)


async def test_a_closed_consultation_takes_no_answer_comment_change_or_deletion(store, clock):
    saved = await consultation(store, clock)
    section = (await store.consultations.sections(saved.id))[0]
    user = await store.users.ensure("test", "1", "1", "Lan", "vi", clock())
    comment = await store.consultations.add_comment(section.id, user.id, None, "Ý kiến trước khi kết thúc", False,
                                                    "test", None, clock())
    assert await store.consultations.close(saved.id, clock())
    assert not await store.consultations.answer(section.id, user.id, "agree", clock())
    assert await store.consultations.add_comment(section.id, user.id, None, "Sau khi kết thúc", False, "test", None,
                                                 clock()) is None
    assert not await store.consultations.change_comment(comment, user.id, None, "Sửa sau khi kết thúc", False,
                                                        clock())
    assert not await store.consultations.delete_comment(comment, user.id, clock())
    assert [c.text for c in await store.consultations.comments(saved.id)] == ["Ý kiến trước khi kết thúc"]
    assert await store.consultations.answers_of(saved.id, user.id) == {1: "comment"}


async def test_past_its_closing_time_an_open_consultation_takes_no_comment(store, clock):
    saved = await consultation(store, clock, days=1)
    section = (await store.consultations.sections(saved.id))[0]
    user = await store.users.ensure("test", "1", "1", "Lan", "vi", clock())
    clock.advance(days=1)
    assert await store.consultations.add_comment(section.id, user.id, None, "Quá hạn rồi", False, "test", None,
                                                 clock()) is None
    assert not await store.consultations.answer(section.id, user.id, "skip", clock())


async def test_a_comment_sent_as_the_consultation_closes_is_not_kept_and_its_text_comes_back(harness, store, clock,
                                                                                             monkeypatch):
    await consultation(store, clock)
    p = harness.person()
    await turns(p, ONBOARD)
    await turns(p, READ_AND_COMMENT[:7])
    closing_first(monkeypatch, store, clock, "add_comment")
    await turns(p, [("[Ẩn danh]", ["hết thời hạn góp ý", "Nội dung Ông/Bà đã viết", TEXT, "!Cảm ơn Ông/Bà đã góp ý"])])
    assert await store.consultations.comments(1) == []


async def test_a_change_sent_as_the_consultation_closes_leaves_the_comment_and_the_new_text_comes_back(
        harness, store, clock, monkeypatch):
    await consultation(store, clock)
    p = harness.person()
    await turns(p, ONBOARD)
    await turns(p, READ_AND_COMMENT[:8])
    await turns(p, [("/gopyvankien", []), ("[Ý kiến của tôi]", []), ("[Xem, sửa ý kiến 1]", []), ("[Sửa]", []),
                    ("đoạn 3: Đề nghị cho phép nuôi gà thả vườn có rào.", ["kèm tên hay ẩn danh"])])
    closing_first(monkeypatch, store, clock, "change_comment")
    await turns(p, [("[Gửi kèm tên]", ["hết thời hạn góp ý", "Đề nghị cho phép nuôi gà thả vườn có rào."])])
    [comment] = await store.consultations.comments(1)
    assert comment.text == TEXT and comment.anonymous


async def test_a_deletion_as_the_consultation_closes_leaves_the_comment(harness, store, clock, monkeypatch):
    await consultation(store, clock)
    p = harness.person()
    await turns(p, ONBOARD)
    await turns(p, READ_AND_COMMENT[:8])
    await turns(p, [("/gopyvankien", []), ("[Ý kiến của tôi]", []), ("[Xem, sửa ý kiến 1]", ["Xóa"])])
    closing_first(monkeypatch, store, clock, "delete_comment")
    await turns(p, [("[Xóa]", ["hết thời hạn góp ý", TEXT, "!Đã xóa ý kiến", "!Sửa"])])
    assert [c.text for c in await store.consultations.comments(1)] == [TEXT]


async def test_an_answer_as_the_consultation_closes_is_not_kept(harness, store, clock, monkeypatch):
    await consultation(store, clock)
    p = harness.person()
    await turns(p, ONBOARD)
    await turns(p, READ_AND_COMMENT[:3])
    closing_first(monkeypatch, store, clock, "answer")
    await turns(p, [("[Đồng ý]", ["hết thời hạn góp ý", "Mục 1/5", "!đồng ý với mục 1", "!Có ý kiến"])])
    user = await store.users.find("test", p.id)
    assert await store.consultations.answers_of(1, user.id) == {}


WHY = "Nêu tên trên loa chỉ khi tái phạm nhiều lần, theo biểu quyết của hội nghị thôn."


async def test_an_explanation_that_does_not_take_is_given_back_to_the_cadre(harness, store, clock):
    _, first = await commented(harness, store, clock)
    second = await staff(harness, store, "9000", "admin", name="Quản trị")
    for cadre in (first, second):
        await turns(cadre, [("/vankien", []), ("[Mục 2.]", []), ("[Xử lý ý kiến #1]", ["Giải trình"])])
    await turns(second, [("[Giải trình]", ["nội dung giải trình"])])
    await turns(first, [("[Tiếp thu]", ["#1: Tiếp thu"])])
    await turns(second, [(WHY, ["vừa được đồng chí khác xử lý", "chưa được lưu", WHY])])
    assert (await store.consultations.comment(1)).explanation is None
    await turns(second, [("[Giải trình]", ["nội dung giải trình"])])
    assert await store.consultations.close(1, clock())
    await turns(second, [(WHY, ["đã kết thúc lấy ý kiến", "chưa được lưu", WHY, "!Ông/Bà"])])
    assert (await store.consultations.comment(1)).outcome == "accepted"


async def test_an_explanation_of_a_comment_its_author_deleted_is_given_back(harness, store, clock):
    citizen, cadre = await commented(harness, store, clock)
    await turns(cadre, [("/vankien", []), ("[Mục 2.]", []), ("[Xử lý ý kiến #1]", []), ("[Giải trình]", [])])
    await turns(citizen, [("/gopyvankien", []), ("[Ý kiến của tôi]", []), ("[Xem, sửa ý kiến 1]", []),
                          ("[Xóa]", ["Đã xóa ý kiến"])])
    await turns(cadre, [(WHY, ["người góp ý xóa", WHY, "0 ý kiến"])])


async def test_each_button_press_reads_the_document_once(harness, store, clock, monkeypatch):
    await consultation(store, clock)
    p = harness.person()
    await turns(p, ONBOARD)
    read = store.consultations.sections
    reads = []

    async def counted(consultation_id):
        reads.append(consultation_id)
        return await read(consultation_id)

    monkeypatch.setattr(store.consultations, "sections", counted)
    for said, shown in [("/gopyvankien", "Mục 5."), ("[Mục 1.]", "Mục 1/5"), ("[Đồng ý]", "nhạy cảm"),
                        ("[Đồng ý]", "Mục 2/5"), ("[Mục sau]", "Mục 3/5"), ("[Bỏ qua]", "Mục 4/5"),
                        ("[Có ý kiến]", "viết ý kiến"), ("Đề nghị giữ nguyên mục này.", "ẩn danh"),
                        ("[Ẩn danh]", "đã góp ý cho mục 4"), ("[Mục sau]", "Mục 5/5")]:
        reads.clear()
        await turns(p, [(said, [shown])])
        assert len(reads) <= 1, (said, reads)


async def test_closing_tells_each_commenter_their_outcomes_from_one_read_of_the_comments(harness, store, clock,
                                                                                        monkeypatch):
    saved = await consultation(store, clock)
    sections = await store.consultations.sections(saved.id)
    people = [(await store.users.ensure("test", f"70{n}", f"70{n}", f"Người {n}", "vi", clock())).id for n in range(3)]
    for n, person in enumerate(people):
        for k in range(n + 1):
            await store.consultations.add_comment(sections[k].id, person, None, f"Ý kiến {n}.{k}", False, "test", None,
                                                  clock())
    admin = await staff(harness, store, "9000", "admin", name="Quản trị")
    await turns(admin, [("/vankien", [])])
    for comment, outcome in ((2, "accepted"), (4, "rejected")):
        assert await store.consultations.handle(comment, outcome, None, people[0], clock(),
                                                (None, (await store.consultations.comment(comment)).updated_at))
    await turns(admin, [("[Kết thúc và công bố]", [])])
    fetchall, reads = store.db.fetchall, []

    async def counted(sql, params=()):
        reads.append(sql)
        return await fetchall(sql, params)

    monkeypatch.setattr(store.db, "fetchall", counted)
    await turns(admin, [("[Kết thúc và báo kết quả]", ["báo kết quả cho 3 người góp ý"])])
    assert len([sql for sql in reads if "c.user_id" in sql]) == 1  # was one, then one more per commenter
    told = {chat: r.text for chat, r, _ in harness.channel.sent if "Kết quả xử lý" in r.text}
    assert "Kết quả xử lý 1 ý kiến của Ông/Bà: tiếp thu 0, giải trình 0, không tiếp thu 0, chưa xử lý 1" in told["700"]
    assert "2 ý kiến của Ông/Bà: tiếp thu 1, giải trình 0, không tiếp thu 0, chưa xử lý 1" in told["701"]
    assert "3 ý kiến của Ông/Bà: tiếp thu 0, giải trình 0, không tiếp thu 1, chưa xử lý 2" in told["702"]


async def _audited_denials(store) -> list[str]:
    return [e.target for e in await store.audit.recent(100) if e.action == "denied"]


async def test_an_explanation_refused_for_a_scope_changed_meanwhile_is_given_back_and_told(harness, store, clock):
    _, cadre = await commented(harness, store, clock)
    await turns(cadre, [("/vankien", []), ("[Mục 2.]", []), ("[Xử lý ý kiến #1]", []), ("[Giải trình]", [])])
    elsewhere = (await store.localities.search("Quảng Trạch", level=1))[0]  # an admin moved the cadre meanwhile
    await store.roles.set_scope((await store.users.find("test", "8001")).id, {elsewhere.id}, set())
    await turns(cadre, [(WHY, ["chỉ dành cho cán bộ", "chưa được lưu", WHY])])
    assert (await store.consultations.comment(1)).outcome is None
    assert await _audited_denials(store) == ["consultation_comment:1"]


async def test_a_forged_button_opens_no_comment_of_another_consultation(harness, store, clock):
    _, cadre = await commented(harness, store, clock)
    await turns(cadre, [("/vankien", []), ("[Mục 2.]", [])])
    first = await store.consultations.comment(1)
    other = await consultation(store, clock, code="QU-KHAC")  # in the cadre's communes too
    section = (await store.consultations.sections(other.id))[0]
    elsewhere = await store.consultations.add_comment(section.id, first.user_id, None, "Ý kiến về văn kiện khác",
                                                      False, "test", first.commune_id, clock())
    forged = cadre.option("Xử lý ý kiến #1").replace(":o:1", f":o:{elsewhere}")
    await cadre.choose(forged)
    assert "chỉ dành cho cán bộ" in cadre.text() and "văn kiện khác" not in cadre.text()
    assert await _audited_denials(store) == [f"consultation_comment:{elsewhere}"]


async def test_an_admin_made_a_cadre_meanwhile_cannot_close(harness, store, clock):
    await consultation(store, clock)
    admin = await staff(harness, store, "9000", "admin", name="Quản trị")
    await turns(admin, [("/vankien", []), ("[Kết thúc và công bố]", ["Kết thúc lấy ý kiến"])])
    await store.users.update((await store.users.find("test", "9000")).id, clock(), role="cadre")
    await turns(admin, [("[Kết thúc và báo kết quả]", ["chỉ dành cho cán bộ", "Kết thúc lấy ý kiến"])])
    assert (await store.consultations.get(1)).status == "open"
    assert await _audited_denials(store) == ["consultation:1"]
