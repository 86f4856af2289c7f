"""/xoadulieu erases what it says: the identity always, the cases' content by default (text, photos, voice notes,
locations, files on disk), open cases closed as withdrawn with their cadres told; or the content kept, unlinked."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from dataclasses import replace
from datetime import timedelta

import pytest

import storage.db
from handlers.base import Media
from storage import Store, erasure
from storage.cases import Attachment, InboxQuery, NewCase
from tests.dialog import ONBOARD, Harness, RecordingChannel, render, turns
from tests.images import jpeg
from tests.schedule_kit import add_case, citizen, staff
from tests.test_web_api import build_app, client, onboard, png, text_of

pytestmark = pytest.mark.backends

PHOTO = jpeg()
VOICE = b"OggS voice note of the sender"
CONTENT = "Đường bê tông thôn 3 bị sụt lún sau mưa lũ, xe máy đi lại rất nguy hiểm."
MARKER = "đã xóa theo yêu cầu của người gửi"


async def report_with_photo_voice_and_location(p) -> None:
    await turns(p, [("/phananh", []), ("[Xây dựng nông thôn mới]", []), ("[Đúng]", []), (CONTENT, [])])
    await p.photo(PHOTO)
    p.h.channel.files["voice-1"] = VOICE
    await p.send(p._event("media", media=Media("voice", "voice-1", len(VOICE), "audio/ogg")))
    await p.location(16.8163, 107.1003)
    await turns(p, [("[Tiếp tục]", []), ("[Gửi kèm tên]", []), ("[Không khẩn cấp]", []), ("[Gửi]", ["PA-26-000001"])])


async def test_erasure_removes_case_content_files_voice_location_and_web_sessions(harness, store):
    now = harness.clock()
    await staff(store, now, "8001", "cadre", communes=("Hải Lăng",))
    p = harness.person()
    await turns(p, ONBOARD)
    await report_with_photo_voice_and_location(p)
    user = await store.users.find("test", "1001")
    case = await store.cases.by_code("PA-26-000001")
    digests = [a.sha256 for a in await store.cases.attachments(case.id) if a.sha256]
    assert len(digests) == 2 and all([await store.files.get(d) for d in digests])
    await store.web_sessions.create("cookie-of-lan", "1001", now, timedelta(days=180))
    await turns(p, [
        ("/xoadulieu", ["1 ý kiến (1 đang xử lý)", MARKER, "không hoàn tác",
                        "Xóa, nhưng giữ nội dung ý kiến"]),
        ("[Xóa dữ liệu của tôi]", ["Đã xóa dữ liệu", "1 tài khoản", "1 phiên web chat", "2 lần ghi nhận sự đồng ý",
                                   f"Nội dung của 1 ý kiến đã được thay bằng «{MARKER}»", "đã xóa 2 tệp", "1 vị trí",
                                   "1 ý kiến đang xử lý đã được đóng", "lĩnh vực, địa bàn, ngày gửi và trạng thái"]),
    ])
    case = await store.cases.get(case.id)
    assert case.content == MARKER and case.user_id is None
    assert case.status == "withdrawn" and case.closed_at is not None
    assert await store.cases.attachments(case.id) == []  # photo, voice note and GPS point
    assert [await store.files.get(d) for d in digests] == [None, None]  # gone from disk
    assert all(e.actor_id is None for e in await store.cases.events(case.id, internal=True))
    assert (await store.cases.events(case.id, internal=False))[-1].kind == "withdrawn"
    assert await store.web_sessions.get("cookie-of-lan", now) is None
    assert await store.users.consent_history(user.id) == []  # consents only as a count
    tallies = await store.db.fetchall("SELECT purpose, granted, count FROM consent_tallies ORDER BY purpose")
    assert [tuple(r) for r in tallies] == [("news", 1, 1), ("opinions", 1, 1)]
    # The cadre is told the case is closed, through the notice outbox (delivered, so no longer pending).
    told = [r.text for chat, r, _ in harness.channel.sent if chat == "8001"]
    assert any("PA-26-000001" in text and "đã được đóng" in text for text in told)
    assert await store.notices.pending() == []
    # The audit log has the counts, nothing personal.
    [entry] = [e for e in await store.audit.recent() if e.action == "user.erased"]
    assert entry.detail["texts"] == 1 and entry.detail["files"] == 2 and entry.detail["locations"] == 1
    assert entry.detail["files_deleted"] == 2 and entry.detail["sessions"] == 1 and entry.detail["content"] is True
    assert entry.detail["consents"] == 2 and entry.detail["consents_withdrawn"] == 2
    logged = json.dumps(entry.detail, ensure_ascii=False)
    assert "Lan" not in logged and "sụt lún" not in logged and "1001" not in logged


async def test_erasure_can_keep_case_content_unlinked(harness, store):
    now = harness.clock()
    await staff(store, now, "8001", "cadre", communes=("Hải Lăng",))
    p = harness.person()
    await turns(p, ONBOARD)
    await report_with_photo_voice_and_location(p)
    case = await store.cases.by_code("PA-26-000001")
    await turns(p, [("/xoadulieu", []), ("[Xóa, nhưng giữ nội dung ý kiến]", [
        "Đã xóa dữ liệu", "1 ý kiến được giữ nguyên nội dung", "không còn gắn với Ông/Bà", "!đã được đóng"])])
    kept = await store.cases.get(case.id)
    assert kept.content == CONTENT and kept.status == "new" and kept.user_id is None
    assert [a.kind for a in await store.cases.attachments(case.id)] == ["photo", "voice", "location"]
    assert not [r for chat, r, _ in harness.channel.sent if chat == "8001"]
    # The cadre still has the case to handle, and is not led to think its sender chose anonymity.
    card = render(await harness.person("8001").choose(f"1:cs:{case.id}"))
    assert CONTENT in card and "không còn lưu (người gửi đã xóa dữ liệu" in card and "ẩn danh" not in card
    [entry] = [e for e in await store.audit.recent() if e.action == "user.erased"]
    assert entry.detail["content"] is False and entry.detail["cases"] == 1 and entry.detail["files_deleted"] == 0


async def test_without_cases_the_choice_is_only_yes_or_no(harness, store):
    p = harness.person()
    await turns(p, ONBOARD)
    await turns(p, [("/xoadulieu", ["!ý kiến"])])
    assert p.labels() == ["Xóa dữ liệu của tôi", "Không, giữ lại"]
    await turns(p, [("[Xóa dữ liệu của tôi]", ["Đã xóa dữ liệu", "xã/phường và ngày tham gia", "!Nội dung của"])])


async def test_a_file_another_record_refers_to_stays_on_disk(store, clock):
    now = clock()
    commune = (await store.localities.search("Hải Lăng", level=1))[0]
    village = (await store.localities.children(commune.id))[0]
    lan, binh = await citizen(store, now, "1001"), await citizen(store, now, "1002", "Trần Văn Bình")
    shared, own = await store.files.put(PHOTO), await store.files.put(PHOTO + b"own")
    topic = (await store.topics.by_code("nong-thon-moi")).id
    for user_id, files in ((lan, (shared, own)), (binh, (shared,))):
        await store.cases.create(NewCase(
            "phananh", user_id, False, topic, village.id, CONTENT, False, None, now, now,
            attachments=tuple(Attachment("photo", d, "image/jpeg", 10, None, None, None) for d in files)), now)
    erased = await store.users.erase(lan, "v1", now, marker=MARKER)
    assert (erased.files, erased.files_deleted) == (2, 1)
    assert await store.files.get(own) is None and await store.files.get(shared) is not None  # Bình's case has it
    [case] = (await store.cases.all_matching(InboxQuery(None, view="all"), now, now))[:1]
    assert case.locality_id == commune.id and case.locality_path == commune.path  # the village could point at her
    await store.users.erase(binh, "v1", now, marker=MARKER)
    assert await store.files.get(shared) is None


async def test_a_file_a_web_chat_names_stays_when_the_last_case_naming_it_is_erased(store, clock):
    """A photo sent in the web chat and kept by a case is one file (content-addressed); on PostgreSQL the web chat
    names it in `web_files`: erasing the case's author must not take it from under the chat."""
    now = clock()
    commune = (await store.localities.search("Hải Lăng", level=1))[0]
    lan = await citizen(store, now, "1001")
    photo = await store.files.put(PHOTO)
    topic = (await store.topics.by_code("nong-thon-moi")).id
    await store.cases.create(NewCase(
        "phananh", lan, False, topic, commune.id, CONTENT, False, None, now, now,
        attachments=(Attachment("photo", photo, "image/jpeg", 10, None, None, None),)), now)
    await store.db.execute("INSERT INTO web_files (channel, owner, name, sha256) VALUES ('web', 'o1', 'a.jpg', ?)",
                           (photo,))
    erased = await store.users.erase(lan, "v1", now, marker=MARKER)
    assert (erased.files, erased.files_deleted) == (1, 0)
    assert await store.files.get(photo) is not None


