"""Near-duplicate comments grouped, and the summary report read back: `danvan consultation report` writes the
.docx (organisation, each section's agreement count, grouped comments with counts, their handling) and the
.xlsx of every comment; nobody anonymous is ever named."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import docx
import pytest
from openpyxl import load_workbook

from bot.cli import main
from bot.consultation_file import read
from handlers.similar import group, most_similar
from storage import Store
from storage.broadcasts import Audience
from storage.clock import iso

pytestmark = pytest.mark.backends

SAMPLE = Path(__file__).parent.parent / "messages" / "samples" / "quy-uoc-thon-long-hung.md"
NOW = datetime(2026, 11, 26, 1, tzinfo=UTC)
SAME = [
    "Đề nghị không nêu tên hộ vi phạm trên loa, chỉ nhắc nhở riêng.",
    "de nghi khong neu ten ho vi pham tren loa, chi nhac nho rieng",
    "Đề nghị KHÔNG nêu tên hộ vi phạm trên loa; chỉ nhắc nhở riêng thôi.",
]


def test_near_duplicates_are_grouped_without_diacritics_case_or_word_order():
    texts = [*SAME, "Cần thêm thùng rác công cộng ở đầu thôn.",
             "nhắc nhở riêng, không nêu tên trên loa hộ vi phạm đề nghị", "Cần thêm thùng rác công cộng ở đầu thôn"]
    assert group(texts) == [[0, 1, 2, 4], [3, 5]]
    assert group(texts, threshold=100) == [[0, 1], [3, 5], [2], [4]]  # the same words, once folded
    assert most_similar("can them thung rac cong cong o dau thon a", texts) == 3
    assert most_similar("Sửa đường liên thôn", texts) is None


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.setenv("DANVAN_DB", str(tmp_path / "cli.db"))
    return tmp_path / "cli.db"


async def _seed(path: Path) -> None:
    store = await Store.open(path)
    try:
        saved = await store.consultations.save("QU-LH", read(SAMPLE), NOW, NOW + timedelta(days=14), Audience(), NOW)
        await store.consultations.publish(saved.id, None, NOW)
        sections = {s.position: s for s in await store.consultations.sections(saved.id)}
        hai_lang, dong_ha = await store.localities.by_code("19702"), await store.localities.by_code("19333")
        people = []
        for n in range(6):
            channel = "telegram" if n < 4 else "zalo"
            user = await store.users.ensure(channel, f"u{n}", f"u{n}", f"Người Số {n}", "vi", NOW)
            await store.users.update(user.id, NOW, locality_id=(hai_lang if n < 5 else dong_ha).id)
            people.append(user)
        for n, user in enumerate(people):
            await store.consultations.answer(sections[1].id, user.id, "agree" if n < 5 else "skip", NOW)
        ids = []
        for n, text in enumerate(SAME):  # the first is anonymous: its author is never named
            ids.append(await store.consultations.add_comment(sections[2].id, people[n].id, 4, text, n == 0,
                                                             people[n].channel, hai_lang.id, NOW))
        ids.append(await store.consultations.add_comment(sections[4].id, people[5].id, None,
                                                         "Đề nghị cho hát karaoke đến 22 giờ 30 ngày cuối tuần.", False,
                                                         "zalo", dong_ha.id, NOW))
        unhandled = (None, iso(NOW))
        await store.consultations.handle(ids[0], "accepted", None, people[0].id, NOW, unhandled)
        await store.consultations.handle(ids[1], "accepted", None, people[0].id, NOW, unhandled)
        await store.consultations.handle(ids[3], "explained", "Giữ 22 giờ theo quy định chung về tiếng ồn.",
                                         people[0].id, NOW, unhandled)
    finally:
        await store.close()


def test_the_report_read_back_has_sections_counts_groups_and_handling(env, tmp_path, capsys):
    asyncio.run(_seed(env))
    out = tmp_path / "bao-cao.docx"
    assert main(["consultation", "report", "QU-LH", "--out", str(out)]) == 0
    assert "bao-cao.xlsx" in capsys.readouterr().out
    document = docx.Document(str(out))
    headings = [p.text for p in document.paragraphs if p.style.name.startswith("Heading") or p.style.name == "Title"]
    assert headings[:2] == ["BÁO CÁO TỔNG HỢP Ý KIẾN GÓP Ý", "I. Tổ chức lấy ý kiến"]
    assert headings[3:] == [f"Mục {n}. {title}" for n, (title, _) in enumerate(read(SAMPLE).sections, start=1)]
    text = "\n".join(p.text for p in document.paragraphs)
    assert "Thời gian lấy ý kiến: từ 26/11/2026 08:00 đến 10/12/2026 08:00." in text
    assert "Đối tượng được mời góp ý: toàn thể người dân nhận tin qua kênh." in text
    assert "6 người trả lời ít nhất một mục, 4 người có ý kiến, tổng số 4 ý kiến" in text
    assert "Đồng ý: 5; có ý kiến: 0 (0 ý kiến); bỏ qua: 1." in text
    assert "Đồng ý: 0; có ý kiến: 3 (3 ý kiến); bỏ qua: 0." in text
    assert "3 ý kiến cùng đề nghị (đoạn 4): «Đề nghị không nêu tên hộ vi phạm trên loa, chỉ nhắc nhở riêng.»" in text
    assert "Xử lý: tiếp thu 2, chưa xử lý 1." in text
    assert "1 ý kiến: «Đề nghị cho hát karaoke" in text and "Giải trình: Giữ 22 giờ" in text
    assert "Người Số" not in text  # the report names nobody
    [table] = document.tables
    rows = [[cell.text for cell in row.cells] for row in table.rows]
    assert rows[0] == ["Xã, phường", "Kênh", "Số người góp ý", "Số ý kiến"]
    assert ["xã Hải Lăng", "telegram", "3", "3"] in rows and ["phường Đông Hà", "zalo", "1", "1"] in rows
    sheet = load_workbook(tmp_path / "bao-cao.xlsx").active
    values = list(sheet.values)
    assert values[0][:3] == ("Mục", "Đoạn", "Nội dung") and len(values) == 5
    senders = [row[5] for row in values[1:]]
    assert senders == ["Ẩn danh", "Người Số 1", "Người Số 2", "Người Số 5"]
    assert "Người Số 0" not in str(values)


async def test_a_case_like_an_open_one_in_the_same_commune_shows_cadres_the_likely_twin(harness, store, clock):
    from tests.schedule_kit import add_case, citizen

    user = await citizen(store, clock())
    hai_lang, village = await store.localities.by_code("19702"), await store.localities.by_code("19702-02")
    dong_ha = await store.localities.by_code("19333")
    road = "Đường bê tông thôn Long Hưng bị sụt lún sau mưa lũ"
    first = await add_case(store, clock(), user, village.id, content=road)
    twin = await add_case(store, clock(), user, hai_lang.id, content="duong be tong thon Long Hung bi sut lun sau mua!")
    other = await add_case(store, clock(), user, hai_lang.id, content="Đề nghị lắp thêm đèn chiếu sáng ở chợ")
    far = await add_case(store, clock(), user, dong_ha.id, content=road)
    admin = harness.person("9000", name="Quản trị")
    await admin.say("/huongdan")
    await store.users.update((await store.users.find("test", "9000")).id, clock(), role="admin")
    await admin.choose(f"1:cs:{twin.id}")
    assert f"Có thể trùng với {first.code}" in admin.text()
    await admin.choose(f"1:cs:{first.id}")  # the earlier one is not said to repeat the later
    assert "Có thể trùng" not in admin.text()
    await admin.choose(f"1:cs:{other.id}")
    assert "Có thể trùng" not in admin.text()
    await admin.choose(f"1:cs:{far.id}")  # the same words in another commune: another road
    assert "Có thể trùng" not in admin.text()
    await store.cases.record(first.id, None, "resolved", clock(), expect="new", status="resolved", closed_at=clock())
    await admin.choose(f"1:cs:{twin.id}")  # what is closed is not offered
    assert "Có thể trùng" not in admin.text()


def test_a_quote_in_the_report_keeps_the_comments_lines():
    from types import SimpleNamespace

    from handlers.consultation_report import summarise

    comment = SimpleNamespace(text="Đề nghị bổ sung:\n- đường liên thôn;\n- chiếu sáng.", paragraph=None, outcome=None,
                              explanation=None)
    [group] = summarise([comment], 85)
    assert group.quote == "Đề nghị bổ sung:\n- đường liên thôn;\n- chiếu sáng."


def test_the_report_quotes_twenty_single_comments_a_section_and_counts_the_rest():
    from collections import Counter
    from io import BytesIO
    from types import SimpleNamespace

    from handlers.consultation_report import GroupSummary, SectionSummary, write_docx
    from messages import Texts

    singles = [GroupSummary(1, f"Ý kiến riêng số {n}", [], Counter({"rejected" if n % 2 else "pending": 1}))
               for n in range(25)]
    section = SectionSummary(1, "Mục thử", {"agree": 0, "comment": 25, "skip": 0}, 25,
                             [GroupSummary(2, "Ý kiến chung", [1], Counter(accepted=2)), *singles])
    document = docx.Document(BytesIO(write_docx(SimpleNamespace(title="Dự thảo"), Texts("vi"), {}, [], [section])))
    text = "\n".join(p.text for p in document.paragraphs)
    assert "2 ý kiến cùng đề nghị (đoạn 1): «Ý kiến chung»" in text
    assert "Ý kiến riêng số 19" in text and "Ý kiến riêng số 20" not in text
    assert "Và 5 ý kiến riêng lẻ khác (toàn văn trong tệp Excel kèm theo); xử lý: không tiếp thu 2, chưa xử lý 3." \
        in text


def test_the_grouping_threshold_is_configured_and_given_per_report(env, tmp_path, monkeypatch):
    asyncio.run(_seed(env))

    def groups(*args):
        out = tmp_path / "r.docx"
        assert main(["consultation", "report", "QU-LH", "--out", str(out), *args]) == 0
        return [p.text for p in docx.Document(str(out)).paragraphs if "ý kiến" in p.text and "«" in p.text]

    assert any(g.startswith("3 ý kiến cùng đề nghị") for g in groups())
    monkeypatch.setenv("DANVAN_SIMILARITY", "100")  # identical once folded, only
    assert any(g.startswith("2 ý kiến cùng đề nghị") for g in groups())
    assert any(g.startswith("3 ý kiến cùng đề nghị") for g in groups("--threshold", "85"))
