""""Dân vận khéo" (migration 0025): rounds, nominated models, their photos, history and votes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

import aiosqlite

from storage.clock import iso
from storage.db import Database
from storage.localities import subtree_end

FIELDS = ("kinh_te", "van_hoa_xa_hoi", "quoc_phong_an_ninh", "he_thong_chinh_tri")
STATUSES = ("nominated", "info_requested", "verified", "declined", "recognised", "withdrawn")
OPEN = ("nominated", "info_requested")  # waiting for a cadre's verification
LEVELS = ("commune", "province")
# Tables holding what a person gave or did here, each with the column naming them: /dulieu exports them
# (handlers/dvk.py `export`) and /xoadulieu unlinks them (`erase_person`), keeping rows for the reasons in KEPT.
PERSONAL_TABLES = {"dvk_models": "user_id", "dvk_events": "actor_id", "dvk_votes": "user_id"}
KEPT = {
    "dvk_models": "unlinked; content blanked by default unless recognised, i.e. published (erase_person)",
    "dvk_events": "a nomination's history, unlinked; what the nominator added blanked with the content",
    "dvk_votes": "a vote still counts, with its commune, linked to nobody",
}


@dataclass(frozen=True)
class Round:
    id: int
    name: str
    year: int
    starts_on: str
    ends_on: str
    criteria: str
    vote_starts_on: str | None
    vote_ends_on: str | None

    def voting_on(self, today: date) -> bool:
        return (self.vote_starts_on is not None and self.vote_ends_on is not None
                and self.vote_starts_on <= today.isoformat() <= self.vote_ends_on)


@dataclass(frozen=True)
class Model:
    id: int
    code: str
    round_id: int | None
    user_id: int | None
    by_staff: bool
    name: str
    author: str
    locality_id: int
    locality_path: str
    field: str
    deeds: str
    results: str | None
    status: str
    level: str | None
    erased: bool
    created_at: str
    recognised_at: str | None


@dataclass(frozen=True)
class NewModel:
    user_id: int
    by_staff: bool
    name: str
    author: str
    locality_id: int
    field: str
    deeds: str
    results: str | None
    photos: tuple[tuple[str, int], ...] = ()  # (sha256, size)
    key: str | None = None  # the draft's submission key: the same key again is the same nomination


@dataclass(frozen=True)
class Event:
    at: str
    actor_id: int | None
    kind: str
    body: str | None
    internal: bool


@dataclass(frozen=True)
class Tally:
    """One row of a round's report: a commune and a field."""

    commune_id: int | None
    field: str
    nominated: int
    verified: int
    recognised: int
    votes: int


class ModelMoved(Exception):
    """The model no longer has the status the actor saw: someone else acted on it first."""

    def __init__(self, model: Model) -> None:
        super().__init__(f"{model.code} is {model.status} now")
        self.model = model


_COLUMNS = ("id, code, round_id, user_id, by_staff, name, author, locality_id, locality_path, field, deeds, results,"
            " status, level, erased, created_at, recognised_at")
_ROUND = "id, name, year, starts_on, ends_on, criteria, vote_starts_on, vote_ends_on"


def _model(r) -> Model:
    return Model(r["id"], r["code"], r["round_id"], r["user_id"], bool(r["by_staff"]), r["name"], r["author"],
                 r["locality_id"], r["locality_path"], r["field"], r["deeds"], r["results"], r["status"], r["level"],
                 bool(r["erased"]), r["created_at"], r["recognised_at"])


def _round(r) -> Round:
    return Round(*(r[name] for name in _ROUND.split(", ")))


def _commune_of(locality_id: str) -> str:
    """SQL: the commune of the place `locality_id` names (a village's parent; a commune, or the province, itself)."""
    return (f"(SELECT CASE WHEN l.level <= 1 THEN l.id ELSE l.parent_id END FROM localities l"
            f" WHERE l.id = {locality_id})")