async def test_erasure_takes_the_web_chats_files_by_name_in_its_own_transaction(store, clock):
    """On PostgreSQL the web chat keeps its files by name in `web_files` (storage/web_files.py): the erasure's
    transaction takes the chat's names and, once committed, the bytes nothing else names; another chat's stay."""
    from storage.web_files import owner_of

    now = clock()
    lan, binh = await citizen(store, now, "1001"), await citizen(store, now, "1002", "Trần Văn Bình")
    own, theirs = await store.files.put(PHOTO + b"lan"), await store.files.put(PHOTO + b"binh")
    for chat, digest in (("1001", own), ("1002", theirs)):
        await store.db.execute("INSERT INTO web_files (channel, owner, name, sha256) VALUES ('test', ?, 'a.jpg', ?)",
                               (owner_of(chat), digest))
    erased = await store.users.erase(lan, "v1", now, marker=MARKER)
    assert erased.files_deleted == 1
    assert await store.files.get(own) is None and await store.files.get(theirs) is not None
    assert [r[0] for r in await store.db.fetchall("SELECT owner FROM web_files")] == [owner_of("1002")]
    assert binh


async def test_an_erasure_takes_the_chats_handled_updates_whose_done_mark_was_still_waiting(store, clock, monkeypatch):
    """A handled update's done mark may wait for the journal's next write (storage/journal.py `done_soon`): the
    erasure marks those first, so the journal keeps none of the person's handled messages."""
    from bot.intake import Intake
    from handlers.base import Inbound

    monkeypatch.setattr("storage.journal.SOON_SECONDS", 600.0)
    harness = Harness(store, clock)
    intake = Intake(store, harness.router, clock)
    await citizen(store, clock(), "1001")

    async def send(*updates: tuple[str, dict]) -> list:
        before = len(harness.channel.sent)
        batch = [(update_id, Inbound("test", "1001", "1001", **event)) for update_id, event in updates]
        await asyncio.gather(*await intake.accept("test", batch))
        return [reply for _, reply, _ in harness.channel.sent[before:]]

    replies = await send(("u1", {"kind": "command", "command": "xoadulieu"}))
    [data] = [o.data for r in replies for row in r.options for o in row if o.label == "Xóa dữ liệu của tôi"]
    # One batch (a getUpdates answer): the message is handled, its mark waiting, when the erasure's click is.
    await send(("u2", {"kind": "text", "text": "Số điện thoại của tôi là 0912345678"}),
               ("u3", {"kind": "choice", "payload": data}))
    left = [r[0] for r in await store.db.fetchall("SELECT update_id FROM inbound_journal WHERE chat_id = '1001'")]
    assert left == ["u3"]  # the erasure's own update, until it is handled (then pruned with the rest)


