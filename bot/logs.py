"""Logging that never shows a secret: HTTP client request lines (which carry the bot token in the
URL) are quiet, and any secret that reaches a record anyway, tracebacks included, is replaced. A message
repeated many times in a row (a flood of refused connections) is written a few times, then counted."""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Callable

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class RedactingFormatter(logging.Formatter):
    def __init__(self, secrets: list[str]) -> None:
        super().__init__(FORMAT)
        self.secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self.secrets:
            text = text.replace(secret, "[redacted]")
        return text


class RepeatFilter(logging.Filter):
    """Lets the first `burst` identical records of each `interval` through and holds back the rest; the
    first identical record after the interval carries how many were held back. Records are identical when
    logger, level, text and exception type are: a different message is never held back."""

    def __init__(self, burst: int = 5, interval: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 keys: int = 1000) -> None:
        super().__init__()
        self.burst, self.interval, self.clock, self.keys = burst, interval, clock, keys
        self._seen: OrderedDict[tuple, list] = OrderedDict()  # key -> [window start, count in window]

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[0].__name__ if record.exc_info and record.exc_info[0] else None
        try:
            key = (record.name, record.levelno, record.getMessage(), error)
        except Exception:  # arguments that do not fit the message: the handler reports that, as it does
            return True
        now = self.clock()
        seen = self._seen.get(key)
        if seen is None or now - seen[0] >= self.interval:
            held = seen[1] - self.burst if seen is not None and seen[1] > self.burst else 0
            self._seen[key] = [now, 1]
            self._seen.move_to_end(key)
            while len(self._seen) > self.keys:
                self._seen.popitem(last=False)
            if held:
                record.msg, record.args = f"{record.getMessage()} (repeated {held} more times before, not shown)", None
            return True
        seen[1] += 1
        if seen[1] == self.burst:
            record.msg, record.args = f"{record.getMessage()} (further repeats held back for up to " \
                                      f"{self.interval:.0f} s)", None
        return seen[1] <= self.burst


def setup(level: str, secrets: list[str]) -> None:
    logging.basicConfig(level=level, format=FORMAT, force=True)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(RedactingFormatter(secrets))
        handler.addFilter(RepeatFilter())
    for noisy in ("httpx", "httpcore", "apscheduler", "uvicorn.access"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
