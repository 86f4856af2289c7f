"""`danvan consultation load|publish`: a draft from Markdown or Word into sections and numbered paragraphs, its
table of contents shown before saving, and the invitation through the broadcast outbox with its deep link."""

from __future__ import annotations

import asyncio
from pathlib import Path

import docx
import pytest

from bot.cli import main
from bot.consultation_file import Problem, read
from storage import Store

SAMPLE = Path(__file__).parent.parent / "messages" / "samples" / "quy-uoc-thon-long-hung.md"


@pytest.fixture
def env(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.setenv("DANVAN_DB", str(tmp_path / "cli.db"))
    monkeypatch.setenv("DANVAN_QUIET_HOURS", "off")
    return tmp_path / "cli.db"


def _read(path, work):
    async def go():
        store = await Store.open(path)
        try:
            return await work(store)
        finally:
            await store.close()

    return asyncio.run(go())


def test_markdown_sections_keep_their_paragraph_numbers(tmp_path):
    draft = read(SAMPLE)
    assert draft.title == "Dự thảo Quy ước thôn Long Hưng (sửa đổi năm 2026)"
    assert [title for title, _ in draft.sections][:2] == ["Những quy định chung",
                                                          "Giữ gìn vệ sinh môi trường, cảnh quan"]
    assert [p.number for p in draft.sections[1][1]] == [1, 2, 3, 4]
    assert draft.sections[1][1][3].text.startswith("Hộ nào vi phạm lần đầu")
    assert draft.intro.startswith("Dự thảo viết làm mẫu")
    gaps = tmp_path / "gaps.md"
    gaps.write_text("# Dự thảo\n\n## Mục A\n\n2. Đoạn hai\nnối dòng\n\n5) Đoạn năm\n\nKhông số\n", encoding="utf-8")
    [(_, paragraphs)] = read(gaps).sections
    assert [(p.number, p.text) for p in paragraphs] == [(2, "Đoạn hai nối dòng"), (5, "Đoạn năm"), (6, "Không số")]


def test_word_headings_make_sections(tmp_path):
    document = docx.Document()
    document.add_heading("Dự thảo Nghị quyết Đại hội", level=0)  # the Title style
    document.add_paragraph("Lời giới thiệu.")
    document.add_heading("Phần I. Đánh giá", level=1)
    document.add_paragraph("1. Kinh tế tăng trưởng khá.")
    document.add_paragraph("2. Văn hóa xã hội có chuyển biến.")
    document.add_heading("Phần II. Phương hướng", level=1)
    document.add_paragraph("Phát triển nông nghiệp sạch.")
    document.add_paragraph("Xây dựng nông thôn mới kiểu mẫu.")
    path = tmp_path / "nghi-quyet.docx"
    document.save(path)
    draft = read(path)
    assert draft.title == "Dự thảo Nghị quyết Đại hội" and draft.intro == "Lời giới thiệu."
    assert [(t, [(p.number, p.text) for p in ps]) for t, ps in draft.sections] == [
        ("Phần I. Đánh giá", [(1, "Kinh tế tăng trưởng khá."), (2, "Văn hóa xã hội có chuyển biến.")]),
        ("Phần II. Phương hướng", [(1, "Phát triển nông nghiệp sạch."), (2, "Xây dựng nông thôn mới kiểu mẫu.")]),
    ]


def test_a_document_without_sections_or_with_a_number_twice_is_refused(tmp_path):
    flat = tmp_path / "flat.md"
    flat.write_text("Chỉ có chữ, không có tiêu đề.\n", encoding="utf-8")
    with pytest.raises(Problem, match="không tìm thấy mục nào"):
        read(flat)
    twice = tmp_path / "twice.md"
    twice.write_text("# T\n\n## Mục\n\n1. Một\n\n1. Lại một\n", encoding="utf-8")
    with pytest.raises(Problem, match="đoạn 1 xuất hiện hai lần"):
        read(twice)
    broken = tmp_path / "broken.docx"
    broken.write_bytes(b"not a zip")
    with pytest.raises(Problem, match="không đọc được tệp"):
        read(broken)


def test_load_shows_the_contents_saves_with_yes_then_publish_invites_through_the_outbox(env, capsys, tmp_path):
    assert main(["db", "migrate"]) == 0
    args = ["consultation", "load", str(SAMPLE), "--code", "QU-LH", "--closes", "10/12/2026", "--locality", "19702"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "QU-LH: Dự thảo Quy ước thôn Long Hưng" in out
    assert "Mục 2. Giữ gìn vệ sinh môi trường, cảnh quan (4 đoạn)" in out
    assert "--yes" in out
    assert _read(env, lambda s: s.consultations.by_code("QU-LH")) is None  # shown, not saved
    assert main([*args, "--yes"]) == 0
    assert "Đã lưu dự thảo QU-LH (5 mục)" in capsys.readouterr().out
    qr = tmp_path / "qr.png"
    assert main(["consultation", "publish", "QU-LH", "--qr", str(qr)]) == 0
    out = capsys.readouterr().out
    assert "?start=v_QU-LH" in out and qr.read_bytes().startswith(b"\x89PNG")

    async def published(store):
        consultation = await store.consultations.by_code("QU-LH")
        broadcast = await store.broadcasts.get(consultation.broadcast_id)
        hai_lang = await store.localities.by_code("19702")
        return consultation, broadcast, hai_lang

    consultation, broadcast, hai_lang = _read(env, published)
    assert consultation.status == "open" and consultation.audience.localities == (hai_lang.id,)
    assert broadcast.audience == consultation.audience and broadcast.link_url.endswith("?start=v_QU-LH")
    assert "Dự thảo Quy ước thôn Long Hưng" in broadcast.text_vi and "/gopyvankien" in broadcast.text_vi
    # Published once: neither replaced by a new load nor published again.
    assert main([*args, "--yes"]) == 1
    assert "đã được công bố" in capsys.readouterr().err
    assert main(["consultation", "publish", "QU-LH"]) == 1
