"""Surveys under load.

    python -m bench.survey        # under 2 minutes; progress on stderr, one JSON line last on stdout

(a) 100 simulated people answer a 10-question survey through the Telegram channel (the real bot long-polling
    the fake Bot API on loopback, bench/inbound.py's harness), closed loop: each presses the next answer as soon
    as the previous one is in, and once finished changes their answers from the first question again.
    answers_per_s: updates answered per second in an 8 s window. Then 100 other people each press one answer
    every 2 s (open loop, 50 answers/s, as bench/inbound.py's steady_latency): p95_ms is from pressing an
    answer to the complete next question at the fake, 95th percentile (the closed loop's own p95 is queueing:
    100 people waiting on each other, closed_loop_p95_ms).
(b) 1,000,000 stored answers (100,000 respondents x 10 questions over the 78 communes and their villages),
    written straight into the database: one question's results by commune (median of 5, ms) and the whole
    Excel workbook (s); peak_rss_mb is the process's peak resident memory over the whole run.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import random
import resource
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from bench.inbound import Load, MachineLoad, Options, Person, Step, crowd, danvan_bot, percentile, user_ids
from handlers.consent import consent_version
from handlers.survey_results import workbook
from messages import Texts
from storage import Store
from storage.clock import iso
from storage.surveys import Choice, NewSurvey, Question
from tests.people import BASE_CHAT, make_people

QUESTIONS = 10
CHOICES = ("Tốt", "Bình thường", "Chưa tốt")


def say(message: str) -> None:
    print(f"[bench.survey {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def bench_survey(now: datetime) -> NewSurvey:
    questions = tuple(Question(f"q{n}", "single", f"Câu hỏi số {n} về đời sống ở địa phương?", None, True,
                               tuple(Choice(f"c{i}", f"{label} {n}") for i, label in enumerate(CHOICES)))
                      for n in range(1, QUESTIONS + 1))
    return NewSurvey("bench", "Khảo sát đo tải", "Mười câu hỏi một lựa chọn.", now - timedelta(days=1),
                     now + timedelta(days=30), questions, anonymous=True)


def answering() -> list[Step]:
    """The ten answers, each followed by the next question (the last by the thanks)."""
    steps = [Step(f"[{CHOICES[n % 3]} {n}]", 1, f"Câu {n + 1}/{QUESTIONS}") for n in range(1, QUESTIONS)]
    return [*steps, Step(f"[{CHOICES[QUESTIONS % 3]} {QUESTIONS}]", 1, "Cảm ơn Ông/Bà")]


async def part_a(opts: Options) -> dict:
    say(f"(a) {opts.people} people answering a {QUESTIONS}-question survey: closed loop for {opts.window}s, then "
        f"open loop (one answer each every {opts.period}s) for {opts.latency_window}s")
    async with danvan_bot(opts, opts.tmp / "answers.db") as (api, app):
        now = datetime.now(UTC)
        await app.store.surveys.save_all([bench_survey(now)], now)
        version = consent_version(Texts("vi")("consent.opinions"), "vi")
        for first in (BASE_CHAT, BASE_CHAT + 100_000):
            ids = await make_people(app.store, opts.people, topics=("an-sinh",), first_chat=first)
            await app.store.db.executemany("INSERT INTO consents (user_id, purpose, granted, text_version, at)"
                                           " VALUES (?, 'opinions', 1, ?, ?)", [(i, version, iso(now)) for i in ids])
        answers = answering()

        async def script(person: Person) -> None:
            await person.step(Step("/khaosat", 1, "Khảo sát đo tải"))
            await person.step(Step("[Khảo sát đo tải]", 1, "Câu 1/"))
            while True:  # answer, then change every answer from the first question again
                await person.run(answers)
                await person.step(Step("/khaosat", 1, "Khảo sát đo tải"))
                await person.step(Step("[Khảo sát đo tải]", 1, "Sửa câu trả lời"))
                await person.step(Step("[Sửa câu trả lời]", 1, "Câu 1/"))

        begin = time.monotonic() + opts.warmup
        closed = Load(begin, begin + opts.window)
        chats = user_ids(BASE_CHAT)
        await crowd([(Person(api, closed, chats), script) for _ in range(opts.people)], closed)
        start = time.monotonic() + 0.5
        steady = Load(start + opts.period, start + opts.period + opts.latency_window)  # the first round warms up
        chats = user_ids(BASE_CHAT + 100_000)
        await crowd([(Person(api, steady, chats, period=opts.period, first_at=start + i * opts.period / opts.people),
                      script) for i in range(opts.people)], steady)
        begun, finished = await app.store.surveys.respondents((await app.store.surveys.by_code("bench")).id)
    latencies = [done * 1000 for _, done in steady.latencies]
    say(f"(a) closed loop: {closed.updates} updates in {opts.window}s; open loop: {len(latencies)} samples; "
        f"{finished} of {begun} responses finished")
    return {"answers_per_s": round(closed.updates / opts.window, 1), "p95_ms": round(percentile(latencies, 95), 1),
            "p50_ms": round(percentile(latencies, 50), 1),
            "closed_loop_p95_ms": round(percentile([d * 1000 for _, d in closed.latencies], 95), 1),
            "open_loop_answers_per_s": round(steady.updates / opts.latency_window, 1), "late_pushes": steady.late}


async def fill(store: Store, respondents: int) -> int:
    """`respondents` finished responses of the bench survey, spread over every commune and its villages."""
    now = datetime.now(UTC)
    [survey_id] = await store.surveys.save_all([bench_survey(now)], now)
    places = [(r[0], r[1]) for r in await store.db.fetchall(
        "SELECT c.id, v.id FROM localities c LEFT JOIN localities v ON v.parent_id = c.id WHERE c.level = 1")]
    draw = random.Random(16)
    at = iso(now)
    batch = 10_000
    for start in range(0, respondents, batch):
        rows = [(survey_id, *draw.choice(places), at, at, at) for _ in range(min(batch, respondents - start))]
        async with store.db.tx() as conn:
            await conn.executemany("INSERT INTO survey_responses (survey_id, commune_id, village_id, started_at,"
                                   " updated_at, finished_at) VALUES (?, ?, ?, ?, ?, ?)", rows)
            async with conn.execute("SELECT max(id) FROM survey_responses") as cur:
                last = (await cur.fetchone())[0]
            first = last - len(rows) + 1
            await conn.executemany(
                "INSERT INTO survey_answers (survey_id, question, response_id, value) VALUES (?, ?, ?, ?)",
                [(survey_id, f"q{q}", r, f"c{draw.randrange(3)}") for r in range(first, last + 1)
                 for q in range(1, QUESTIONS + 1)])
    return survey_id


async def part_b(tmp: Path, respondents: int) -> dict:
    say(f"(b) {respondents:,} respondents x {QUESTIONS} questions: writing")
    store = await Store.open(tmp / "results.db")
    try:
        started = time.monotonic()
        survey_id = await fill(store, respondents)
        say(f"(b) written in {time.monotonic() - started:.1f}s; one question by commune")
        survey = await store.surveys.get(survey_id)
        timings = []
        for n in range(5):
            begun = time.perf_counter()
            tallies = await store.surveys.tallies(survey_id, f"q{n + 1}")
            timings.append((time.perf_counter() - begun) * 1000)
        assert sum(t.respondents for t in tallies) == respondents
        say("(b) the workbook")
        begun = time.perf_counter()
        content = await workbook(store, survey, None, ZoneInfo("Asia/Ho_Chi_Minh"), Texts("vi"))
        workbook_s = time.perf_counter() - begun
        say(f"(b) workbook {len(content) / 1e6:.1f} MB in {workbook_s:.1f}s")
    finally:
        await store.close()
    return {"results_by_commune_ms": round(statistics.median(timings), 1), "workbook_s": round(workbook_s, 1)}


async def run(opts: Options, respondents: int) -> dict:
    started, machine = time.monotonic(), MachineLoad()
    with tempfile.TemporaryDirectory(prefix="bench-survey-") as tmp:
        opts = Options(**{**opts.__dict__, "tmp": Path(tmp)})
        a = await part_a(opts)
        b = await part_b(Path(tmp), respondents)
    return {"bench": "survey", **a, **b, "people": opts.people, "respondents": respondents,
            "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "duration_s": round(time.monotonic() - started, 1), "other_load_cores": machine.others()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.survey", description=__doc__.split("\n\n")[0])
    parser.add_argument("--people", type=int, default=100)
    parser.add_argument("--window", type=float, default=8.0, help="measuring window of (a), seconds")
    parser.add_argument("--latency-window", type=float, default=10.0, help="open loop of (a), seconds")
    parser.add_argument("--respondents", type=int, default=100_000, help="(b)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    opts = Options(people=args.people, window=args.window, latency_window=args.latency_window)
    result = asyncio.run(run(opts, args.respondents))
    print(json.dumps(result, ensure_ascii=False), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
