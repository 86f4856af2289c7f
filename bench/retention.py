"""The retention job's first run on years of cases, and one erasure, on SQLite on disk.

    python -m bench.retention          # a few seconds; progress on stderr, one JSON line last on stdout

`--cases` cases closed long ago, each with a photo (a file of its own in the file store) and a GPS point, and
`--drafts` conversations holding a draft of 300 characters (the drafts an unreferenced file is looked for in).
The sweep goes through the cases in batches, each its own transaction: `max_batch_ms` is the longest the write
lock is held by one, which is how long a person's message may wait behind it. Then one person with 20 open cases
erases their data with their content. The run fails (exit 1, no figures) if anything is left behind.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta

import handlers  # noqa: F401  (the features declare what an erasure removes)
import storage.retention
from storage import Store
from storage.clock import iso


async def main(cases: int, drafts: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="bench-retention-") as folder:
        return await run(f"{folder}/bench.db", cases, drafts)


async def run(path: str, cases: int, drafts: int) -> dict:
    store = await Store.open(path)
    try:
        now = datetime(2026, 11, 26, tzinfo=UTC)
        long_ago = iso(now - timedelta(days=800))
        lan = await store.users.ensure("test", "1", "1", "Nguyễn Thị Lan", "vi", now - timedelta(days=900))
        topic = (await store.topics.by_code("nong-thon-moi")).id
        place = (await store.localities.search("Hải Lăng", level=1))[0]
        print(f"making {cases} old cases with photos and GPS points, {drafts} drafts", file=sys.stderr)
        await store.db.executemany(
            "INSERT INTO cases (code, kind, user_id, topic_id, locality_id, locality_path, content, status, created_at,"
            " ack_due, answer_due, closed_at) VALUES (?, 'phananh', ?, ?, ?, ?, 'Đường làng bị sạt lở', 'resolved',"
            " ?, ?, ?, ?)",
            [(f"PA-24-{i:06d}", lan.id, topic, place.id, place.path, long_ago, long_ago, long_ago, long_ago)
             for i in range(cases)])
        digests = [await store.files.put(f"photo {i}".encode()) for i in range(cases)]
        await store.db.executemany("INSERT INTO case_attachments (case_id, kind, sha256) VALUES (?, 'photo', ?)",
                                   [(i + 1, digest) for i, digest in enumerate(digests)])
        await store.db.executemany("INSERT INTO case_attachments (case_id, kind, latitude, longitude)"
                                   " VALUES (?, 'location', 16.8, 107.1)", [(i + 1,) for i in range(cases)])
        await store.db.executemany(
            "INSERT INTO conversations (channel, chat_id, flow, step, data, updated_at) VALUES ('test', ?, 'case',"
            " 'content', ?, ?)", [(str(i), json.dumps({"content": "x" * 300, "attachments": []}), iso(now))
                                  for i in range(drafts)])
        batches: list[float] = []
        one_batch = storage.retention.RetentionRepo._cases

        async def timed(self, *args):
            started = time.perf_counter()
            try:
                return await one_batch(self, *args)
            finally:
                batches.append(time.perf_counter() - started)

        storage.retention.RetentionRepo._cases = timed
        print("sweeping", file=sys.stderr)
        started = time.perf_counter()
        counts = await store.retention.sweep(cases_closed_before=now - timedelta(days=720), journal_before=now,
                                             stale_before=now, chats_idle_before=now,
                                             broadcasts_ended_before=now - timedelta(days=720), now=now)
        sweep_s = time.perf_counter() - started
        left = await store.db.fetchone("SELECT (SELECT count(*) FROM case_attachments),"
                                       " (SELECT count(*) FROM cases WHERE user_id IS NOT NULL)")
        if tuple(left) != (0, 0) or counts["files_deleted"] != cases or any(
                [await store.files.get(d) for d in digests[:: max(1, cases // 100)]]):
            raise SystemExit(f"retention left something behind: {tuple(left)}, {counts}")
        binh = await store.users.ensure("test", "2", "2", "Trần Văn Bình", "vi", now)
        await store.db.executemany(
            "INSERT INTO cases (code, kind, user_id, topic_id, locality_id, locality_path, content, created_at,"
            " ack_due, answer_due) VALUES (?, 'phananh', ?, ?, ?, ?, 'Đèn đường hỏng', ?, ?, ?)",
            [(f"PA-26-{i:06d}", binh.id, topic, place.id, place.path, iso(now), iso(now), iso(now)) for i in range(20)])
        started = time.perf_counter()
        erased = await store.users.erase(binh.id, "bench", now, marker="đã xóa theo yêu cầu của người gửi")
        erase_ms = (time.perf_counter() - started) * 1000
        if len(erased.withdrawn) != 20:
            raise SystemExit(f"the erasure withdrew {len(erased.withdrawn)} of 20 open cases")
        batches.sort()
        return {"bench": "retention", "cases": cases, "drafts": drafts, "sweep_s": round(sweep_s, 2),
                "cases_per_s": round(cases / sweep_s), "batches": len(batches),
                "median_batch_ms": round(batches[len(batches) // 2] * 1000, 1),
                "max_batch_ms": round(batches[-1] * 1000, 1), "erase_20_cases_ms": round(erase_ms, 1)}
    finally:
        await store.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", type=int, default=20_000)
    parser.add_argument("--drafts", type=int, default=5_000)
    arguments = parser.parse_args()
    print(json.dumps(asyncio.run(main(arguments.cases, arguments.drafts))))
