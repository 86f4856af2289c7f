""""Dân vận khéo" below the chat: conditional status changes, one vote per person, erasure of a recognised model,
the cadre's digest section, and a round's report (Excel, .docx, `danvan dvk report`)."""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta

import pytest
from docx import Document
from openpyxl import load_workbook

from bot.cli import main
from handlers.base import Settings
from handlers.digest import compose
from storage import Store
from storage.dvk import ModelMoved, NewModel, repo
from tests.people import make_people

pytestmark = pytest.mark.backends

NOW = datetime(2026, 11, 26, 3, 0, tzinfo=UTC)
VOTER_NAME = "Người 0"  # make_people's names: never in a report


async def seed(store: Store) -> dict:
    """A round; in Hải Lăng two models (economy: recognised with three votes; culture: declined), in Đông Hà one
    verified (defence), and one nominated outside the round."""
    dvk = repo(store)
    r = await dvk.add_round("Bình xét 2026", 2026, date(2026, 1, 1), date(2026, 12, 31), "Có kết quả đo đếm được",
                            (date(2026, 11, 20), date(2026, 12, 15)), None, NOW)
    people = await make_people(store, 4)
    dong_ha_people = await make_people(store, 2, first_chat=6_000_000, locality="19333")
    hai_lang = (await store.localities.by_code("19702")).id
    village = (await store.localities.by_code("19702-02")).id
    dong_ha = (await store.localities.by_code("19333")).id

    async def model(user, place, field, name, round_id=r.id):
        return await dvk.create(NewModel(user, False, name, "Tập thể thôn", place, field, "Vận động người dân cùng làm",
                                         "100 hộ"), round_id, NOW)

    good = await model(people[0], village, "kinh_te", "Hiến đất làm đường")
    await dvk.record(good.id, None, "verified", NOW, expect=("nominated",), status="verified")
    await dvk.record(good.id, None, "recognised", NOW, expect=("verified",), status="recognised", level="province",
                     recognised_at=NOW)
    for voter in (*people[1:3], dong_ha_people[0]):
        assert await dvk.vote(good.id, voter, NOW)
    declined = await model(people[1], hai_lang, "van_hoa_xa_hoi", "Câu lạc bộ văn nghệ")
    await dvk.record(declined.id, None, "declined", NOW, body="Chưa đủ", expect=("nominated",), status="declined")
    verified = await model(dong_ha_people[1], dong_ha, "quoc_phong_an_ninh", "Tổ tự quản an ninh")
    await dvk.record(verified.id, None, "verified", NOW, expect=("nominated",), status="verified")
    await model(people[3], hai_lang, "kinh_te", "Ngoài đợt", round_id=None)
    return {"round": r, "good": good, "people": people, "dong_ha_people": dong_ha_people}


async def test_a_change_of_status_names_what_it_expects_and_the_loser_is_told(store):
    seeded = await seed(store)
    dvk = repo(store)
    with pytest.raises(ModelMoved) as moved:
        await dvk.record(seeded["good"].id, None, "declined", NOW, expect=("nominated", "verified"), status="declined")
    assert moved.value.model.status == "recognised"
    with pytest.raises(ValueError):
        await dvk.record(seeded["good"].id, None, "declined", NOW, status="declined")
    assert [e.kind for e in await dvk.events(seeded["good"].id, internal=True)] == ["nominated", "verified",
                                                                                     "recognised"]


async def test_one_vote_per_person_per_model(store):
    seeded = await seed(store)
    dvk = repo(store)
    assert not await dvk.vote(seeded["good"].id, seeded["people"][1], NOW)
    assert await dvk.votes(seeded["good"].id) == 3
    hai_lang, dong_ha = (await store.localities.by_code("19702")).id, (await store.localities.by_code("19333")).id
    assert await dvk.votes_by_commune(seeded["round"].id) == [("MH-26-000001", hai_lang, 2),
                                                             ("MH-26-000001", dong_ha, 1)]


async def test_a_vote_is_kept_with_the_commune_its_voter_lives_in(store):
    """The repository finds the voter's commune itself (a village's parent), with the lookup the report's tally
    uses: the chat and the demo no longer each work it out."""
    seeded = await seed(store)
    dvk = repo(store)
    villagers = await make_people(store, 2, first_chat=7_000_000, locality="19702-02")
    nowhere = await make_people(store, 1, first_chat=7_100_000, locality=None)
    for voter in (*villagers, *nowhere):
        assert await dvk.vote(seeded["good"].id, voter, NOW)
    hai_lang, dong_ha = (await store.localities.by_code("19702")).id, (await store.localities.by_code("19333")).id
    by_commune = {commune: n for _, commune, n in await dvk.votes_by_commune(seeded["round"].id)}
    assert by_commune == {hai_lang: 4, dong_ha: 1, None: 1}  # None: a voter with no place (the chat refuses them)


