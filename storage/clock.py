"""UTC timestamps as stored: ISO-8601 text that sorts by time."""

from datetime import UTC, datetime


def iso(moment: datetime) -> str:
    # The clock's own moments are UTC already: astimezone is a good part of a hot path's cost (every write).
    return (moment if moment.tzinfo is UTC else moment.astimezone(UTC)).isoformat(timespec="seconds")


def parse(text: str) -> datetime:
    return datetime.fromisoformat(text)
