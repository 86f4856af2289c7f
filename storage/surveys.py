"""Surveys, the responses people give, and what they add up to commune by commune.

A survey's questions are kept as JSON on the survey (they are read whole, never queried one by one); the
answers are rows (survey, question, response, value), a multiple choice one row per choice, so that one
question's results are one indexed range grouped by the respondent's commune and village.
"""

from __future__ import annotations

import itertools
import json
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime

from storage.broadcasts import INSERT, Audience, NewBroadcast, audience_conditions, insert_params
from storage.clock import iso
from storage.db import Database

KINDS = ("single", "multiple", "scale", "number", "yesno", "text", "locality")
CHOICE_KINDS = ("single", "multiple", "scale", "yesno")  # answered with one of a fixed list of values
TITLE, INTRO, QUESTION, LABEL = 120, 1000, 300, 60  # longest texts (characters)
MAX_QUESTIONS, MAX_CHOICES = 40, 10
REMINDER = "survey-reminder:"  # and the survey's id: the idempotency key of its one reminder (storage/schedule.py)
# Tables holding what a person answered: their export and erasure (handlers/surveys.py export, erase below).
PERSONAL_TABLES = ("survey_responses", "survey_answers")
# What an erasure keeps of them, and why (storage/users.py KEPT).
KEPT = {"survey_responses": "answers to anonymous surveys stay, linked to nobody; named ones are deleted (erase)"}


@dataclass(frozen=True)
class Choice:
    key: str
    vi: str
    en: str | None = None
    offer_report: bool = False  # answering it offers to open a phản ánh about it

    def label(self, language: str) -> str:
        return self.en if language == "en" and self.en else self.vi


@dataclass(frozen=True)
class Question:
    key: str
    kind: str
    text_vi: str
    text_en: str | None = None
    required: bool = True
    choices: tuple[Choice, ...] = ()  # single and multiple; scale and yes/no have theirs made (choices_of)
    low: int | None = None  # number: the range
    high: int | None = None
    show_if: tuple[str, tuple[str, ...]] | None = None  # (an earlier question, the values that show this one)

    def text(self, language: str) -> str:
        return self.text_en if language == "en" and self.text_en else self.text_vi

    def choice(self, key: str) -> Choice | None:
        return next((c for c in self.choices if c.key == key), None)


@dataclass(frozen=True)
class Survey:
    id: int
    code: str
    title_vi: str
    title_en: str | None
    intro_vi: str
    intro_en: str | None
    opens_at: str
    closes_at: str
    audience: Audience
    anonymous: bool
    political: bool
    remind_days: int | None
    questions: tuple[Question, ...]
    poll: bool = False

    def title(self, language: str) -> str:
        return self.title_en if language == "en" and self.title_en else self.title_vi

    def intro(self, language: str) -> str:
        return self.intro_en if language == "en" and self.intro_en else self.intro_vi

    def question(self, key: str) -> Question | None:
        return next((q for q in self.questions if q.key == key), None)

    def is_open(self, now: datetime) -> bool:
        return self.opens_at <= iso(now) < self.closes_at


@dataclass(frozen=True)
class NewSurvey:
    code: str
    title_vi: str
    intro_vi: str
    opens_at: datetime
    closes_at: datetime
    questions: tuple[Question, ...]
    title_en: str | None = None
    intro_en: str | None = None
    audience: Audience = field(default_factory=Audience)
    anonymous: bool = False
    political: bool = False
    remind_days: int | None = None
    poll: bool = False


@dataclass(frozen=True)
class Response:
    id: int
    survey_id: int
    user_id: int | None
    position: str | None
    finished_at: str | None
    answers: dict[str, tuple[str, ...]]  # question key → its values


@dataclass(frozen=True)
class Tally:
    """One question's answers in one place: how many respondents answered it, how many chose each value."""

    commune_id: int | None
    village_id: int | None
    respondents: int
    counts: dict[str, int]


@dataclass(frozen=True)
class TextAnswer:
    commune_id: int | None
    text: str
    small: bool  # its commune gave fewer answers than the reader's threshold: not to be named


def _dump_questions(questions: tuple[Question, ...]) -> str:
    return json.dumps([asdict(q) for q in questions], ensure_ascii=False)


