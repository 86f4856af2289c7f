"""`danvan privacy report`: generated on a seeded database, its numbers are checked table by table."""

from __future__ import annotations

import asyncio
import getpass
from datetime import UTC, datetime, timedelta

import pytest

from bot.cli import main
from handlers.consent import consent_version
from messages import Texts
from storage import Store
from storage.broadcasts import Audience
from storage.cases import Attachment, NewCase
from storage.consultations import Draft, Paragraph
from storage.dvk import DvkRepo, NewModel
from storage.surveys import NewSurvey, Question
from tests.people import make_people

NOW = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
NEWS = consent_version(Texts("vi")("consent.news"), "vi")


@pytest.fixture
def db(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.setenv("DANVAN_DB", str(tmp_path / "report.db"))
    monkeypatch.setenv("DANVAN_OPERATOR", "Ban Dân vận Huyện ủy Thử")
    return tmp_path / "report.db"


async def _seed(path) -> dict[str, int]:
    store = await Store.open(path)
    try:
        telegram = await make_people(store, 3, channel="telegram")
        zalo = await make_people(store, 2, channel="zalo", first_chat=7_000_000, consent=False, locality=None)
        [cadre] = await make_people(store, 1, channel="telegram", first_chat=8_000_000, role="cadre", topics=())
        [admin] = await make_people(store, 1, channel="telegram", first_chat=9_000_000, role="admin", topics=())
        [gone] = await make_people(store, 1, channel="telegram", first_chat=6_000_000)
        await store.users.erase(gone, "vi-xoa000000000", NOW, marker="đã xóa")  # withdraws 1, 2 refused
        # One person agreed to an older text of the opinions purpose, then to the current one.
        await store.users.record_consent(telegram[0], "opinions", True, "vi-old000000000", NOW - timedelta(days=90))
        await store.users.record_consent(telegram[0], "opinions", True, "vi-new000000000", NOW)
        await store.users.record_consent(telegram[1], "opinions", True, "vi-old000000000", NOW - timedelta(days=60))
        await store.users.record_consent(zalo[0], "sensitive", True, "vi-sen000000000", NOW)
        commune = (await store.localities.search("hai lang", level=1))[0]
        rural = await store.topics.by_code("nong-thon-moi")
        sensitive = await store.topics.by_code("gop-y-van-kien")
        sha = await store.files.put(b"\xff\xd8 a photo")
        for user, anonymous, topic, attachments in (
                (telegram[0], False, rural, (Attachment("photo", sha, "image/jpeg", 9, None, None, None),
                                             Attachment("location", None, None, None, None, 16.7, 107.2))),
                (telegram[0], True, rural, ()),
                (zalo[0], False, sensitive, ())):
            await store.cases.create(NewCase("gopy", user, anonymous, topic.id, commune.id, "Nội dung", False, None,
                                             NOW + timedelta(days=1), NOW + timedelta(days=10), attachments), NOW)
        dvk = DvkRepo(store.db)
        model = await dvk.create(NewModel(telegram[1], False, "Tổ tự quản đường làng", "Ông Nguyễn Văn Bảy",
                                          commune.id, "kinh_te", "Vận động bà con hiến đất làm đường", None,
                                          photos=((sha, 9), (await store.files.put(b"\xff\xd8 two"), 8))), None, NOW)
        for voter in (telegram[0], zalo[0]):
            await dvk.vote(model.id, voter, NOW)
        question = (Question("q1", "yes_no", "Đã nhận hỗ trợ?"),)
        survey_ids = await store.surveys.save_all([
            NewSurvey(code, "Khảo sát", "Giới thiệu", NOW - timedelta(days=1), NOW + timedelta(days=9), question,
                      anonymous=anonymous, political=political)
            for code, anonymous, political in (("named", False, False), ("anon", True, False),
                                               ("politics", True, True))], NOW)
        for survey_id, people in zip(survey_ids, ((telegram[0], zalo[0]), (telegram[1],), (telegram[2], zalo[0])),
                                     strict=True):
            for person in people:
                await store.surveys.start(survey_id, person, commune.id, None, "q1", NOW)
        draft = Draft("Quy ước thôn", (("Phần 1", (Paragraph(1, "Giữ vệ sinh"),)), ("Phần 2", (Paragraph(1, "Đ"),))))
        consultation = await store.consultations.save("quyuoc", draft, NOW, NOW + timedelta(days=9), Audience(), NOW)
        await store.consultations.publish(consultation.id, None, NOW)
        first, second = await store.consultations.sections(consultation.id)
        await store.consultations.answer(first.id, telegram[0], "agree", NOW)
        for person, anonymous, channel in ((telegram[1], True, "telegram"), (zalo[0], False, "zalo")):
            await store.consultations.add_comment(second.id, person, 1, "Nên sửa", anonymous, channel, commune.id, NOW)
        for actor, action, when in (
                (admin, "cases.exported", NOW), (admin, "cases.exported", NOW - timedelta(days=1)),
                (admin, "cases.exported", NOW - timedelta(days=40)),  # before the period: not counted
                (admin, "auditlog.viewed", NOW), (admin, "auditlog.viewed", NOW), (admin, "auditlog.exported", NOW),
                (cadre, "case.acknowledged", NOW - timedelta(days=2)), (cadre, "case.answered", NOW),
                (zalo[1], "denied", NOW),
                (None, "retention.purged", NOW), (None, "cases.exported", NOW)):
            await store.audit.record(actor, action, None, when)
        return {"admin": admin, "cadre": cadre, "refused": zalo[1]}
    finally:
        await store.close()


def _table(report: str, title: str) -> list[list[str]]:
    """The rows of the first table under the heading that starts with `title`, as cells (header first)."""
    section = report.split(title, 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("|")]
    return [[cell.strip() for cell in row.strip("|").split("|")] for row in rows if not row.startswith("|---")]


def test_the_report_counts_what_is_held_consents_erasures_and_access(db, tmp_path, capsys):
    ids = asyncio.run(_seed(db))
    out = tmp_path / "bao-cao.md"
    assert main(["privacy", "report", "--from", "2026-11-01", "--to", "2026-11-30", "--out", str(out)]) == 0
    assert str(out) in capsys.readouterr().out
    report = out.read_text(encoding="utf-8")
    assert report.startswith("# Báo cáo hoạt động xử lý dữ liệu cá nhân")
    assert "Ban Dân vận Huyện ủy Thử" in report and "từ 01/11/2026 đến 30/11/2026" in report

    held = _table(report, "## 1.")
    assert held[0][:2] == ["Kênh", "Tài khoản"]
    # accounts, onboarded, named, placed, staff, consent: news, opinions, sensitive (the erased one is gone)
    assert held[1:] == [["Telegram", "5", "5", "5", "5", "2", "5", "2", "0"],
                        ["Zalo", "2", "2", "2", "0", "0", "0", "0", "1"],
                        ["Tổng", "7", "7", "7", "5", "2", "5", "2", "1"]]

    purposes = {row[1]: row[2:] for row in _table(report, "## 2.")[1:] if "đang đồng ý" not in row[1]}
    assert _table(report, "## 2.")[0][2:] == ["Telegram", "Zalo", "Tổng"]
    assert purposes["ý kiến đã gửi (nội dung)"] == ["2", "1", "3"]
    assert purposes["trong đó gửi ẩn danh"] == ["1", "0", "1"]
    assert purposes["ảnh, ghi âm, tệp đính kèm"] == ["1", "0", "1"]
    assert purposes["vị trí GPS"] == ["1", "0", "1"]
    assert purposes["ý kiến thuộc lĩnh vực nhạy cảm"] == ["0", "1", "1"]
    assert purposes["lượt theo dõi lĩnh vực"] == ["3", "2", "5"]
    assert purposes["đề cử «Dân vận khéo» (tên mô hình, người hoặc tập thể, việc làm, kết quả)"] == ["1", "0", "1"]
    assert purposes["ảnh kèm đề cử «Dân vận khéo»"] == ["2", "0", "2"]
    assert purposes["lượt bình chọn «Dân vận khéo» (kèm xã, phường của người bình chọn)"] == ["1", "1", "2"]
    surveys = [row[1:] for row in _table(report, "## 2.")[1:] if "khảo sát" in row[1] or "văn kiện" in row[1]]
    assert surveys == [  # a purpose's rows follow its name: the sensitive one's are the political surveys'
        ["câu trả lời khảo sát, thăm dò ý kiến", "2", "1", "3"],
        ["trong đó trong khảo sát ẩn danh", "1", "0", "1"],
        ["câu trả lời khảo sát có câu hỏi về quan điểm chính trị", "1", "1", "2"],
        ["trong đó trong khảo sát ẩn danh", "1", "1", "2"],
        ["ý kiến góp ý văn kiện (nội dung, đoạn, xã, phường)", "1", "1", "2"],
        ["lượt «Đồng ý», «Có ý kiến», «Bỏ qua» theo từng phần văn kiện", "2", "1", "3"]]
    sensitive = [row[1] for row in _table(report, "## 2.")[1:]]
    assert sensitive.index("ý kiến góp ý văn kiện (nội dung, đoạn, xã, phường)") > \
        sensitive.index("ý kiến thuộc lĩnh vực nhạy cảm") > sensitive.index("lượt theo dõi lĩnh vực")

    consents = {(row[0], row[1]): row[2:5] for row in _table(report, "## 3.")[1:]}
    assert consents == {  # consenting now, refused or withdrawn now, recorded in the period
        ("Nhận tin", f"`{NEWS}`"): ["5", "2", "7"],
        ("Gửi góp ý, phản ánh", "`vi-old000000000`"): ["1", "0", "0"],
        ("Gửi góp ý, phản ánh", "`vi-new000000000`"): ["1", "0", "1"],
        ("Góp ý văn kiện (nhạy cảm)", "`vi-sen000000000`"): ["1", "0", "1"],
    }

    assert _table(report, "## 4.")[1:] == [["Xóa theo thời hạn lưu trữ", "`retention.purged`", "1"],
                                           ["Xóa dữ liệu cá nhân", "`user.erased`", "1"]]
    assert "rút lại sự đồng ý trong kỳ (kể cả khi xóa dữ liệu): 3." in report

    access = {row[0]: row[1:] for row in _table(report, "## 5.")[1:]}
    # role, exports, case handling, log reads, log downloads, this report, refused, last
    assert access == {
        "Dòng lệnh, hệ thống": ["", "1", "0", "0", "0", "0", "0", "26/11/2026"],
        f"Người 0 (mã {ids['cadre']})": ["cán bộ", "0", "2", "0", "0", "0", "0", "26/11/2026"],
        f"Người 0 (mã {ids['admin']})": ["quản trị viên", "2", "0", "2", "1", "0", "0", "26/11/2026"],
        f"Người 1 (mã {ids['refused']})": ["người dân", "0", "0", "0", "0", "0", "1", "26/11/2026"],
    }

    async def read():
        store = await Store.open(db)
        try:
            return [e for e in await store.audit.recent() if e.action == "privacy.report"]
        finally:
            await store.close()

    [entry] = asyncio.run(read())
    assert entry.actor_id is None and entry.detail == {"via": "cli", "os_user": getpass.getuser(),
                                                       "since": "2026-11-01", "until": "2026-11-30", "out": str(out)}


def test_the_report_goes_to_the_screen_and_refuses_a_backward_period(db, capsys):
    assert main(["privacy", "report", "--from", "2026-11-30", "--to", "2026-11-01"]) == 2
    assert "sau ngày kết thúc" in capsys.readouterr().err
    assert main(["privacy", "report"]) == 0
    text = capsys.readouterr().out
    assert "## 5. Truy cập dữ liệu của cán bộ trong kỳ" in text and "Chưa có sự đồng ý nào" in text
    with pytest.raises(SystemExit) as exit_:
        main(["privacy", "report", "--help"])
    assert exit_.value.code == 0 and "mặc định: ngày đầu năm" in capsys.readouterr().out