def _within(paths: tuple[str, ...] | None) -> tuple[str, list]:
    """A condition on `locality_path` for these subtrees; every place for None (admins)."""
    if paths is None:
        return "true", []
    return (" OR ".join("(locality_path >= ? AND locality_path < ?)" for _ in paths) or "false",
            [v for p in paths for v in (p, subtree_end(p))])


class DvkRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    # ---- rounds ------------------------------------------------------------------------------------------

    async def add_round(self, name: str, year: int, starts_on: date, ends_on: date, criteria: str,
                        vote: tuple[date, date] | None, created_by: int | None, now: datetime) -> Round:
        round_id = await self.db.execute(
            "INSERT INTO dvk_rounds (name, year, starts_on, ends_on, criteria, vote_starts_on, vote_ends_on,"
            " created_by, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (name, year, starts_on.isoformat(), ends_on.isoformat(), criteria,
             vote[0].isoformat() if vote else None, vote[1].isoformat() if vote else None, created_by, iso(now)))
        return await self.round(round_id)

    async def round(self, round_id: int) -> Round | None:
        r = await self.db.fetchone(f"SELECT {_ROUND} FROM dvk_rounds WHERE id = ?", (round_id,))
        return _round(r) if r else None

    async def rounds(self) -> list[Round]:
        rows = await self.db.fetchall(f"SELECT {_ROUND} FROM dvk_rounds ORDER BY year DESC, id DESC")
        return [_round(r) for r in rows]

    async def round_on(self, today: date) -> Round | None:
        """The round a nomination made today joins: the latest whose period holds today."""
        r = await self.db.fetchone(f"SELECT {_ROUND} FROM dvk_rounds WHERE starts_on <= ? AND ends_on >= ?"
                                   " ORDER BY id DESC LIMIT 1", (today.isoformat(), today.isoformat()))
        return _round(r) if r else None

    # ---- models ------------------------------------------------------------------------------------------

    async def create(self, new: NewModel, round_id: int | None, now: datetime, *,
                     ends: tuple[str, str] | None = None) -> Model:
        """Store the nomination, its photos and its first history row and end the conversation `ends`, in one
        transaction; a key this person already submitted returns that nomination instead."""
        async with self.db.tx() as conn:
            model_id = None
            if new.key is not None:
                async with conn.execute("SELECT id FROM dvk_models WHERE submit_key = ? AND user_id = ?",
                                        (new.key, new.user_id)) as cur:
                    row = await cur.fetchone()
                model_id = row[0] if row else None
            if model_id is None:
                model_id = await self._insert(conn, new, round_id, now)
            if ends is not None:
                await conn.execute("DELETE FROM conversations WHERE channel = ? AND chat_id = ?", ends)
        return await self.get(model_id)

    async def _insert(self, conn: aiosqlite.Connection, new: NewModel, round_id: int | None, now: datetime) -> int:
        prefix = f"MH-{now.strftime('%y')}"
        await conn.execute("INSERT INTO dvk_counters (prefix, last) VALUES (?, 1)"
                           " ON CONFLICT(prefix) DO UPDATE SET last = dvk_counters.last + 1", (prefix,))
        async with conn.execute("SELECT last, (SELECT path FROM localities WHERE id = ?) FROM dvk_counters"
                                " WHERE prefix = ?", (new.locality_id, prefix)) as cur:
            number, path = await cur.fetchone()
        cur = await conn.execute(
            "INSERT INTO dvk_models (code, round_id, user_id, by_staff, name, author, locality_id, locality_path,"
            " field, deeds, results, submit_key, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (f"{prefix}-{number:06d}", round_id, new.user_id, int(new.by_staff), new.name, new.author,
             new.locality_id, path, new.field, new.deeds, new.results, new.key, iso(now), iso(now)))
        model_id = cur.lastrowid
        await conn.executemany("INSERT INTO dvk_photos (model_id, sha256, size) VALUES (?, ?, ?)",
                               [(model_id, sha, size) for sha, size in new.photos])
        await conn.execute("INSERT INTO dvk_events (model_id, at, actor_id, kind) VALUES (?, ?, ?, 'nominated')",
                           (model_id, iso(now), new.user_id))
        return model_id

    async def get(self, model_id: int) -> Model | None:
        r = await self.db.fetchone(f"SELECT {_COLUMNS} FROM dvk_models WHERE id = ?", (model_id,))
        return _model(r) if r else None

    async def by_key(self, user_id: int, key: str) -> Model | None:
        r = await self.db.fetchone(f"SELECT {_COLUMNS} FROM dvk_models WHERE submit_key = ? AND user_id = ?",
                                   (key, user_id))
        return _model(r) if r else None

    async def of_user(self, user_id: int) -> list[Model]:
        rows = await self.db.fetchall(f"SELECT {_COLUMNS} FROM dvk_models WHERE user_id = ? ORDER BY id DESC",
                                      (user_id,))
        return [_model(r) for r in rows]

    async def listing(self, paths: tuple[str, ...] | None, statuses: tuple[str, ...], *, field: str | None = None,
                      offset: int = 0, limit: int = 8) -> tuple[list[Model], int]:
        """Models in these subtrees (None: everywhere) with one of `statuses`, newest first, and how many."""
        where, params = _within(paths)
        where = f"({where}) AND status IN ({','.join('?' * len(statuses))})"
        params += list(statuses)
        if field is not None:
            where += " AND field = ?"
            params.append(field)
        rows = await self.db.fetchall(f"SELECT {_COLUMNS} FROM dvk_models WHERE {where} ORDER BY id DESC"
                                      " LIMIT ? OFFSET ?", (*params, limit, offset))
        total = await self.db.fetchone(f"SELECT count(*) FROM dvk_models WHERE {where}", params)
        return [_model(r) for r in rows], int(total[0])

    async def by_status(self, paths: tuple[str, ...] | None) -> dict[str, int]:
        """How many models in these subtrees (None: everywhere) have each status, in one query."""
        where, params = _within(paths)
        rows = await self.db.fetchall(f"SELECT status, count(*) FROM dvk_models WHERE {where} GROUP BY status", params)
        return {r[0]: int(r[1]) for r in rows}

    async def nominated_between(self, paths: tuple[str, ...] | None, start: datetime, end: datetime) -> list[Model]:
        where, params = _within(paths)
        rows = await self.db.fetchall(f"SELECT {_COLUMNS} FROM dvk_models WHERE ({where}) AND created_at >= ?"
                                      " AND created_at < ? ORDER BY id", (*params, iso(start), iso(end)))
        return [_model(r) for r in rows]

    async def photos(self, model_id: int) -> list[str]:
        rows = await self.db.fetchall("SELECT sha256 FROM dvk_photos WHERE model_id = ? ORDER BY id", (model_id,))
        return [r[0] for r in rows]

    async def events(self, model_id: int, *, internal: bool) -> list[Event]:
        rows = await self.db.fetchall(
            "SELECT at, actor_id, kind, body, internal FROM dvk_events WHERE model_id = ?"
            f"{'' if internal else ' AND internal = 0'} ORDER BY id", (model_id,))
        return [Event(r["at"], r["actor_id"], r["kind"], r["body"], bool(r["internal"])) for r in rows]

    async def record(self, model_id: int, actor_id: int | None, kind: str, now: datetime, *, body: str | None = None,
                     internal: bool = False, expect: tuple[str, ...] | None = None, photos: tuple[tuple[str, int], ...]
                     = (), **changes: object) -> Model:
        """One step in a model's life: the history row and the new fields together. A change of status names
        the statuses it expects, checked in the UPDATE itself: of two people acting at once one wins and the
        other gets `ModelMoved`."""
        allowed = {"status", "level", "round_id", "recognised_at"}
        if set(changes) - allowed:
            raise ValueError(f"not changeable: {sorted(set(changes) - allowed)}")
        if "status" in changes and not expect:
            raise ValueError("a change of status must name the status it expects")
        async with self.db.tx() as conn:
            if changes:
                values = [iso(v) if isinstance(v, datetime) else v for v in changes.values()]
                assignments = ", ".join(f"{name} = ?" for name in changes)
                cur = await conn.execute(
                    f"UPDATE dvk_models SET {assignments}, updated_at = ? WHERE id = ?"
                    f" AND status IN ({','.join('?' * len(expect or ()))})" if expect else
                    f"UPDATE dvk_models SET {assignments}, updated_at = ? WHERE id = ?",
                    (*values, iso(now), model_id, *(expect or ())))
                if cur.rowcount == 0:
                    async with conn.execute(f"SELECT {_COLUMNS} FROM dvk_models WHERE id = ?", (model_id,)) as found:
                        raise ModelMoved(_model(await found.fetchone()))
            await conn.execute("INSERT INTO dvk_events (model_id, at, actor_id, kind, body, internal)"
                               " VALUES (?, ?, ?, ?, ?, ?)", (model_id, iso(now), actor_id, kind, body, int(internal)))
            await conn.executemany("INSERT INTO dvk_photos (model_id, sha256, size) VALUES (?, ?, ?)",
                                   [(model_id, sha, size) for sha, size in photos])
        return await self.get(model_id)

    # ---- votes -------------------------------------------------------------------------------------------

    async def vote(self, model_id: int, user_id: int, now: datetime) -> bool:
        """One vote per person per model (the table's unique key), kept with the commune the voter lives in now;
        False when this person had voted already."""
        async with self.db.tx() as conn:
            cur = await conn.execute("INSERT INTO dvk_votes (model_id, user_id, commune_id, at)"
                                     f" SELECT ?, id, {_commune_of('users.locality_id')}, ? FROM users WHERE id = ?"
                                     " ON CONFLICT (model_id, user_id) DO NOTHING", (model_id, iso(now), user_id))
            return cur.rowcount == 1

    async def votes(self, model_id: int) -> int:
        r = await self.db.fetchone("SELECT count(*) FROM dvk_votes WHERE model_id = ?", (model_id,))
        return int(r[0])

    async def has_voted(self, model_id: int, user_id: int) -> bool:
        return await self.db.fetchone("SELECT 1 FROM dvk_votes WHERE model_id = ? AND user_id = ?",
                                      (model_id, user_id)) is not None

    async def voted_by(self, user_id: int) -> list[str]:
        """The codes of the models this person voted for."""
        rows = await self.db.fetchall("SELECT m.code FROM dvk_votes v JOIN dvk_models m ON m.id = v.model_id"
                                      " WHERE v.user_id = ? ORDER BY v.id", (user_id,))
        return [r[0] for r in rows]

    async def votes_by_commune(self, round_id: int) -> list[tuple[str, int | None, int]]:
        """(model code, voters' commune id, votes) of a round: counts only, never who."""
        rows = await self.db.fetchall(
            "SELECT m.code, v.commune_id, count(*) FROM dvk_votes v JOIN dvk_models m ON m.id = v.model_id"
            " WHERE m.round_id = ? GROUP BY m.code, v.commune_id ORDER BY m.code, count(*) DESC", (round_id,))
        return [(r[0], r[1], int(r[2])) for r in rows]

    # ---- report ------------------------------------------------------------------------------------------

    async def tally(self, round_id: int) -> list[Tally]:
        """A round by the model's commune and field: nominated (every one), verified (verified or beyond),
        recognised, votes received."""
        rows = await self.db.fetchall(
            f"SELECT {_commune_of('m.locality_id')} AS commune, m.field, count(*) AS nominated,"
            " sum(CASE WHEN m.status IN ('verified', 'recognised') THEN 1 ELSE 0 END) AS verified,"
            " sum(CASE WHEN m.status = 'recognised' THEN 1 ELSE 0 END) AS recognised,"
            " sum((SELECT count(*) FROM dvk_votes v WHERE v.model_id = m.id)) AS votes"
            " FROM dvk_models m WHERE m.round_id = ? GROUP BY commune, m.field ORDER BY commune, m.field",
            (round_id,))
        return [Tally(r["commune"], r["field"], int(r["nominated"]), int(r["verified"]), int(r["recognised"]),
                      int(r["votes"])) for r in rows]

    async def recognised_in(self, round_id: int) -> list[Model]:
        rows = await self.db.fetchall(f"SELECT {_COLUMNS} FROM dvk_models WHERE round_id = ? AND status = 'recognised'"
                                      " ORDER BY level DESC, id", (round_id,))
        return [_model(r) for r in rows]