def _load_questions(text: str) -> tuple[Question, ...]:
    out = []
    for q in json.loads(text):
        show_if = (q["show_if"][0], tuple(q["show_if"][1])) if q.get("show_if") else None
        out.append(Question(q["key"], q["kind"], q["text_vi"], q.get("text_en"), q.get("required", True),
                            tuple(Choice(**c) for c in q.get("choices", [])), q.get("low"), q.get("high"), show_if))
    return tuple(out)


_COLUMNS = ("id, code, title_vi, title_en, intro_vi, intro_en, opens_at, closes_at, audience, anonymous, political,"
            " remind_days, questions, poll")


def _survey(r) -> Survey:
    return Survey(r["id"], r["code"], r["title_vi"], r["title_en"], r["intro_vi"], r["intro_en"], r["opens_at"],
                  r["closes_at"], Audience.from_json(r["audience"]), bool(r["anonymous"]), bool(r["political"]),
                  r["remind_days"], _load_questions(r["questions"]), bool(r["poll"]))


def _audience_of(audience: Audience) -> tuple[str, list]:
    """Whether the person `u` is among a survey's audience: the broadcast's own conditions, without its news
    settings (a person who stopped the news may still answer)."""
    return audience_conditions(audience, ["u.deleted_at IS NULL"])


def _places(places: tuple[int, ...] | None) -> tuple[str, list]:
    """Responses from some communes or villages only (a cadre's scope); None: everywhere."""
    if places is None:
        return "", []
    marks = ",".join("?" * len(places)) or "NULL"
    return f" AND (r.commune_id IN ({marks}) OR r.village_id IN ({marks}))", [*places, *places]


_INSERT = ("INSERT INTO surveys (code, title_vi, title_en, intro_vi, intro_en, opens_at, closes_at, audience,"
           " anonymous, political, remind_days, questions, poll, created_at)"
           " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)")


def _insert_params(s: NewSurvey, code: str, now: datetime) -> tuple:
    return (code, s.title_vi, s.title_en, s.intro_vi, s.intro_en, iso(s.opens_at), iso(s.closes_at),
            s.audience.to_json(), int(s.anonymous), int(s.political), s.remind_days, _dump_questions(s.questions),
            int(s.poll), iso(now))


class SurveyRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- surveys

    async def save_all(self, surveys: list[NewSurvey], now: datetime) -> list[int]:
        """Create or replace surveys by code, all in one transaction. A survey's answers stay: questions keep
        their keys."""
        ids = []
        async with self.db.tx() as conn:
            for s in surveys:
                async with conn.execute(
                    f"{_INSERT} ON CONFLICT(code) DO UPDATE SET"
                    " title_vi = excluded.title_vi, title_en = excluded.title_en, intro_vi = excluded.intro_vi,"
                    " intro_en = excluded.intro_en, opens_at = excluded.opens_at, closes_at = excluded.closes_at,"
                    " audience = excluded.audience, anonymous = excluded.anonymous, political = excluded.political,"
                    " remind_days = excluded.remind_days, questions = excluded.questions, poll = excluded.poll"
                    " RETURNING id", _insert_params(s, s.code, now)) as cur:
                    ids.append((await cur.fetchone())[0])
        return ids

    async def add(self, survey: NewSurvey, now: datetime) -> tuple[int, str]:
        """A new survey that never replaces another: its code is `survey.code` and the first number free when it
        is written ("ks-261126-2"). Two admins publishing at once each get their own (on PostgreSQL the second
        insert waits for the first's and then finds its code taken). Returns (id, code)."""
        async with self.db.tx() as conn:
            for n in itertools.count(1):
                code = f"{survey.code}-{n}"
                async with conn.execute(f"{_INSERT} ON CONFLICT(code) DO NOTHING RETURNING id",
                                        _insert_params(survey, code, now)) as cur:
                    row = await cur.fetchone()
                if row is not None:
                    return row[0], code

    async def get(self, survey_id: int) -> Survey | None:
        r = await self.db.fetchone(f"SELECT {_COLUMNS} FROM surveys WHERE id = ?", (survey_id,))
        return _survey(r) if r else None

    async def by_code(self, code: str) -> Survey | None:
        r = await self.db.fetchone(f"SELECT {_COLUMNS} FROM surveys WHERE code = ?", (code,))
        return _survey(r) if r else None

    async def all(self) -> list[Survey]:
        return [_survey(r) for r in await self.db.fetchall(f"SELECT {_COLUMNS} FROM surveys ORDER BY id DESC")]

    async def open_at(self, now: datetime) -> list[Survey]:
        rows = await self.db.fetchall(f"SELECT {_COLUMNS} FROM surveys WHERE opens_at <= ? AND closes_at > ?"
                                      " ORDER BY closes_at, id", (iso(now), iso(now)))
        return [_survey(r) for r in rows]

    async def open_for(self, user_id: int, now: datetime) -> list[Survey]:
        """The surveys open now whose audience the person is in."""
        return [survey for survey in await self.open_at(now) if await self.in_audience(survey, user_id)]

    async def in_audience(self, survey: Survey, user_id: int) -> bool:
        where, params = _audience_of(survey.audience)
        return await self.db.fetchone(f"SELECT 1 FROM users u WHERE u.id = ? AND {where}",
                                      (user_id, *params)) is not None

    # -- one person's response

    async def response(self, survey_id: int, user_id: int) -> Response | None:
        r = await self.db.fetchone("SELECT id, survey_id, user_id, position, finished_at FROM survey_responses"
                                   " WHERE survey_id = ? AND user_id = ?", (survey_id, user_id))
        if r is None:
            return None
        answers: dict[str, list[str]] = {}
        for a in await self.db.fetchall("SELECT question, value FROM survey_answers WHERE response_id = ?"
                                        " ORDER BY question, value", (r["id"],)):
            answers.setdefault(a[0], []).append(a[1])
        return Response(r["id"], r["survey_id"], r["user_id"], r["position"], r["finished_at"],
                        {k: tuple(v) for k, v in answers.items()})

    async def start(self, survey_id: int, user_id: int, commune_id: int | None, village_id: int | None,
                    position: str, now: datetime) -> None:
        """A response begun (once per person and survey); its place is where the person lives now."""
        await self.db.execute(
            "INSERT INTO survey_responses (survey_id, user_id, commune_id, village_id, position, started_at,"
            " updated_at) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(survey_id, user_id) DO UPDATE SET"
            " commune_id = excluded.commune_id, village_id = excluded.village_id, updated_at = excluded.updated_at",
            (survey_id, user_id, commune_id, village_id, position, iso(now), iso(now)))

    async def answer(self, response_id: int, survey_id: int, question: str, values: tuple[str, ...],
                     dropped: tuple[str, ...], position: str | None, now: datetime) -> None:
        """Keep one answer (an empty tuple: skipped), forget the answers to questions it now hides (`dropped`),
        and move to `position` (None: the response is finished), in one transaction."""
        async with self.db.tx() as conn:
            for key in (question, *dropped):
                await conn.execute("DELETE FROM survey_answers WHERE survey_id = ? AND question = ?"
                                   " AND response_id = ?", (survey_id, key, response_id))
            await conn.executemany("INSERT OR IGNORE INTO survey_answers (survey_id, question, response_id, value)"
                                   " VALUES (?, ?, ?, ?)", [(survey_id, question, response_id, v) for v in values])
            await conn.execute(
                "UPDATE survey_responses SET position = ?, updated_at = ?,"
                " finished_at = CASE WHEN ? IS NULL THEN coalesce(finished_at, ?) ELSE finished_at END WHERE id = ?",
                (position, iso(now), position, iso(now), response_id))

    async def move(self, response_id: int, position: str | None, now: datetime) -> None:
        await self.db.execute("UPDATE survey_responses SET position = ?, updated_at = ? WHERE id = ?",
                              (position, iso(now), response_id))

    async def of_user(self, user_id: int) -> list[tuple[Survey, Response]]:
        rows = await self.db.fetchall("SELECT survey_id FROM survey_responses WHERE user_id = ? ORDER BY id",
                                      (user_id,))
        out = []
        for (survey_id,) in rows:
            out.append((await self.get(survey_id), await self.response(survey_id, user_id)))
        return out

    # -- results

    async def tallies(self, survey_id: int, question: str, places: tuple[int, ...] | None = None, *,
                      several: bool = False) -> list[Tally]:
        """One question's answers by commune and village: respondents and counts per value. `several`: a
        respondent may have more than one value (multiple choice), so respondents are counted on their own."""
        where, params = _places(places)
        counts = await self.db.fetchall(
            "SELECT r.commune_id, r.village_id, a.value, count(*) FROM survey_answers a"
            " JOIN survey_responses r ON r.id = a.response_id WHERE a.survey_id = ? AND a.question = ?"
            f"{where} GROUP BY r.commune_id, r.village_id, a.value", (survey_id, question, *params))
        tallies: dict[tuple, Tally] = {}
        for commune, village, value, count in counts:
            tally = tallies.setdefault((commune, village), Tally(commune, village, 0, {}))
            tally.counts[value] = count
        if not several:
            return [replace(t, respondents=sum(t.counts.values())) for t in tallies.values()]
        people = await self.db.fetchall(
            "SELECT r.commune_id, r.village_id, count(DISTINCT a.response_id) FROM survey_answers a"
            " JOIN survey_responses r ON r.id = a.response_id WHERE a.survey_id = ? AND a.question = ?"
            f"{where} GROUP BY r.commune_id, r.village_id", (survey_id, question, *params))
        return [replace(tallies[(r[0], r[1])], respondents=r[2]) for r in people]

    async def respondents(self, survey_id: int, places: tuple[int, ...] | None = None) -> tuple[int, int]:
        """(responses begun, responses finished)."""
        where, params = _places(places)
        r = await self.db.fetchone(f"SELECT count(*), count(r.finished_at) FROM survey_responses r"
                                   f" WHERE r.survey_id = ?{where}", (survey_id, *params))
        return int(r[0]), int(r[1])

    async def texts(self, survey_id: int, question: str, places: tuple[int, ...] | None = None,
                    limit: int = 1_000_000, least: int = 0, small: bool = True) -> list[TextAnswer]:
        """A free-text question's answers with the commune they came from. Those of a commune with fewer than `least`
        answers to it are marked small and come last, in the order they were given: their place is not to be
        named, nor guessed from where they stand among the others. Without `small`, they are left out."""
        where, params = _places(places)
        rows = await self.db.fetchall(
            "SELECT commune_id, value, n < ? FROM (SELECT r.commune_id, a.value, a.response_id,"
            " count(*) OVER (PARTITION BY r.commune_id) AS n FROM survey_answers a"
            f" JOIN survey_responses r ON r.id = a.response_id WHERE a.survey_id = ? AND a.question = ?{where}) t"
            f"{'' if small else ' WHERE n >= ?'}"
            " ORDER BY n < ?, CASE WHEN n < ? THEN NULL ELSE commune_id END, response_id LIMIT ?",
            (least, survey_id, question, *params, *(() if small else (least,)), least, least, limit))
        return [TextAnswer(r[0], r[1], bool(r[2])) for r in rows]

    async def text_counts(self, survey_id: int, question: str, places: tuple[int, ...] | None, least: int
                          ) -> tuple[int, dict[int | None, int]]:
        """A free-text question's answers in all, and how many came from each commune with fewer than `least`."""
        where, params = _places(places)
        rows = await self.db.fetchall(
            "SELECT r.commune_id, count(*) FROM survey_answers a JOIN survey_responses r ON r.id = a.response_id"
            f" WHERE a.survey_id = ? AND a.question = ?{where} GROUP BY r.commune_id", (survey_id, question, *params))
        return sum(int(r[1]) for r in rows), {r[0]: int(r[1]) for r in rows if r[1] < least}

    async def communes(self, survey_id: int, places: tuple[int, ...] | None = None) -> dict[int | None, int]:
        """How many responses with an answer each commune gave (the workbook's responses sheet lists those)."""
        where, params = _places(places)
        rows = await self.db.fetchall(
            "SELECT r.commune_id, count(*) FROM survey_responses r WHERE r.survey_id = ?"
            f"{where} AND EXISTS (SELECT 1 FROM survey_answers a WHERE a.response_id = r.id) GROUP BY r.commune_id",
            (survey_id, *params))
        return {r[0]: int(r[1]) for r in rows}

    async def rows(self, survey_id: int, after: int, limit: int, places: tuple[int, ...] | None = None,
                   names: bool = False) -> list[tuple]:
        """Answers for a workbook, the responses with ids in (after, after + limit]: (response, name, commune, village,
        finished_at, question, value). `names`: the respondent's name, read in the same query (a named survey);
        else None."""
        where, params = _places(places)
        name, join = ("u.display_name", " LEFT JOIN users u ON u.id = r.user_id") if names else ("NULL", "")
        return [tuple(r) for r in await self.db.fetchall(
            f"SELECT r.id, {name}, r.commune_id, r.village_id, r.finished_at, a.question, a.value"
            f" FROM survey_responses r JOIN survey_answers a ON a.response_id = r.id{join}"
            f" WHERE r.survey_id = ? AND r.id > ? AND r.id <= ?{where} ORDER BY r.id",
            (survey_id, after, after + limit, *params))]

    async def last_response_id(self, survey_id: int) -> int:
        r = await self.db.fetchone("SELECT coalesce(max(id), 0) FROM survey_responses WHERE survey_id = ?",
                                   (survey_id,))
        return int(r[0])

    # -- invitations and the reminder

    async def reminders_due(self, now: datetime) -> list[Survey]:
        """The open surveys whose one reminder is due (`remind_days` before they close) and not yet written (its
        REMINDER key not done): the reminder tick reads these only, not every survey."""
        due = self.db.dialect.days_before("s.closes_at", "s.remind_days")
        rows = await self.db.fetchall(
            f"SELECT {_COLUMNS} FROM surveys s WHERE s.remind_days IS NOT NULL AND s.opens_at <= ?"
            f" AND s.closes_at > ? AND {due} <= ? AND NOT EXISTS (SELECT 1 FROM scheduled_runs k"
            " WHERE k.key = ? || CAST(s.id AS TEXT) AND k.done_at IS NOT NULL) ORDER BY s.closes_at, s.id",
            (iso(now), iso(now), iso(now), REMINDER))
        return [_survey(r) for r in rows]

    async def invited_unfinished(self, survey_id: int) -> int:
        r = await self.db.fetchone(f"SELECT count(*) FROM ({_UNFINISHED}) unfinished", (survey_id, survey_id))
        return int(r[0])

    async def remind(self, new: NewBroadcast, now: datetime) -> int:
        """Write the reminder broadcast of `new.survey_id` with its recipients, those invited (an invitation delivered
        to them) who have not finished the survey, in one transaction, resolved: its audience is this list and never
        the whole province, even for an instant. Returns the broadcast's id."""
        async with self.db.tx() as conn:
            broadcast_id = (await conn.execute(INSERT, insert_params(new, now))).lastrowid
            await conn.execute(f"INSERT OR IGNORE INTO broadcast_recipients (broadcast_id, user_id)"
                               f" SELECT ?, user_id FROM ({_UNFINISHED}) unfinished",
                               (broadcast_id, new.survey_id, new.survey_id))
            async with conn.execute("SELECT count(*) FROM broadcast_recipients WHERE broadcast_id = ?",
                                    (broadcast_id,)) as cur:
                total = (await cur.fetchone())[0]
            await conn.execute("UPDATE broadcasts SET resolved = 1, total = ? WHERE id = ?", (total, broadcast_id))
        return broadcast_id

    async def broadcasts_for(self, survey_id: int) -> list[int]:
        """The announcements of the survey (its invitations, its reminder), cancelled ones aside."""
        rows = await self.db.fetchall("SELECT id FROM broadcasts WHERE survey_id = ? AND status <> 'cancelled'"
                                      " ORDER BY id", (survey_id,))
        return [r[0] for r in rows]