async def test_erasing_the_nominator_of_a_recognised_model_keeps_its_content(store):
    seeded = await seed(store)
    dvk = repo(store)
    await store.users.erase(seeded["people"][0], "vi-xoa", NOW, marker="(đã xóa)")
    # A voter, and the nominator of a declined model
    await store.users.erase(seeded["people"][1], "vi-xoa", NOW, marker="(đã xóa)")
    good = await dvk.get(seeded["good"].id)
    assert good.user_id is None and not good.erased and good.name == "Hiến đất làm đường"
    assert await dvk.votes(good.id) == 3  # the vote stays counted, linked to nobody
    declined = (await dvk.listing(None, ("declined",)))[0][0]
    assert declined.erased and declined.name == "" and declined.user_id is None and declined.field == "van_hoa_xa_hoi"


async def test_the_cadres_withdrawal_notices_are_kept_by_the_erasure_itself(store):
    """A crash right after the erasure still tells the cadres, and a nomination verified meanwhile (no longer
    withdrawn by it) tells no one."""
    dvk = repo(store)
    [lan] = await make_people(store, 1)
    [cadre] = await make_people(store, 1, first_chat=8_000_000, role="cadre", topics=())
    place = (await store.localities.by_code("19702")).id
    waiting, verified = [await dvk.create(NewModel(lan, False, name, "Tập thể thôn", place, "kinh_te",
                                                   "Vận động người dân cùng làm", None), None, NOW)
                         for name in ("Hiến đất làm đường", "Thắp sáng đường quê")]
    notices = {m.id: [(cadre, f'{{"withdrawn": "{m.code}"}}')] for m in (waiting, verified)}  # listed as waiting
    await dvk.record(verified.id, None, "verified", NOW, expect=("nominated",), status="verified")
    erased = await store.users.erase(lan, "vi-xoa", NOW, marker="(đã xóa)",
                                     withdrawn_notices={"dvk": notices})
    assert [(user, text) for _, user, text in await store.notices.pending()] == [
        (cadre, f'{{"withdrawn": "{waiting.code}"}}')]
    assert [i for i, _, _ in erased.notices] == [i for i, _, _ in await store.notices.pending()]
    assert (await dvk.get(waiting.id)).status == "withdrawn" and (await dvk.get(verified.id)).status == "verified"


async def test_the_digest_lists_new_nominations_in_scope_only(store):
    await seed(store)
    [hai_lang_cadre] = await make_people(store, 1, first_chat=8_000_000, role="cadre", topics=())
    [dong_ha_cadre] = await make_people(store, 1, first_chat=8_100_000, role="cadre", topics=())
    await store.roles.set_scope(hai_lang_cadre, {(await store.localities.by_code("19702")).id}, set())
    await store.roles.set_scope(dong_ha_cadre, {(await store.localities.by_code("19333")).id}, set())
    start, end = NOW - timedelta(days=7), NOW + timedelta(minutes=1)
    text = (await compose(store, Settings(), await store.users.get(hai_lang_cadre), start, end, end,
                          weekly=False)).replies[0].text
    assert "Mô hình «Dân vận khéo» mới đề xuất:</b> 3" in text and "Hiến đất làm đường" in text
    assert "Tổ tự quản an ninh" not in text
    text = (await compose(store, Settings(), await store.users.get(dong_ha_cadre), start, end, end,
                          weekly=False)).replies[0].text
    assert "mới đề xuất:</b> 1" in text and "Tổ tự quản an ninh" in text and "Hiến đất" not in text
    earlier = (await compose(store, Settings(), await store.users.get(dong_ha_cadre), start - timedelta(days=7),
                             start, end, weekly=False)).replies[0].text
    assert "Dân vận khéo" not in earlier