async def test_erasing_a_case_already_closed_keeps_its_status(store, clock):
    now = clock()
    lan = await citizen(store, now)
    commune = (await store.localities.search("Hải Lăng", level=1))[0]
    case = await add_case(store, now, lan, commune.id)
    await store.cases.record(case.id, None, "resolved", now, expect="new", status="resolved", closed_at=now)
    erased = await store.users.erase(lan, "v1", now, marker=MARKER)
    assert erased.withdrawn == () and erased.texts == 1
    after = await store.cases.get(case.id)
    assert after.status == "resolved" and after.content == MARKER


async def test_the_privacy_notice_states_the_retention_periods(store, clock):
    harness = Harness(store, clock, RecordingChannel())
    harness.router.settings = replace(harness.router.settings, retention_months=18)
    p = harness.person()
    await turns(p, ONBOARD)
    # What the code does: answered cases age too (storage/retention.py), a recognised model keeps its content
    # (storage/dvk.py erase_person), a name typed for «Gửi kèm tên» may carry a phone number (handlers/cases.py).
    await turns(p, [("/quyenriengtu", ["18 tháng sau khi được trả lời, giải quyết xong", "không còn gắn với người gửi",
                                      "mô hình đã được công nhận đã được công bố nên giữ nội dung",
                                      "số điện thoại chỉ có khi Ông/Bà tự ghi kèm tên", "!không hỏi số điện thoại",
                                      "trong vòng 4 ngày", "trong vòng 30 ngày",
                                      "trang web được xóa khi đã 18 tháng không có tin nhắn mới"])])