_UNFINISHED = ("SELECT DISTINCT rc.user_id FROM broadcast_recipients rc JOIN broadcasts b ON b.id = rc.broadcast_id"
               " WHERE b.survey_id = ? AND rc.status = 'sent' AND NOT EXISTS (SELECT 1 FROM survey_responses sr"
               " WHERE sr.survey_id = ? AND sr.user_id = rc.user_id AND sr.finished_at IS NOT NULL)")


async def move(conn, from_user: int, to_user: int) -> None:
    """Inside a link of two accounts (storage/links.py): the responses move to the account kept, one per survey
    (where both answered, the kept account's response stays and the other's goes)."""
    await conn.execute("DELETE FROM survey_responses WHERE user_id = ? AND survey_id IN"
                       " (SELECT survey_id FROM survey_responses WHERE user_id = ?)", (from_user, to_user))
    await conn.execute("UPDATE survey_responses SET user_id = ? WHERE user_id = ?", (to_user, from_user))


async def erase(conn, user_id: int, content: bool = True, digests: set[str] | None = None) -> None:
    """Inside the person's erasure (storage/users.py): answers to named surveys go; answers to anonymous ones
    stay, no longer linked to anyone (they were never shown with a name)."""
    await conn.execute("DELETE FROM survey_responses WHERE user_id = ? AND survey_id IN"
                       " (SELECT id FROM surveys WHERE anonymous = 0)", (user_id,))
    await conn.execute("UPDATE survey_responses SET user_id = NULL WHERE user_id = ?", (user_id,))