@pytest.fixture
def db(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.setenv("DANVAN_DB", str(tmp_path / "dvk.db"))
    return tmp_path / "dvk.db"


async def _seeded(path) -> None:
    store = await Store.open(path)
    try:
        await seed(store)
    finally:
        await store.close()


def test_the_round_report_by_commune_and_field_as_excel_and_docx(db, tmp_path, capsys):
    import asyncio

    asyncio.run(_seeded(db))
    out = tmp_path / "bao-cao.xlsx"
    assert main(["dvk", "report", "1", "--out", str(out)]) == 0
    assert "Bình xét 2026" in capsys.readouterr().out
    book = load_workbook(io.BytesIO(out.read_bytes()))
    sheet = book.worksheets[0]
    rows = [list(r) for r in sheet.iter_rows(min_row=4, values_only=True)]
    assert rows == [["phường Đông Hà", "Quốc phòng – an ninh", 1, 1, 0, 0],
                    ["xã Hải Lăng", "Kinh tế", 1, 1, 1, 3],
                    ["xã Hải Lăng", "Văn hóa – xã hội", 1, 0, 0, 0],
                    ["Tổng cộng", None, 3, 2, 1, 3]]  # the model outside the round is not counted
    models = [list(r) for r in book.worksheets[1].iter_rows(min_row=2, values_only=True)]
    assert models == [["MH-26-000001", "Hiến đất làm đường", "Tập thể thôn", "Thôn Long Hưng, xã Hải Lăng", "Kinh tế",
                       "cấp tỉnh", 3]]
    votes = [list(r) for r in book.worksheets[2].iter_rows(min_row=2, values_only=True)]
    assert votes == [["MH-26-000001", "xã Hải Lăng", 2], ["MH-26-000001", "phường Đông Hà", 1]]  # where voters live
    summary = tmp_path / "bao-cao.docx"
    assert main(["dvk", "report", "1", "--out", str(summary)]) == 0
    doc = Document(str(summary))
    text = "\n".join(p.text for p in doc.paragraphs)
    cells = [c.text for table in doc.tables for row in table.rows for c in row.cells]
    assert "3 mô hình được đề xuất, 2 mô hình đã xác minh, 1 mô hình được công nhận" in text
    assert "MH-26-000001 — Hiến đất làm đường" in text and "3 lượt bình chọn" in text
    assert ["Kinh tế", "1", "1", "1", "3"] == cells[5:10]
    assert VOTER_NAME not in text + "".join(cells)
    assert main(["dvk", "report", "9", "--out", str(summary)]) == 2
    assert main(["dvk", "report", "1", "--out", str(tmp_path / "x.pdf")]) == 2


async def test_the_demo_round_has_nominations_at_every_stage_marked_as_samples(store):
    from bot.demo import seed_demo

    await seed_demo(store, NOW)
    await seed_demo(store, NOW + timedelta(hours=1))  # a restart seeds nothing twice
    dvk = repo(store)
    [r] = await dvk.rounds()
    assert r.name.startswith("[Mẫu]") and r.voting_on(date(2026, 11, 26))
    models, total = await dvk.listing(None, ("nominated", "info_requested", "verified", "declined", "recognised"),
                                      limit=100)
    assert total == 6 and all(m.name.startswith("[Mẫu]") and m.round_id == r.id for m in models)
    assert {m.status for m in models} == {"nominated", "info_requested", "verified", "declined", "recognised"}
    assert {m.level for m in models if m.status == "recognised"} == {"commune", "province"}
    assert sum(x.votes for x in await dvk.tally(r.id)) == 4


@pytest.mark.backends("sqlite")  # reads SQLite's catalogue; the schema is the same
async def test_every_dvk_table_naming_a_person_is_declared_for_export_and_erasure(store):
    """A new table or column pointing at users must be added to PERSONAL_TABLES, and so be thought of in /dulieu
    and /xoadulieu; each declared one is emptied of the person by the erasure."""
    from storage.dvk import PERSONAL_TABLES

    found = {}
    for (table,) in await store.db.fetchall("SELECT name FROM sqlite_master WHERE type = 'table' AND name LIKE 'dvk%'"):
        for key in await store.db.fetchall(f"PRAGMA foreign_key_list({table})"):
            if key["table"] == "users" and not (table == "dvk_rounds" and key["from"] == "created_by"):
                found[table] = key["from"]  # a round's author is staff acting, in the audit log too
    assert found == PERSONAL_TABLES
    seeded = await seed(store)
    person = seeded["people"][1]  # a nominator and a voter
    await store.db.execute("INSERT INTO dvk_events (model_id, at, actor_id, kind) VALUES (1, '2026', ?, 'visit')",
                           (person,))
    await store.users.erase(person, "vi-xoa", NOW, marker="(đã xóa)")
    for table, column in PERSONAL_TABLES.items():
        assert await store.db.fetchone(f"SELECT 1 FROM {table} WHERE {column} = ?", (person,)) is None, table
