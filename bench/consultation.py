"""A consultation's summary report at province scale: 100,000 comments on a 30-section document.

    python -m bench.consultation           # progress on stderr, one JSON line last

20,000 people in the seed's communes answer every section (600,000 answers) and write 100,000 comments: in
each section most say one of 60 proposals in their own way (with or without diacritics, in capitals, with
a word moved, a word or a courtesy added), one in eight writes something like no other (random words, so
each leads a group of its own: the grouping's worst case). A third are handled. The database is a temporary
file filled with plain sqlite3 in big transactions. Then the real report, as `danvan consultation report`
makes it (handlers/consultation_report.py): the organisation part, every section's comments grouped
(handlers/similar.py), the .docx, and the .xlsx of every comment. `report_s` is all of that; the target is
under 60 s, with memory flat in the number of comments (one section is held at a time; `rss_before_report_mb`
is the process before the report began).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import resource
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from handlers.consultation_report import organisation, report_xlsx, sections_summary, write_docx
from handlers.similar import THRESHOLD
from messages import Texts
from storage import Store
from storage.broadcasts import Audience
from storage.clock import iso
from storage.consultations import Draft, Paragraph
from storage.text import fold

NOW = datetime(2026, 11, 26, 1, tzinfo=UTC)
SECTIONS = 30
PEOPLE = 20_000
PROPOSALS = 60  # per section
UNIQUE = 1 / 8  # of comments, like no other
WORDS = (
    "đề nghị bổ sung quy định rõ hơn về trách nhiệm của hộ gia đình trong việc giữ gìn vệ sinh môi trường "
    "đường làng ngõ xóm thu gom rác thải sinh hoạt đúng giờ không đốt rác gây khói bụi ảnh hưởng sức khỏe "
    "người già trẻ nhỏ cần tăng cường tuyên truyền vận động bà con nông dân áp dụng khoa học kỹ thuật vào "
    "sản xuất chăn nuôi tập trung xa khu dân cư xây dựng hầm biogas hỗ trợ vốn vay ưu đãi cho hộ nghèo "
    "cận nghèo phát triển kinh tế hợp tác xã liên kết tiêu thụ nông sản sạch nâng cao thu nhập giữ chân "
    "lao động trẻ ở nông thôn đào tạo nghề giải quyết việc làm bảo đảm an ninh trật tự phòng chống tệ nạn "
    "xã hội ma túy cờ bạc karaoke gây ồn sau giờ quy định hòa giải mâu thuẫn tại cơ sở phát huy vai trò "
    "người có uy tín trưởng họ tộc chi hội phụ nữ đoàn thanh niên cựu chiến binh mặt trận tổ quốc ủy ban "
    "nhân dân xã công khai minh bạch các khoản đóng góp tự nguyện của nhân dân trong xây dựng đường giao "
    "thông nhà văn hóa thôn trường học trạm y tế"
).split()
COURTESY = ("ạ", "xin cảm ơn", "trân trọng", "mong được xem xét", "kính đề nghị")


def proposal(rng: random.Random) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(rng.randint(14, 24))).capitalize() + "."


def variant(text: str, rng: random.Random) -> str:
    """The same proposal as another person writes it."""
    words = text.rstrip(".").split()
    roll = rng.random()
    if roll < 0.25:
        i = rng.randrange(len(words) - 1)
        words[i], words[i + 1] = words[i + 1], words[i]
    elif roll < 0.45:
        words.insert(rng.randrange(len(words)), rng.choice(COURTESY))
    elif roll < 0.55:
        del words[rng.randrange(len(words))]
    written = " ".join(words)
    if rng.random() < 0.3:
        written = fold(written)  # typed without diacritics
    if rng.random() < 0.1:
        written = written.upper()
    return written + rng.choice((".", "!", "", " ạ."))


def fill(path: Path, consultation_id: int, section_ids: list[int], comments: int, seed: int) -> None:
    rng = random.Random(seed)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=OFF")
    communes = [r[0] for r in conn.execute("SELECT id FROM localities WHERE level = 1")]
    with conn:
        conn.executemany(
            "INSERT INTO users (channel, external_id, chat_id, display_name, language, locality_id, onboarded,"
            " created_at, updated_at) VALUES (?, ?, ?, ?, 'vi', ?, 1, ?, ?)",
            ((("telegram", "zalo", "web")[n % 3], f"b{n}", f"b{n}", f"Người {n}", rng.choice(communes), iso(NOW),
              iso(NOW)) for n in range(PEOPLE)))
    people = [(r[0], r[1], r[2]) for r in conn.execute("SELECT id, channel, locality_id FROM users WHERE"
                                                       " external_id LIKE 'b%'")]
    with conn:
        conn.executemany("INSERT INTO consultation_answers (section_id, user_id, stance, at) VALUES (?, ?, ?, ?)",
                         ((sid, uid, rng.choice(("agree", "agree", "comment", "skip")), iso(NOW))
                          for sid in section_ids for uid, _, _ in people))
    per_section = comments // len(section_ids)
    for sid in section_ids:
        proposals = [proposal(rng) for _ in range(PROPOSALS)]
        rows = []
        for _ in range(per_section):
            uid, channel, commune = rng.choice(people)
            text = proposal(rng) if rng.random() < UNIQUE else variant(rng.choice(proposals), rng)
            outcome = rng.choice(("accepted", "explained", "rejected", None, None, None))
            rows.append((sid, uid, rng.choice((None, 1, 2, 3)), text, int(rng.random() < 0.2), channel, commune,
                         iso(NOW), iso(NOW), outcome, "Đã có trong quy định hiện hành." if outcome == "explained"
                         else None))
        with conn:
            conn.executemany(
                "INSERT INTO consultation_comments (section_id, user_id, paragraph, text, anonymous, channel,"
                " commune_id, created_at, updated_at, outcome, explanation) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                rows)
    conn.close()


def rss_mb() -> float:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


async def main(comments: int, seed: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="danvan-bench-") as tmp:
        path = Path(tmp) / "bench.db"
        store = await Store.open(path)
        try:
            draft = Draft("Dự thảo văn kiện (bench)", tuple(
                (f"Phần {n}", tuple(Paragraph(p, f"Đoạn {p} của phần {n}.") for p in (1, 2, 3)))
                for n in range(1, SECTIONS + 1)))
            consultation = await store.consultations.save("BENCH", draft, NOW, NOW + timedelta(days=30), Audience(),
                                                          NOW)
            await store.consultations.publish(consultation.id, None, NOW)
            section_ids = [s.id for s in await store.consultations.sections(consultation.id)]
            started = time.perf_counter()
            await asyncio.to_thread(fill, path, consultation.id, section_ids, comments, seed)
            print(f"filled {comments} comments in {time.perf_counter() - started:.1f} s", file=sys.stderr)
            t, tz = Texts("vi"), ZoneInfo("Asia/Ho_Chi_Minh")
            before = rss_mb()
            started = time.perf_counter()
            organised, rows = await organisation(store, consultation, t, tz)
            summary = await sections_summary(store, consultation, THRESHOLD)
            grouped = time.perf_counter() - started
            print(f"grouped in {grouped:.1f} s", file=sys.stderr)
            document = await asyncio.to_thread(write_docx, consultation, t, organised, rows, summary)
            documented = time.perf_counter() - started
            workbook = await report_xlsx(store, consultation, t, tz)
            report_s = time.perf_counter() - started
            stored = sum(s.comments for s in summary)
            if stored != comments - comments % SECTIONS:
                raise SystemExit(f"expected {comments} comments, the report saw {stored}")
            return {"bench": "consultation", "comments": stored, "sections": SECTIONS,
                    "groups": sum(len(s.groups) for s in summary),
                    "multi_groups": sum(1 for s in summary for g in s.groups if g.count > 1),
                    "threshold": THRESHOLD, "group_s": round(grouped, 2), "docx_s": round(documented - grouped, 2),
                    "xlsx_s": round(report_s - documented, 2), "report_s": round(report_s, 2),
                    "docx_kb": len(document) // 1024, "xlsx_kb": len(workbook) // 1024,
                    "rss_before_report_mb": before, "peak_rss_mb": rss_mb()}
        finally:
            await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--comments", type=int, default=100_000)
    parser.add_argument("--seed", type=int, default=17)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(main(args.comments, args.seed)), ensure_ascii=False))
