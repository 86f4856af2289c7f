"""Consultations on a draft document (migration 0024): the document by section and numbered paragraph, each
person's answer per section, their comments and how staff handled each."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from storage.broadcasts import Audience
from storage.clock import iso, parse
from storage.db import Database
from storage.localities import subtree_end

CODE = re.compile(r"^[A-Za-z0-9-]{2,40}$")  # "v_" + code fits a deep link
STANCES = ("agree", "comment", "skip")
OUTCOMES = ("accepted", "explained", "rejected")
# What a person's erasure deletes (storage/users.py): all they said in consultations and where they stopped.
PERSONAL_TABLES = ("consultation_comments", "consultation_answers", "consultation_progress")


async def move_person(conn, move: int, keep: int) -> None:
    """Two accounts linked (storage/links.py, inside its transaction): what the moved account said in consultations
    goes to the kept one where that account holds the sensitive consent (Decree 13), after any consents moved; else
    it stays with the moved account, which is erased with the person all the same."""
    async with conn.execute("SELECT granted FROM consents WHERE user_id = ? AND purpose = 'sensitive'"
                            " ORDER BY id DESC LIMIT 1", (keep,)) as cur:
        consent = await cur.fetchone()
    if consent is None or not consent[0]:
        return
    await conn.execute("UPDATE consultation_comments SET user_id = ? WHERE user_id = ?", (keep, move))
    # A section both accounts answered keeps the kept account's answer, as its settings are the ones in force.
    await conn.execute("INSERT INTO consultation_answers (section_id, user_id, stance, at) SELECT section_id, ?,"
                       " stance, at FROM consultation_answers WHERE user_id = ? ON CONFLICT DO NOTHING", (keep, move))
    await conn.execute("INSERT INTO consultation_progress (consultation_id, user_id, position, at) SELECT"
                       " consultation_id, ?, position, at FROM consultation_progress WHERE user_id = ?"
                       " ON CONFLICT DO NOTHING", (keep, move))
    for table in ("consultation_answers", "consultation_progress"):
        await conn.execute(f"DELETE FROM {table} WHERE user_id = ?", (move,))


class ConsultationError(Exception):
    """A consultation that cannot be saved or changed as asked; `key` names the reason in cli.file / consult."""

    def __init__(self, key: str, **values: object) -> None:
        super().__init__(key)
        self.key = key
        self.values = values


@dataclass(frozen=True)
class Paragraph:
    number: int
    text: str


@dataclass(frozen=True)
class Section:
    id: int
    position: int
    title: str
    paragraphs: tuple[Paragraph, ...]


@dataclass(frozen=True)
class Draft:
    """A document as loaded from a file, before it is saved."""

    title: str
    sections: tuple[tuple[str, tuple[Paragraph, ...]], ...]  # (section title, paragraphs)
    intro: str = ""


@dataclass(frozen=True)
class Consultation:
    id: int
    code: str
    title: str
    intro: str
    opens_at: str
    closes_at: str
    audience: Audience
    status: str
    broadcast_id: int | None
    created_at: str
    published_at: str | None
    closed_at: str | None

    def accepts(self, now: datetime) -> bool:
        """Comments may be written and changed: published, opened, not yet closed."""
        return self.status == "open" and parse(self.opens_at) <= now < parse(self.closes_at)


@dataclass(frozen=True)
class Comment:
    id: int
    section_id: int
    position: int  # the section's
    user_id: int
    paragraph: int | None
    text: str
    anonymous: bool
    channel: str
    commune_id: int | None
    created_at: str
    updated_at: str
    outcome: str | None
    explanation: str | None
    sender: str | None = None  # the commenter's name, only where they did not choose anonymity


@dataclass(frozen=True)
class Tally:
    """What became of one commenter's comments: told to them when the consultation closes."""

    user_id: int
    comments: int
    accepted: int
    explained: int
    rejected: int
    pending: int


