"""Every cadre's morning digest over a year of cases: 1,000,000 cases in a realistic locality tree, 2,000
staff with scopes, one digest tick at 07:30 computing and sending (to a channel that discards) every digest.

    python -m bench.digest            # about 40 s on 2 cores; progress on stderr, one JSON line last
    python -m bench.digest --plans    # also print the query plans of a commune's and the province's digest

The database is a temporary file on disk, filled with plain sqlite3 in big transactions (the cases table's
indexes are dropped during the load and built again after it, from their own SQL). The digest tick is the
real one (bot.jobs.CadreSchedule.digests) through the real Router and Outbound; each digest's work (its
queries and its text) is timed on its own. The target: every digest in under 20 s, and a commune cadre's
digest far cheaper than a province admin's (its work follows the cases of its scope and period, not the
table). Figures and plans: bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

import bot.jobs
from bot.jobs import CadreSchedule
from bot.outbound import Outbound
from bot.router import Router
from handlers import registry
from handlers.base import Settings
from handlers.reports import case_scope
from storage import Store
from storage.clock import iso
from storage.digests import scope_parts
from tests.dialog import RecordingChannel

CASES = 1_000_000
STAFF = 2_000
CITIZENS = 100_000
VILLAGES_PER_COMMUNE = (6, 22)  # the seed has a few real villages per commune; the rest are made up
TOPIC_WEIGHTS = (0.30, 0.15, 0.05, 0.20, 0.10, 0.20)  # nông thôn mới, đô thị văn minh, văn kiện, an sinh, DVK, khác
NOW = datetime(2026, 11, 26, 0, 30, tzinfo=UTC)  # 07:30 in Vietnam: the digest slot
CONTENT = (
    "Đường bê tông liên thôn bị sụt lún sau mưa lũ, xe máy đi lại rất nguy hiểm, đề nghị xã sớm kiểm tra, sửa chữa.",
    "Đề nghị lắp thêm đèn chiếu sáng ở đoạn đường từ chợ về trường tiểu học, buổi tối học sinh đi lại khó khăn.",
    "Một số hộ cận nghèo trong thôn chưa nhận được tiền hỗ trợ khó khăn đợt vừa rồi, đề nghị rà soát lại danh sách.",
    "Góp ý dự thảo văn kiện: cần nói rõ hơn giải pháp giữ chân lao động trẻ ở nông thôn, tránh bỏ ruộng đi làm xa.",
    "Rác thải sinh hoạt tồn đọng ở điểm tập kết đầu thôn hơn một tuần chưa được thu gom, bốc mùi hôi thối.",
    "Đề nghị nhân rộng mô hình tổ tự quản bảo vệ môi trường của thôn ra các thôn khác, bà con hưởng ứng rất tốt.",
    "Kênh mương nội đồng bị bồi lấp, mùa khô không dẫn được nước vào ruộng, đề nghị hỗ trợ nạo vét trước vụ đông xuân.",
    "Vỉa hè đoạn đường chính bị lấn chiếm làm nơi buôn bán, người đi bộ phải đi xuống lòng đường rất nguy hiểm.",
)


def busy_seconds() -> float:
    """CPU seconds the whole machine has spent busy since boot (/proc/stat), to tell what others used."""
    fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]
    user, nice, system, _idle, _iowait, irq, softirq, steal = (int(v) for v in fields[:8])
    return (user + nice + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK")


def own_seconds() -> float:
    times = os.times()
    return times.user + times.system


def say(message: str) -> None:
    print(f"[bench.digest {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---- the data -----------------------------------------------------------------------------------------


def generate(path: Path, seed: int = 2026) -> None:
    """Villages, citizens, staff with scopes, campaigns and a year of cases, straight into SQLite."""
    rng = np.random.default_rng(seed)
    db = sqlite3.connect(path, isolation_level=None)
    db.execute("PRAGMA journal_mode=OFF")  # a bulk load into a throwaway file; WAL again at the end
    db.execute("PRAGMA synchronous=OFF")
    db.execute("PRAGMA cache_size=-400000")
    db.execute("PRAGMA temp_store=MEMORY")
    db.execute("BEGIN")
    # -- villages: each commune gets 6–22 (the real ones from the seed, then "Thôn N" / "Tổ dân phố N")
    communes = db.execute("SELECT id, code, kind, path FROM localities WHERE level = 1 ORDER BY id").fetchall()
    next_id = db.execute("SELECT max(id) FROM localities").fetchone()[0] + 1
    rows = []
    for commune_id, code, kind, path in communes:
        have = db.execute("SELECT count(*) FROM localities WHERE parent_id = ?", (commune_id,)).fetchone()[0]
        for n in range(have + 1, int(rng.integers(*VILLAGES_PER_COMMUNE)) + 1):
            village_kind = "to_dan_pho" if kind == "phuong" else "thon"
            name = f"{'Tổ dân phố' if kind == 'phuong' else 'Thôn'} {n} (bench)"
            rows.append((next_id, f"{code}-B{n:02d}", name, name.lower(), village_kind, 2, commune_id,
                         f"{path}{next_id}/"))
            next_id += 1
    db.executemany("INSERT INTO localities (id, code, name, name_folded, kind, level, parent_id, path)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
    villages: dict[int, list[tuple[int, str]]] = {c[0]: [] for c in communes}
    for vid, parent, vpath in db.execute("SELECT id, parent_id, path FROM localities WHERE level = 2"):
        villages[parent].append((vid, vpath))
    province_id, province_path = db.execute("SELECT id, path FROM localities WHERE level = 0").fetchone()
    topics = [r[0] for r in db.execute("SELECT id FROM topics ORDER BY position, id")]

    # -- citizens, living where the cases come from, following 1–3 topics
    weights = rng.lognormal(0, 0.8, len(communes))
    weights /= weights.sum()
    start_user = db.execute("SELECT coalesce(max(id), 0) FROM users").fetchone()[0] + 1
    citizen_commune = rng.choice(len(communes), CITIZENS, p=weights)
    now_text = iso(NOW)
    users, follows = [], []
    for n in range(CITIZENS):
        commune_id = communes[citizen_commune[n]][0]
        own = villages[commune_id]
        place = own[int(rng.integers(len(own)))][0] if own and rng.random() < 0.7 else commune_id
        uid = start_user + n
        users.append((uid, "telegram", f"c{uid}", f"c{uid}", None, "vi", "citizen", None, place, 1, 1, 1, now_text,
                      now_text))
        for topic in rng.choice(topics, int(rng.integers(1, 4)), replace=False):
            follows.append((uid, int(topic)))
    # -- staff: 20 admins, 80 province cadres, 1,900 commune cadres (a tenth cover two communes), a third of
    #    the cadres limited to one or two topics
    staff_start = start_user + CITIZENS
    scopes, staff_topics = [], []
    for n in range(STAFF):
        uid = staff_start + n
        role = "admin" if n < 20 else "cadre"
        users.append((uid, "telegram", f"s{uid}", f"s{uid}", f"Cán bộ {n}", "vi", role, f"Đơn vị {n}", None, 1, 1, 1,
                      now_text, now_text))
        if role == "admin":
            continue
        if n < 100:
            scopes.append((uid, province_id))
        else:
            picks = rng.choice(len(communes), 2 if rng.random() < 0.1 else 1, replace=False, p=weights)
            scopes += [(uid, communes[i][0]) for i in picks]
        if rng.random() < 0.33:
            staff_topics += [(uid, int(t)) for t in rng.choice(topics, int(rng.integers(1, 3)), replace=False)]
    db.executemany("INSERT INTO users (id, channel, external_id, chat_id, display_name, language, role, unit_name,"
                   " locality_id, onboarded, news_enabled, reachable, created_at, updated_at)"
                   " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", users)
    db.executemany("INSERT INTO user_topics (user_id, topic_id) VALUES (?, ?)", follows)
    db.executemany("INSERT INTO cadre_localities (user_id, locality_id) VALUES (?, ?)", scopes)
    db.executemany("INSERT INTO cadre_topics (user_id, topic_id) VALUES (?, ?)", staff_topics)
    # Digests start a day before the slot: each covers the last 24 hours.
    day_before = iso(NOW - timedelta(days=1))
    db.executemany("INSERT INTO digest_settings (user_id, last_end, updated_at) VALUES (?, ?, ?)",
                   [(staff_start + n, day_before, day_before) for n in range(STAFF)])
    for code, title, topic in (("ntm", "Chung tay xây dựng nông thôn mới", topics[0]),
                               ("dtvm", "Xây dựng đô thị văn minh", topics[1]), ("dvk", "Dân vận khéo", topics[4])):
        db.execute("INSERT INTO campaigns (code, title_vi, topic_id) VALUES (?, ?, ?)", (code, title, topic))
    # -- a half-year work plan: 12 tasks, 8 for the whole province and 4 for a few communes each; a third of
    #    the cadres have reported the earliest ones done
    tasks, targets, reports = [], [], []
    for n in range(12):
        deadline = iso(NOW + timedelta(days=3 + 15 * n, hours=16))
        tasks.append((n + 1, f"bench-{n + 1:02d}", f"Nhiệm vụ trọng tâm số {n + 1}", "", deadline, now_text))
        places = [province_id] if n < 8 else [communes[i][0] for i in rng.choice(len(communes), 5, replace=False)]
        targets += [(n + 1, place) for place in places]
    for uid, _ in scopes:
        for task_id in (1, 2, 3):
            if rng.random() < 0.33:
                reports.append((task_id, uid, now_text, "Đã hoàn thành"))
    db.executemany("INSERT INTO tasks (id, code, title, description, deadline, created_at) VALUES (?, ?, ?, ?, ?, ?)",
                   tasks)
    db.executemany("INSERT INTO task_localities (task_id, locality_id) VALUES (?, ?)", targets)
    db.executemany("INSERT OR IGNORE INTO task_reports (task_id, user_id, done_at, note) VALUES (?, ?, ?, ?)",
                   reports)
    db.execute("COMMIT")
    say(f"{len(rows)} villages added, {CITIZENS:,} citizens, {STAFF:,} staff, {len(tasks)} tasks")

    # -- cases: a year, weekdays busier; the older, the likelier closed. Built column by column (numpy),
    #    written in chunks with the table's indexes dropped, which are then built again from their own SQL.
    indexes = db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'cases'"
                         " AND sql IS NOT NULL").fetchall()
    db.execute("BEGIN")
    for name, _ in indexes:
        db.execute(f"DROP INDEX {name}")
    year = 365 * 86400
    seconds = np.sort(rng.integers(0, year, CASES * 2))
    local_weekday = ((seconds + 7 * 3600) // 86400 + 3) % 7  # the first day is a Thursday
    seconds = seconds[rng.random(len(seconds)) < np.where(local_weekday >= 5, 0.5, 1.0)][:CASES]
    assert len(seconds) == CASES
    start = np.datetime64(NOW.replace(tzinfo=None), "s") - np.timedelta64(year, "s")
    created = start + seconds.astype("timedelta64[s]")
    age_days = (year - seconds) / 86400
    # Where: a commune by its weight, then the commune itself (35 %) or one of its villages.
    commune_pick = rng.choice(len(communes), CASES, p=weights)
    locality = np.empty(CASES, dtype=np.int64)
    paths = np.empty(CASES, dtype=object)
    for index, (commune_id, _, _, commune_path) in enumerate(communes):
        mine = np.flatnonzero(commune_pick == index)
        own = villages[commune_id]
        at_village = rng.random(len(mine)) < 0.65 if own else np.zeros(len(mine), dtype=bool)
        which = rng.integers(0, max(len(own), 1), len(mine))
        village_ids = np.array([v[0] for v in own] or [commune_id])
        village_paths = np.array([v[1] for v in own] or [commune_path], dtype=object)
        locality[mine] = np.where(at_village, village_ids[which], commune_id)
        paths[mine] = np.where(at_village, village_paths[which], commune_path)
    report = rng.random(CASES) < 0.6
    urgent = report & (rng.random(CASES) < 0.03)
    anonymous = rng.random(CASES) < 0.15
    roll = rng.random(CASES)
    open_share = np.where(age_days > 30, 0.06, np.where(age_days > 10, 0.35, 0.7))
    is_open = roll < open_share
    rest = (roll - open_share) / (1 - open_share)
    status = np.select([is_open & (np.arange(CASES) % 3 == 0), is_open & (np.arange(CASES) % 3 == 1), is_open,
                        rest < 0.55, rest < 0.9, rest < 0.96],
                       ["new", "acknowledged", "in_progress", "resolved", "answered", "declined"], "duplicate")
    now64 = np.datetime64(NOW.replace(tzinfo=None), "s")
    done = np.minimum(created + (rng.uniform(0.5, 12, CASES) * 86400).astype("timedelta64[s]"),
                      now64 - np.timedelta64(60, "s"))
    answered = np.isin(status, ("resolved", "answered"))
    rating_roll = rng.random(CASES)
    rated = answered & (rating_roll < 0.4)
    rating = np.where(rating_roll < 0.24, "good", np.where(rating_roll < 0.34, "ok", "bad")).astype(object)
    rated_at = np.minimum(done + np.timedelta64(1, "D"), now64 - np.timedelta64(30, "s"))
    never = np.datetime64("NaT")

    def text(moments: np.ndarray, where: np.ndarray | None = None) -> list:
        if where is not None:
            moments = np.where(where, moments, never)
        return [None if t == "NaT" else t + "+00:00" for t in np.datetime_as_string(moments, unit="s").tolist()]

    ids = np.arange(1, CASES + 1)
    years = (created.astype("datetime64[Y]").astype(int) + 1970) % 100
    codes = [f"{'PA' if r else 'GY'}-{y:02d}-{i:07d}" for r, y, i in zip(report.tolist(), years.tolist(),
                                                                        ids.tolist(), strict=True)]
    assigned = np.where(rng.random(CASES) < 0.01, rng.integers(staff_start + 20, staff_start + STAFF, CASES), 0)
    columns = [
        ids.tolist(), codes, np.where(report, "phananh", "gopy").tolist(),
        rng.integers(start_user, start_user + CITIZENS, CASES).tolist(), anonymous.astype(int).tolist(),
        rng.choice(topics, CASES, p=TOPIC_WEIGHTS).tolist(), locality.tolist(), paths.tolist(),
        [CONTENT[i] for i in rng.integers(0, len(CONTENT), CASES).tolist()], urgent.astype(int).tolist(),
        status.tolist(), text(created), text(created + np.timedelta64(1, "D")),
        text(created + np.timedelta64(14, "D")), text(created + np.timedelta64(8, "h"), status != "new"),
        text(done, answered), text(done, ~is_open & (status != "answered")),
        [a or None for a in assigned.tolist()], np.where(rated, rating, None).tolist(), text(rated_at, rated),
    ]
    rows = list(zip(*columns, strict=True))
    del columns
    written = 0
    for i in range(0, CASES, 200_000):
        db.executemany(
            "INSERT INTO cases (id, code, kind, user_id, anonymous, topic_id, locality_id, locality_path, content,"
            " urgent, status, created_at, ack_due, answer_due, acknowledged_at, answered_at, closed_at, assigned_to,"
            " rating, rated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            rows[i : i + 200_000])
        written += len(rows[i : i + 200_000])
    db.execute("COMMIT")
    say(f"{written:,} cases written; building {len(indexes)} indexes")
    db.execute("BEGIN")
    for _, sql in indexes:
        db.execute(sql)
    db.execute("COMMIT")
    db.execute("PRAGMA journal_mode=WAL")
    db.close()


# ---- the measurement -----------------------------------------------------------------------------------


async def plans(store: Store, kinds: dict[int, str]) -> None:
    """EXPLAIN QUERY PLAN of each digest query, for a commune cadre of some topics and a province admin."""
    topical = {r[0] for r in await store.db.fetchall("SELECT user_id FROM cadre_topics")}
    commune = next(u for u, k in kinds.items() if k == "commune" and u in topical)
    admin = next(u for u, k in kinds.items() if k == "admin")
    start, end, soon = iso(NOW - timedelta(days=1)), iso(NOW), iso(NOW + timedelta(days=2))
    queries = {
        "new cases by topic and place": ("SELECT topic_id, locality_id, count(*), sum(urgent) FROM cases WHERE {w}"
                                         " GROUP BY topic_id, locality_id", "created_at >= ? AND created_at < ?",
                                         [start, end], []),
        "open, overdue, due soon": ("SELECT count(*), sum(answer_due < ?), sum(answer_due >= ? AND answer_due < ?)"
                                    " FROM cases WHERE {w}", "status IN ('new', 'acknowledged', 'in_progress')", [],
                                    [end, end, soon]),
        "answered in the period": ("SELECT count(*) FROM cases WHERE {w}", "answered_at >= ? AND answered_at < ?",
                                   [start, end], []),
        "ratings in the period": ("SELECT rating, count(*) FROM cases WHERE {w} GROUP BY rating",
                                  "rated_at >= ? AND rated_at < ?", [start, end], []),
    }
    for who, user_id in (("commune cadre", commune), ("province admin", admin)):
        user = await store.users.get(user_id)
        scope = await case_scope(store, user)
        print(f"\n### {who} (roots {list(scope.roots)}, topics {sorted(scope.topics) or 'all'})", file=sys.stderr)
        for title, (sql, condition, params, before) in queries.items():
            print(f"\n{title}:", file=sys.stderr)
            parts = scope_parts(scope, condition, params)
            for part, (where, values) in zip(("scope", "assigned"), parts, strict=False):
                rows = await store.db.fetchall("EXPLAIN QUERY PLAN " + sql.format(w=where), (*before, *values))
                print(f"  ({part})", file=sys.stderr)
                for r in rows:
                    print(f"    {r[3]}", file=sys.stderr)


async def measure(path: Path, kinds: dict[int, str], show_plans: bool) -> dict:
    store = await Store.open(path)
    try:
        # A database kept from an earlier run (--db): every digest due again, as on the first run.
        await store.db.execute("DELETE FROM scheduled_runs WHERE key LIKE 'digest:%'")
        await store.db.execute("UPDATE digest_settings SET last_end = ?", (iso(NOW - timedelta(days=1)),))
        if show_plans:
            await plans(store, kinds)
        channel = RecordingChannel(name="telegram")
        outbound = Outbound(store, lambda: NOW)
        outbound.add(channel)
        settings = Settings()
        router = Router(store, settings, registry, outbound, lambda: NOW)
        schedule = CadreSchedule(store, router, settings)
        timings: dict[int, float] = {}
        compose = bot.jobs.compose

        async def timed(store_, settings_, user, *args, **kwargs):
            began = time.perf_counter()
            try:
                return await compose(store_, settings_, user, *args, **kwargs)
            finally:
                timings[user.id] = (time.perf_counter() - began) * 1000

        bot.jobs.compose = timed
        try:
            machine, own, began = busy_seconds(), own_seconds(), time.perf_counter()
            await schedule.digests(NOW)
            seconds = time.perf_counter() - began
            cpu = own_seconds() - own
            other = max(0.0, (busy_seconds() - machine - cpu) / seconds)
        finally:
            bot.jobs.compose = compose
        sent = len(channel.sent)
        if len(timings) != STAFF or sent != STAFF:
            raise RuntimeError(f"{len(timings)} digests made and {sent} sent, for {STAFF} staff")
        again = time.perf_counter()
        await schedule.digests(NOW + timedelta(minutes=1))  # the next tick: nothing due, nothing sent
        idle = time.perf_counter() - again
        if len(channel.sent) != sent:
            raise RuntimeError("a digest was sent twice")
    finally:
        await store.close()
    by_kind = {k: sorted(ms for u, ms in timings.items() if kinds[u] == k) for k in ("commune", "province", "admin")}
    values = sorted(timings.values())
    say(f"tick: {seconds:.2f} s for {STAFF} digests ({cpu:.1f} s of CPU, this process's threads); the next tick"
        f" (nothing due) {idle * 1000:.0f} ms; other load on the machine {other:.2f} cores")
    for kind, ms in by_kind.items():
        say(f"{kind:>8}: {len(ms)} digests, median {statistics.median(ms):.1f} ms, max {max(ms):.1f} ms")
    return {"bench": "digest", "cases": CASES, "cadres": STAFF, "seconds": round(seconds, 2),
            "per_digest_ms_p95": round(values[int(len(values) * 0.95) - 1], 1),
            "commune_vs_province_ms": [round(statistics.median(by_kind["commune"]), 1),
                                       round(statistics.median(by_kind["admin"]), 1)],
            "per_digest_ms_p50": round(statistics.median(values), 1),
            "province_cadre_ms": round(statistics.median(by_kind["province"]), 1),
            "cpu_s": round(cpu, 2), "idle_tick_ms": round(idle * 1000, 1), "other_load_cores": round(other, 2)}


async def prepare(path: Path) -> None:
    store = await Store.open(path)  # migrations and the real locality tree
    await store.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.digest", description=__doc__.split("\n\n")[0])
    parser.add_argument("--plans", action="store_true", help="print the query plans (stderr)")
    parser.add_argument("--db", type=Path, help="keep the generated database here and use it again next time")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="bench-digest-") as folder:
        path = args.db or Path(folder) / "digest.db"
        if args.db is None or not path.exists():
            began = time.perf_counter()
            asyncio.run(prepare(path))
            generate(path)
            say(f"data ready in {time.perf_counter() - began:.1f} s ({path.stat().st_size / 2**20:.0f} MiB)")
            os.sync()  # the load's write-back must not land in the measured tick (its commits wait on the disk)
            say(f"written to disk in {time.perf_counter() - began:.1f} s")
        result = asyncio.run(measure(path, staff_kinds(path), args.plans))
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0


def staff_kinds(path: Path) -> dict[int, str]:
    """admin, province (a cadre of the whole province) or commune, by user id."""
    db = sqlite3.connect(path)
    try:
        rows = db.execute("SELECT u.id, u.role, min(l.level) FROM users u LEFT JOIN cadre_localities cl"
                          " ON cl.user_id = u.id LEFT JOIN localities l ON l.id = cl.locality_id"
                          " WHERE u.role <> 'citizen' GROUP BY u.id").fetchall()
    finally:
        db.close()
    return {uid: "admin" if role == "admin" else "province" if level == 0 else "commune" for uid, role, level in rows}


if __name__ == "__main__":
    sys.exit(main())