def repo(store) -> DvkRepo:
    """The repository on a `Store`'s database (kept out of `Store` itself until features are declared once)."""
    return DvkRepo(store.db)


async def erase_person(conn: aiosqlite.Connection, user_id: int, content: bool, digests: set[str]) -> list[int]:
    """What /xoadulieu does here, inside the erasure's transaction (storage/users.py `erase`); the photos taken off
    are added to `digests`, whose files go from disk when nothing else refers to them. Returns the ids of the
    nominations it withdrew (their cadres are to be told).

    Following issue 14's rule: the identity always goes — the nominator's link, their name on every history row,
    their votes' link (the vote still counts, with its commune). With `content` (the default choice), a
    nomination's content goes too: name, person or collective, deeds, results and photos blanked (shown as the
    erasure marker), while field, commune, dates and status stay for the round's statistics; one still waiting for
    verification is withdrawn.
    A model already recognised keeps its content: it was published — shown to residents under "Xem mô hình hay",
    announced, certified — as the movement's example, no longer a private message of the person who proposed it;
    only the link to them is removed.
    """
    withdrawn: list[int] = []
    if content:
        async with conn.execute("SELECT id FROM dvk_models WHERE user_id = ? AND status IN ('nominated',"
                                " 'info_requested') ORDER BY id", (user_id,)) as cur:
            withdrawn = [r[0] for r in await cur.fetchall()]
        await conn.execute(
            "UPDATE dvk_models SET status = CASE WHEN status IN ('nominated', 'info_requested') THEN 'withdrawn'"
            " ELSE status END, name = '', author = '', deeds = '', results = NULL, erased = 1"
            " WHERE user_id = ? AND status <> 'recognised'", (user_id,))
        mine = "SELECT id FROM dvk_models WHERE user_id = ? AND erased = 1"
        async with conn.execute(f"SELECT sha256 FROM dvk_photos WHERE model_id IN ({mine})", (user_id,)) as cur:
            digests.update(r[0] for r in await cur.fetchall())
        await conn.execute(f"DELETE FROM dvk_photos WHERE model_id IN ({mine})", (user_id,))
        await conn.execute(f"UPDATE dvk_events SET body = NULL WHERE actor_id = ? AND kind = 'info_added'"
                           f" AND model_id IN ({mine})", (user_id, user_id))
    await conn.execute("UPDATE dvk_models SET user_id = NULL, submit_key = NULL WHERE user_id = ?", (user_id,))
    await conn.execute("UPDATE dvk_events SET actor_id = NULL WHERE actor_id = ?", (user_id,))
    await conn.execute("UPDATE dvk_votes SET user_id = NULL WHERE user_id = ?", (user_id,))
    return withdrawn


async def move_person(conn: aiosqlite.Connection, from_id: int, to_id: int) -> None:
    """Two accounts of one person linked (storage/links.py `redeem`, in its transaction): the nominations and votes
    of `from_id` become `to_id`'s; a model both had voted for keeps one vote (one per person)."""
    await conn.execute("UPDATE dvk_models SET user_id = ? WHERE user_id = ?", (to_id, from_id))
    await conn.execute("UPDATE dvk_votes SET user_id = ? WHERE user_id = ? AND model_id NOT IN"
                       " (SELECT model_id FROM dvk_votes WHERE user_id = ?)", (to_id, from_id, to_id))
    await conn.execute("DELETE FROM dvk_votes WHERE user_id = ?", (from_id,))