async def test_the_rebuilt_cases_table_keeps_every_case_and_reference(tmp_path, monkeypatch, clock):
    """Migration 0019 rebuilds `cases` (for the status 'withdrawn'): a database with cases, attachments, history
    and a duplicate made before it keeps them all, with foreign keys still enforced afterwards."""
    before = [(n, sql) for n, sql in storage.db._migrations() if n < 19]
    with monkeypatch.context() as patched:
        patched.setattr(storage.db, "_migrations", lambda: before)
        store = await Store.open(tmp_path / "old.db")
    now = clock()
    lan = await citizen(store, now)
    commune = (await store.localities.search("Hải Lăng", level=1))[0]
    first = await add_case(store, now, lan, commune.id)
    second = await add_case(store, now, lan, commune.id, content="Trùng nội dung với ý kiến trước")
    await store.cases.record(second.id, None, "duplicate", now, expect="new", status="duplicate",
                             duplicate_of=first.id)
    await store.db.execute("INSERT INTO case_attachments (case_id, kind, latitude, longitude)"
                           " VALUES (?, 'location', 16.8, 107.1)", (first.id,))
    await store.close()
    store = await Store.open(tmp_path / "old.db")
    try:
        assert await store.db.version() >= 19
        assert (await store.cases.get(second.id)).duplicate_of == first.id
        assert [a.kind for a in await store.cases.attachments(first.id)] == ["location"]
        assert [e.kind for e in await store.cases.events(second.id, internal=True)] == ["created", "duplicate"]
        with pytest.raises(sqlite3.IntegrityError):
            await store.db.execute("INSERT INTO case_attachments (case_id, kind) VALUES (999, 'photo')")
        erased = await store.users.erase(lan, "v1", now, marker=MARKER)
        assert erased.withdrawn == (first.id,) and (await store.cases.get(first.id)).status == "withdrawn"
    finally:
        await store.close()


async def test_on_the_web_chat_the_history_uploads_and_session_go(tmp_path, clock):
    app = await build_app(tmp_path, clock, demo=False)
    try:
        async with client(app) as web:
            await web.open()
            await onboard(web)
            await web.say("/phananh")
            await web.click("An sinh xã hội")
            await web.click("Đúng", exact=True)
            answer = await web.http.post("/api/upload", content=png(), headers={"X-CSRF-Token": web.csrf,
                                                                                 "Content-Type": "image/png"})
            photo = answer.json()["messages"][0]["photo"]["url"]
            await web.say(CONTENT)
            await web.click("Tiếp tục")
            await web.click("Gửi kèm tên")
            await web.say("Nguyễn Văn An")
            await web.click("Không khẩn cấp")
            await web.click("✅ Gửi", exact=True)
            case = await app.store.cases.by_code("PA-26-000001")
            [digest] = [a.sha256 for a in await app.store.cases.attachments(case.id)]
            await web.say("/xoadulieu")
            said = text_of(await web.click("Xóa dữ liệu của tôi"))
            assert "Đã xóa dữ liệu" in said and "đã xóa 1 tệp" in said
            # The chat keeps only the confirmation; the photo is gone from the chat's uploads and the file store.
            assert [m["from"] for m in await web.history()] == ["bot"] and CONTENT not in text_of(await web.history())
            assert (await web.http.get(photo)).status_code == 404 and list(app.web.files.root.iterdir()) == []
            assert await app.store.files.get(digest) is None
            assert await app.store.db.fetchone("SELECT 1 FROM web_sessions") is None  # the cookie opens nothing
    finally:
        await app.stop()


async def test_the_cadres_notice_is_kept_by_the_erasure_itself(store, clock):
    """A crash right after the erasure still tells the cadres: the notice is in the outbox with the withdrawal."""
    now = clock()
    lan = await citizen(store, now)
    cadre = await staff(store, now, "8001", "cadre", communes=("Hải Lăng",))
    commune = (await store.localities.search("Hải Lăng", level=1))[0]
    open_case, closed = await add_case(store, now, lan, commune.id), await add_case(store, now, lan, commune.id)
    await store.cases.record(closed.id, None, "resolved", now, expect="new", status="resolved", closed_at=now)
    erased = await store.users.erase(lan, "v1", now, marker=MARKER, notices={
        open_case.id: [(cadre, '{"open": 1}')], closed.id: [(cadre, '{"closed": 1}')]})
    assert erased.withdrawn == (open_case.id,)
    assert [(user, text) for _, user, text in await store.notices.pending()] == [(cadre, '{"open": 1}')]
    assert [i for i, _, _ in erased.notices] == [i for i, _, _ in await store.notices.pending()]


@pytest.mark.backends("sqlite")  # one schema, read through SQLite's catalogue
async def test_every_table_naming_a_person_is_erased_or_kept_for_a_reason(store):
    tables = [r[0] for r in await store.db.fetchall("SELECT name FROM sqlite_master WHERE type = 'table'")]
    personal = set()
    for table in tables:
        columns = {r[1] for r in await store.db.fetchall(f"PRAGMA table_info({table})")}
        if columns & {"user_id", "chat_id"}:
            personal.add(table)
    erased = {table for table, _, _ in erasure.erased()}
    assert not erased & set(erasure.kept())
    assert personal <= erased | set(erasure.kept()), "a table names people: erase it (Feature.erased) or say why not"
