"""Workers sharing one PostgreSQL keep files by their bytes' digest. A deleter finds a file's last name gone in one
transaction and deletes its bytes in another; meanwhile another worker may name the same bytes (another chat's
upload of the same photo). The bytes must outlive the delete. The interleavings are made by hand: two stores, as
two workers."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest

from handlers.images import normalise
from storage import Store
from storage.conversations import Conversation
from storage.files import unreferenced
from storage.web_files import WebFileRepo
from tests.dialog import ONBOARD, turns
from tests.images import jpeg
from tests.test_leader import GUARD

pytestmark = pytest.mark.backends("postgresql")

PHOTO = b"anh cua xa"
PHOTO_JPEG = jpeg()


@contextlib.asynccontextmanager
async def two_workers(database) -> AsyncIterator[tuple[Store, Store]]:
    one = await Store.open(database)
    try:
        other = await Store.open(database)
        try:
            yield one, other
        finally:
            await other.close()
    finally:
        await one.close()


async def drop_name(store: Store, owner: str) -> set[str]:
    """What `WebFileRepo._drop` does before it deletes: the name goes, the bytes are found unnamed."""
    async with store.db.tx() as conn:
        async with conn.execute("DELETE FROM web_files WHERE owner = ? RETURNING sha256", (owner,)) as cur:
            dropped = [r[0] for r in await cur.fetchall()]
        return await unreferenced(conn, dropped)


async def test_bytes_named_again_after_the_check_survive_the_delete(database):
    async with two_workers(database) as (one, other):
        here, there = (WebFileRepo(s.db, s.files, "web") for s in (one, other))
        await here.put("chat1", "a.jpg", PHOTO)
        free = await drop_name(one, "chat1")
        assert free
        await there.put("chat2", "b.jpg", PHOTO)
        assert await one.files.delete(free) == 0
        assert await there.get("chat2", "b.jpg") == PHOTO


async def test_a_delete_waits_for_a_name_being_written_and_then_keeps_the_bytes(database):
    async with two_workers(database) as (one, other):
        here = WebFileRepo(one.db, one.files, "web")
        await here.put("chat1", "a.jpg", PHOTO)
        free = await drop_name(one, "chat1")
        async with other.db.tx() as conn:  # as WebFileRepo.put does, stopped before its commit
            digest = await other.files.put(PHOTO, conn)
            await conn.execute("INSERT INTO web_files (channel, owner, name, sha256) VALUES ('web', 'chat2', 'b.jpg',"
                               " ?)", (digest,))
            deleting = asyncio.create_task(one.files.delete(free))
            async with asyncio.timeout(GUARD):
                while not deleting.done() and not await _waiting_for_a_lock(other):
                    await asyncio.sleep(0.01)
            assert not deleting.done()
        assert await deleting == 0
        assert await WebFileRepo(other.db, other.files, "web").get("chat2", "b.jpg") == PHOTO


async def test_bytes_a_draft_names_survive_the_delete(database):
    async with two_workers(database) as (one, other):
        here = WebFileRepo(one.db, one.files, "web")
        await here.put("chat1", "a.jpg", PHOTO)
        free = await drop_name(one, "chat1")
        digest = await other.files.put(PHOTO)  # a person's half-written case holds the same photo
        await other.conversations.save("web", "chat2", Conversation("case", "photos", {
            "attachments": [{"sha256": digest}]}), datetime.now(UTC))
        assert await one.files.delete(free) == 0
        assert await other.files.get(digest) == PHOTO


async def test_bytes_nothing_names_go(database):
    async with two_workers(database) as (one, _):
        here = WebFileRepo(one.db, one.files, "web")
        await here.put("chat1", "a.jpg", PHOTO)
        assert await one.files.delete(await drop_name(one, "chat1")) == 1
        assert (await one.db.fetchone("SELECT count(*) FROM files"))[0] == 0


async def _waiting_for_a_lock(store: Store) -> bool:
    row = await store.db.fetchone("SELECT count(*) FROM pg_locks WHERE NOT granted")
    return row[0] > 0


@pytest.mark.backends()
async def test_a_photo_whose_bytes_a_delete_takes_right_after_they_are_put_is_kept(harness, store, database,
                                                                                   monkeypatch):
    """The handler puts the bytes, and names them only when the turn's draft is saved: a delete of the same bytes
    (found unnamed before) that lands in between must not leave the draft naming nothing."""
    other = await Store.open(database)
    try:
        p = harness.person("1001", name="Nguyễn Thị Lan")
        await turns(p, ONBOARD + [("/phananh", ["lĩnh vực nào"]), ("[Xây dựng nông thôn mới]", []),
                                  ("[Đúng]", ["mô tả sự việc"])])
        put, deleted = store.files.put, []

        async def put_then_deleted(content: bytes, *args) -> str:
            digest = await put(content, *args)
            if not deleted:  # the handler's put; not the one that restores
                deleted.append(await other.files.delete([digest]))
            return digest

        monkeypatch.setattr(store.files, "put", put_then_deleted)
        await p.photo(PHOTO_JPEG)
        [attachment] = (await store.conversations.get("test", "1001")).data["attachments"]
        assert deleted == [1]
        assert await other.files.get(attachment["sha256"]) == normalise(PHOTO_JPEG)
    finally:
        await other.close()