_COLUMNS = ("id, code, title, intro, opens_at, closes_at, audience, status, broadcast_id, created_at, published_at,"
            " closed_at")
_COMMENT = ("c.id, c.section_id, s.position, c.user_id, c.paragraph, c.text, c.anonymous, c.channel, c.commune_id,"
            " c.created_at, c.updated_at, c.outcome, c.explanation,"
            " CASE WHEN c.anonymous = 0 THEN u.display_name END AS sender")
_COMMENT_FROM = ("consultation_comments c JOIN consultation_sections s ON s.id = c.section_id"
                 " JOIN users u ON u.id = c.user_id")


def _row(r) -> Consultation:
    return Consultation(r["id"], r["code"], r["title"], r["intro"], r["opens_at"], r["closes_at"],
                        Audience.from_json(r["audience"]), r["status"], r["broadcast_id"], r["created_at"],
                        r["published_at"], r["closed_at"])


def _comment(r) -> Comment:
    return Comment(r[0], r[1], r[2], r[3], r[4], r[5], bool(r[6]), r[7], r[8], r[9], r[10], r[11], r[12], r[13])


def _in_paths(paths: tuple[str, ...] | None, column: str = "c.commune_id") -> tuple[str, list]:
    """Rows whose locality `column` lies inside any of `paths` (a cadre's scope); None: everywhere (an admin)."""
    if paths is None:
        return "1 = 1", []
    if not paths:
        return "0 = 1", []
    ranges = " OR ".join("(l.path >= ? AND l.path < ?)" for _ in paths)
    return (f"EXISTS (SELECT 1 FROM localities l WHERE l.id = {column} AND ({ranges}))",
            [v for p in paths for v in (p, subtree_end(p))])


class ConsultationRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    # -- the document

    async def save(self, code: str, draft: Draft, opens_at: datetime, closes_at: datetime, audience: Audience,
                   now: datetime) -> Consultation:
        """Create, or replace a consultation not yet published (its document with it)."""
        if not CODE.match(code):
            raise ConsultationError("code", code=code)
        if closes_at <= opens_at:
            raise ConsultationError("dates")
        async with self.db.tx() as conn:
            async with conn.execute("SELECT id, status FROM consultations WHERE code = ?", (code,)) as cur:
                found = await cur.fetchone()
            if found is not None and found["status"] != "draft":
                raise ConsultationError("published", code=code)
            if found is not None:
                await conn.execute("DELETE FROM consultations WHERE id = ?", (found["id"],))
            cur = await conn.execute(
                "INSERT INTO consultations (code, title, intro, opens_at, closes_at, audience, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (code, draft.title, draft.intro, iso(opens_at), iso(closes_at), audience.to_json(), iso(now)))
            consultation_id = cur.lastrowid
            for position, (title, paragraphs) in enumerate(draft.sections, start=1):
                cur = await conn.execute("INSERT INTO consultation_sections (consultation_id, position, title)"
                                         " VALUES (?, ?, ?)", (consultation_id, position, title))
                await conn.executemany(
                    "INSERT INTO consultation_paragraphs (section_id, number, text) VALUES (?, ?, ?)",
                    [(cur.lastrowid, p.number, p.text) for p in paragraphs])
        return await self.get(consultation_id)

    async def get(self, consultation_id: int) -> Consultation | None:
        r = await self.db.fetchone(f"SELECT {_COLUMNS} FROM consultations WHERE id = ?", (consultation_id,))
        return _row(r) if r else None

    async def by_code(self, code: str) -> Consultation | None:
        r = await self.db.fetchone(f"SELECT {_COLUMNS} FROM consultations WHERE code = ?", (code,))
        return _row(r) if r else None

    async def published(self) -> list[Consultation]:
        """Open and closed ones, newest first: what people can read, and staff handle."""
        rows = await self.db.fetchall(f"SELECT {_COLUMNS} FROM consultations WHERE status <> 'draft'"
                                      " ORDER BY opens_at DESC, id DESC")
        return [_row(r) for r in rows]

    async def drafts(self) -> list[Consultation]:
        """Loaded, not yet published: what an admin may publish from the chat."""
        rows = await self.db.fetchall(f"SELECT {_COLUMNS} FROM consultations WHERE status = 'draft'"
                                      " ORDER BY created_at DESC, id DESC")
        return [_row(r) for r in rows]

    async def sections(self, consultation_id: int) -> list[Section]:
        rows = await self.db.fetchall(
            "SELECT s.id, s.position, s.title, p.number, p.text FROM consultation_sections s"
            " LEFT JOIN consultation_paragraphs p ON p.section_id = s.id WHERE s.consultation_id = ?"
            " ORDER BY s.position, p.number", (consultation_id,))
        sections: dict[int, tuple[int, str, list[Paragraph]]] = {}
        for r in rows:
            _, _, paragraphs = sections.setdefault(r[0], (r[1], r[2], []))
            if r[3] is not None:
                paragraphs.append(Paragraph(r[3], r[4]))
        return [Section(sid, pos, title, tuple(ps)) for sid, (pos, title, ps) in sections.items()]

    async def publish(self, consultation_id: int, broadcast_id: int | None, now: datetime) -> bool:
        """draft → open; False when it was published already."""
        async with self.db.tx() as conn:
            cur = await conn.execute("UPDATE consultations SET status = 'open', broadcast_id = ?, published_at = ?"
                                     " WHERE id = ? AND status = 'draft'", (broadcast_id, iso(now), consultation_id))
            return cur.rowcount == 1

    async def close(self, consultation_id: int, now: datetime) -> bool:
        """open → closed; False when it was not open (closed by someone else meanwhile)."""
        async with self.db.tx() as conn:
            cur = await conn.execute("UPDATE consultations SET status = 'closed', closed_at = ?"
                                     " WHERE id = ? AND status = 'open'", (iso(now), consultation_id))
            return cur.rowcount == 1

    # -- a reader

    def _accepting(self, section: str) -> str:
        """The condition that the consultation of `section` (a column or `?`) accepts comments now: named inside each
        write of a reader's, so that a close between the handler's check and the write is not overtaken. Two
        parameters follow the section's: now, now."""
        return ("EXISTS (SELECT 1 FROM consultation_sections s JOIN consultations k ON k.id = s.consultation_id"
                f" WHERE s.id = {section} AND k.status = 'open' AND k.opens_at <= ? AND k.closes_at > ?"
                f"{self.db.dialect.share_lock('k')})")

    async def answer(self, section_id: int, user_id: int, stance: str, now: datetime) -> bool:
        """False when the consultation no longer accepts answers (closed meanwhile): nothing is kept."""
        if stance not in STANCES:
            raise ValueError(stance)
        async with self.db.tx() as conn:
            cur = await conn.execute(
                "INSERT INTO consultation_answers (section_id, user_id, stance, at) SELECT ?, ?, ?, ?"
                f" WHERE {self._accepting('?')}"
                " ON CONFLICT (section_id, user_id) DO UPDATE SET stance = excluded.stance, at = excluded.at",
                (section_id, user_id, stance, iso(now), section_id, iso(now), iso(now)))
            return cur.rowcount == 1

    async def answers_of(self, consultation_id: int, user_id: int) -> dict[int, str]:
        """The person's answer per section position."""
        rows = await self.db.fetchall(
            "SELECT s.position, a.stance FROM consultation_answers a"
            " JOIN consultation_sections s ON s.id = a.section_id WHERE s.consultation_id = ? AND a.user_id = ?",
            (consultation_id, user_id))
        return {r[0]: r[1] for r in rows}

    async def set_progress(self, consultation_id: int, user_id: int, position: int, now: datetime) -> None:
        await self.db.execute(
            "INSERT INTO consultation_progress (consultation_id, user_id, position, at) VALUES (?, ?, ?, ?)"
            " ON CONFLICT (consultation_id, user_id) DO UPDATE SET position = excluded.position, at = excluded.at",
            (consultation_id, user_id, position, iso(now)))

    async def progress(self, consultation_id: int, user_id: int) -> int | None:
        r = await self.db.fetchone("SELECT position FROM consultation_progress WHERE consultation_id = ?"
                                   " AND user_id = ?", (consultation_id, user_id))
        return r[0] if r else None

    async def add_comment(self, section_id: int, user_id: int, paragraph: int | None, text: str, anonymous: bool,
                          channel: str, commune_id: int | None, now: datetime) -> int | None:
        """The comment, and «Có ý kiến» as the person's answer to its section, in one transaction; None (nothing
        kept) when the consultation no longer accepts comments."""
        async with self.db.tx() as conn:
            cur = await conn.execute(
                "INSERT INTO consultation_comments (section_id, user_id, paragraph, text, anonymous, channel,"
                " commune_id, created_at, updated_at) SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?"
                f" WHERE {self._accepting('?')} RETURNING id",
                (section_id, user_id, paragraph, text, int(anonymous), channel, commune_id, iso(now), iso(now),
                 section_id, iso(now), iso(now)))
            row = await cur.fetchone()
            if row is None:
                return None
            await conn.execute(
                "INSERT INTO consultation_answers (section_id, user_id, stance, at) VALUES (?, ?, 'comment', ?)"
                " ON CONFLICT (section_id, user_id) DO UPDATE SET stance = 'comment', at = excluded.at",
                (section_id, user_id, iso(now)))
            return row[0]

    async def change_comment(self, comment_id: int, user_id: int, paragraph: int | None, text: str, anonymous: bool,
                             now: datetime) -> bool:
        """The person's own comment rewritten; a handling it had is void, as it was of the earlier text. False when
        it is not theirs (any more), or its consultation no longer accepts comments."""
        async with self.db.tx() as conn:
            cur = await conn.execute(
                "UPDATE consultation_comments SET paragraph = ?, text = ?, anonymous = ?, updated_at = ?,"
                " outcome = NULL, explanation = NULL, handled_by = NULL, handled_at = NULL"
                f" WHERE id = ? AND user_id = ? AND {self._accepting('consultation_comments.section_id')}",
                (paragraph, text, int(anonymous), iso(now), comment_id, user_id, iso(now), iso(now)))
            return cur.rowcount == 1

    async def delete_comment(self, comment_id: int, user_id: int, now: datetime) -> bool:
        """False when it is not theirs (any more), or its consultation no longer accepts comments: it stays."""
        async with self.db.tx() as conn:
            cur = await conn.execute(
                "DELETE FROM consultation_comments WHERE id = ? AND user_id = ?"
                f" AND {self._accepting('consultation_comments.section_id')} RETURNING section_id",
                (comment_id, user_id, iso(now), iso(now)))
            row = await cur.fetchone()
            if row is None:
                return False
            # Without comments left on the section, its answer is no longer «Có ý kiến».
            await conn.execute(
                "DELETE FROM consultation_answers WHERE section_id = ? AND user_id = ? AND stance = 'comment'"
                " AND NOT EXISTS (SELECT 1 FROM consultation_comments WHERE section_id = ? AND user_id = ?)",
                (row[0], user_id, row[0], user_id))
            return True

    async def comment(self, comment_id: int) -> Comment | None:
        r = await self.db.fetchone(f"SELECT {_COMMENT} FROM {_COMMENT_FROM} WHERE c.id = ?", (comment_id,))
        return _comment(r) if r else None

    async def comments_of(self, consultation_id: int, user_id: int) -> list[Comment]:
        rows = await self.db.fetchall(f"SELECT {_COMMENT} FROM {_COMMENT_FROM} WHERE s.consultation_id = ?"
                                      " AND c.user_id = ? ORDER BY s.position, c.id", (consultation_id, user_id))
        return [_comment(r) for r in rows]

    # -- staff

    async def comments(self, consultation_id: int, paths: tuple[str, ...] | None = None,
                       position: int | None = None) -> list[Comment]:
        """Comments by section, paragraph and time: of one section, or all; within `paths` (a cadre's scope)."""
        where, params = _in_paths(paths)
        extra = " AND s.position = ?" if position is not None else ""
        rows = await self.db.fetchall(
            f"SELECT {_COMMENT} FROM {_COMMENT_FROM} WHERE s.consultation_id = ?{extra} AND {where}"
            " ORDER BY s.position, coalesce(c.paragraph, 0), c.id",
            [consultation_id, *([position] if position is not None else []), *params])
        return [_comment(r) for r in rows]

    async def counts(self, consultation_id: int, paths: tuple[str, ...] | None = None) -> dict[int, tuple[int, int]]:
        """Per section position: (comments, of them not handled yet), within `paths` (a cadre's scope)."""
        where, params = _in_paths(paths)
        rows = await self.db.fetchall(
            "SELECT s.position, count(*), sum(CASE WHEN c.outcome IS NULL THEN 1 ELSE 0 END)"
            f" FROM consultation_comments c JOIN consultation_sections s ON s.id = c.section_id"
            f" WHERE s.consultation_id = ? AND {where} GROUP BY s.position", [consultation_id, *params])
        return {r[0]: (r[1], r[2]) for r in rows}

    async def iter_comments(self, consultation_id: int, batch: int = 5000) -> AsyncIterator[list[Comment]]:
        """Every comment, a section at a time in batches: the report holds one section in memory."""
        last = 0
        while True:
            rows = await self.db.fetchall(
                f"SELECT {_COMMENT} FROM {_COMMENT_FROM} WHERE s.consultation_id = ? AND c.id > ?"
                " ORDER BY c.id LIMIT ?", (consultation_id, last, batch))
            if not rows:
                return
            last = rows[-1][0]
            yield [_comment(r) for r in rows]

    async def stances(self, consultation_id: int, paths: tuple[str, ...] | None = None) -> dict[int, dict[str, int]]:
        """Per section position: how many agreed, commented, skipped (of people living within `paths`)."""
        where, params = _in_paths(paths, "u.locality_id")
        rows = await self.db.fetchall(
            "SELECT s.position, a.stance, count(*) FROM consultation_answers a"
            " JOIN consultation_sections s ON s.id = a.section_id JOIN users u ON u.id = a.user_id"
            f" WHERE s.consultation_id = ? AND {where} GROUP BY s.position, a.stance", [consultation_id, *params])
        out: dict[int, dict[str, int]] = {}
        for position, stance, count in rows:
            out.setdefault(position, dict.fromkeys(STANCES, 0))[stance] = count
        return out

    async def handle(self, comment_id: int, outcome: str, explanation: str | None, by: int, now: datetime,
                     seen: tuple[str | None, str]) -> bool:
        """Mark a comment «Tiếp thu», «Giải trình» or «Không tiếp thu», while its consultation is open and the
        comment is as the staff member saw it: `seen` is its (outcome, updated_at) then. False otherwise (another
        cadre handled it, its author changed it, the consultation closed)."""
        if outcome not in OUTCOMES:
            raise ValueError(outcome)
        async with self.db.tx() as conn:
            cur = await conn.execute(
                "UPDATE consultation_comments SET outcome = ?, explanation = ?, handled_by = ?, handled_at = ?"
                " WHERE id = ? AND coalesce(outcome, '') = ? AND updated_at = ? AND EXISTS"
                " (SELECT 1 FROM consultation_sections s JOIN consultations k ON k.id = s.consultation_id"
                " WHERE s.id = consultation_comments.section_id AND k.status = 'open'"
                f"{self.db.dialect.share_lock('k')})",
                (outcome, explanation, by, iso(now), comment_id, seen[0] or "", seen[1]))
            return cur.rowcount == 1

    async def participation(self, consultation_id: int) -> list[tuple[int | None, str, int, int]]:
        """(commune id, channel, people, comments) of those who commented."""
        rows = await self.db.fetchall(
            "SELECT c.commune_id, c.channel, count(DISTINCT c.user_id), count(*) FROM consultation_comments c"
            " JOIN consultation_sections s ON s.id = c.section_id WHERE s.consultation_id = ?"
            " GROUP BY c.commune_id, c.channel ORDER BY c.commune_id, c.channel", (consultation_id,))
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    async def readers(self, consultation_id: int) -> int:
        """People who answered at least one section."""
        r = await self.db.fetchone(
            "SELECT count(DISTINCT a.user_id) FROM consultation_answers a JOIN consultation_sections s"
            " ON s.id = a.section_id WHERE s.consultation_id = ?", (consultation_id,))
        return r[0]

    async def commenters(self, consultation_id: int) -> list[int]:
        rows = await self.db.fetchall(
            "SELECT DISTINCT c.user_id FROM consultation_comments c JOIN consultation_sections s ON s.id = c.section_id"
            " JOIN users u ON u.id = c.user_id WHERE s.consultation_id = ? AND u.deleted_at IS NULL ORDER BY 1",
            (consultation_id,))
        return [r[0] for r in rows]

    async def tallies(self, consultation_id: int) -> list[Tally]:
        """Per commenter not erased, what became of their comments: one read for all the notices at closing."""
        rows = await self.db.fetchall(
            "SELECT c.user_id, count(*), sum(CASE WHEN c.outcome = 'accepted' THEN 1 ELSE 0 END),"
            " sum(CASE WHEN c.outcome = 'explained' THEN 1 ELSE 0 END),"
            " sum(CASE WHEN c.outcome = 'rejected' THEN 1 ELSE 0 END),"
            " sum(CASE WHEN c.outcome IS NULL THEN 1 ELSE 0 END)"
            " FROM consultation_comments c JOIN consultation_sections s ON s.id = c.section_id"
            " JOIN users u ON u.id = c.user_id WHERE s.consultation_id = ? AND u.deleted_at IS NULL"
            " GROUP BY c.user_id ORDER BY c.user_id", (consultation_id,))
        return [Tally(*(int(v) for v in r)) for r in rows]

    # -- a person's own data (/dulieu)

    async def comments_by_user(self, user_id: int) -> list[tuple[str, Comment]]:
        """(consultation code, comment) of everything the person wrote, anonymous comments included."""
        rows = await self.db.fetchall(
            f"SELECT k.code, {_COMMENT} FROM {_COMMENT_FROM} JOIN consultations k ON k.id = s.consultation_id"
            " WHERE c.user_id = ? ORDER BY c.id", (user_id,))
        return [(r[0], _comment(tuple(r)[1:])) for r in rows]

    async def answers_by_user(self, user_id: int) -> list[tuple[str, int, str, str]]:
        """(consultation code, section position, stance, when) of each section the person answered."""
        rows = await self.db.fetchall(
            "SELECT k.code, s.position, a.stance, a.at FROM consultation_answers a JOIN consultation_sections s"
            " ON s.id = a.section_id JOIN consultations k ON k.id = s.consultation_id WHERE a.user_id = ?"
            " ORDER BY k.id, s.position", (user_id,))
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    async def progress_by_user(self, user_id: int) -> list[tuple[str, int, str]]:
        """(consultation code, section position, when) of where the person stopped reading each draft."""
        rows = await self.db.fetchall(
            "SELECT k.code, p.position, p.at FROM consultation_progress p JOIN consultations k"
            " ON k.id = p.consultation_id WHERE p.user_id = ? ORDER BY k.id", (user_id,))
        return [(r[0], r[1], r[2]) for r in rows]
