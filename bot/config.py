"""Configuration from the environment or `.env`, typed and checked once at start."""

from __future__ import annotations

import os
import socket
import stat
from datetime import time, timedelta
from ipaddress import ip_address
from pathlib import Path
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from handlers.base import Settings as HandlerSettings
from handlers.similar import THRESHOLD
from storage.dialect import is_url


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the variable and says what is expected."""


class UnsafeEnvFile(ConfigError):
    """`.env` can be changed by someone other than the service's user (or root): whoever writes it can point
    TELEGRAM_API_URL elsewhere and receive the token, so it is not read at all."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason = path, reason  # reason: "writable" by group or others, or "owner"


ENV_FILE = Path(".env")  # read from the working directory, as pydantic-settings resolves it


class Config(BaseSettings):
    model_config = SettingsConfigDict(env_file=ENV_FILE, env_file_encoding="utf-8", extra="ignore",
                                      populate_by_name=True)

    db: Path | str = Field(Path("data/danvan.db"), alias="DANVAN_DB")  # a postgresql:// URL: PostgreSQL
    demo_db: Path = Field(Path("data/demo.db"), alias="DANVAN_DEMO_DB")
    demo: bool = Field(False, alias="DANVAN_DEMO")  # also forced by `danvan run --demo` or the lack of a token
    tz: str = Field("Asia/Ho_Chi_Minh", alias="DANVAN_TZ")
    operator_name: str = Field("Ban Dân vận Tỉnh ủy Quảng Trị", alias="DANVAN_OPERATOR", min_length=2,
                               max_length=120)
    invite_days: int = Field(7, alias="DANVAN_INVITE_DAYS", ge=1, le=90)
    host: str = Field("127.0.0.1", alias="DANVAN_HOST")
    port: int = Field(8080, alias="DANVAN_PORT", ge=1, le=65535)
    public_url: str | None = Field(None, alias="DANVAN_PUBLIC_URL")  # the web chat's address as people reach it
    # Signs the links to files the bot sends on Zalo (bot/file_links.py); unset, a random key kept beside the database.
    file_secret: SecretStr | None = Field(None, alias="DANVAN_FILE_SECRET", min_length=32)
    # Each open web chat page holds one connection (its event stream) and briefly a second one for a post.
    max_connections: int = Field(500, alias="DANVAN_MAX_CONNECTIONS", ge=10, le=100_000)
    # Proxies whose X-Forwarded-For/-Proto are believed (the web chat limits new sessions per client address).
    trusted_proxies: str = Field("127.0.0.1,::1", alias="DANVAN_TRUSTED_PROXIES")
    web_session_days: int = Field(180, alias="DANVAN_WEB_SESSION_DAYS", ge=1, le=730)
    web_burst: int = Field(10, alias="DANVAN_WEB_BURST", ge=1, le=1000)
    web_rate: float = Field(1.0, alias="DANVAN_WEB_RATE", gt=0, le=100)
    case_limit: int = Field(5, alias="DANVAN_CASE_LIMIT", ge=1, le=10_000)
    similarity: int = Field(THRESHOLD, alias="DANVAN_SIMILARITY", ge=50, le=100)
    tick_seconds: float = Field(30.0, alias="DANVAN_TICK_SECONDS", gt=0, le=3600)
    # Names this process in logs, /healthz and PostgreSQL's pg_stat_activity when several workers share a database.
    worker: str | None = Field(None, alias="DANVAN_WORKER", min_length=1, max_length=40)
    escalate_days: int = Field(3, alias="DANVAN_ESCALATE_DAYS", ge=1, le=60)  # working days overdue
    # Months after a case is closed until it no longer names its sender and its files and locations go.
    retention_months: int = Field(24, alias="DANVAN_RETENTION_MONTHS", ge=1, le=240)
    log_level: str = Field("INFO", alias="DANVAN_LOG_LEVEL", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    telegram_token: SecretStr | None = Field(None, alias="TELEGRAM_BOT_TOKEN")
    telegram_api_url: str = Field("https://api.telegram.org/bot", alias="TELEGRAM_API_URL")
    telegram_webhook_url: str | None = Field(None, alias="TELEGRAM_WEBHOOK_URL")
    telegram_webhook_secret: SecretStr | None = Field(None, alias="TELEGRAM_WEBHOOK_SECRET")
    telegram_timeout: float = Field(5.0, alias="TELEGRAM_TIMEOUT", gt=0, le=120)
    # Telegram allows about 30 messages a second (paid broadcasts up to 1000); broadcasts take at most
    # their own rate of it, so that replies keep headroom.
    telegram_rate: int = Field(30, alias="TELEGRAM_RATE", ge=1, le=1000)
    broadcast_rate: int = Field(25, alias="DANVAN_BROADCAST_RATE", ge=1, le=1000)
    zalo_token: SecretStr | None = Field(None, alias="ZALO_BOT_TOKEN")
    # The Zalo Bot Platform's documented base (it moved from bot-api.zapps.me, which older clients use).
    zalo_api_url: str = Field("https://bot-api.zaloplatforms.com/bot", alias="ZALO_API_URL")
    zalo_webhook_url: str | None = Field(None, alias="ZALO_WEBHOOK_URL")
    zalo_webhook_secret: SecretStr | None = Field(None, alias="ZALO_WEBHOOK_SECRET")
    # The platform publishes no rate: a conservative default, broadcasts paced within it as on Telegram.
    zalo_rate: int = Field(10, alias="ZALO_RATE", ge=1, le=1000)
    broadcast_concurrency: int = Field(100, alias="DANVAN_BROADCAST_CONCURRENCY", ge=1, le=1000)
    broadcast_resend_uncertain: bool = Field(False, alias="DANVAN_BROADCAST_RESEND_UNCERTAIN")
    quiet_hours: str = Field("21:00-07:00", alias="DANVAN_QUIET_HOURS")
    backup_dir: Path | None = Field(None, alias="DANVAN_BACKUP_DIR")  # unset: no daily backup
    backup_keep: int = Field(7, alias="DANVAN_BACKUP_KEEP", ge=1, le=1000)

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown time zone {value!r} (e.g. Asia/Ho_Chi_Minh)") from err
        return value

    @field_validator("quiet_hours")
    @classmethod
    def _quiet_shape(cls, value: str) -> str:
        if value.strip().lower() in ("", "off"):
            return "off"
        try:
            start, end = (time.fromisoformat(part.strip()) for part in value.split("-"))
        except ValueError:
            raise ValueError("expected HH:MM-HH:MM (local time, e.g. 21:00-07:00) or off") from None
        if start == end:
            raise ValueError("start and end are the same; use off for no quiet hours")
        return f"{start:%H:%M}-{end:%H:%M}"

    @field_validator("db", mode="before")
    @classmethod
    def _path_or_url(cls, value: object) -> object:
        """A URL stays as written (as a path its "//" would fold)."""
        return value if is_url(str(value)) else Path(str(value))

    @field_validator("backup_dir", mode="before")
    @classmethod
    def _backup_dir(cls, value: object) -> object:
        if value in (None, ""):  # an empty variable means none, not the working directory
            return None
        if Path(str(value)).exists() and not Path(str(value)).is_dir():
            raise ValueError("must be a directory")
        return value

    @field_validator("telegram_token")
    @classmethod
    def _token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        number, _, rest = value.get_secret_value().partition(":")
        if not number.isdigit() or len(rest) < 20:
            raise ValueError("does not look like a bot token from @BotFather (digits:letters)")
        return value

    @field_validator("zalo_token")
    @classmethod
    def _zalo_token_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        token = value.get_secret_value()
        if len(token) < 20 or any(c.isspace() or c == "/" for c in token):
            raise ValueError("does not look like a Zalo bot token (from Zalo Bot Creator)")
        return value

    @field_validator("zalo_webhook_secret")
    @classmethod
    def _zalo_secret_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value():
            return None
        if not 8 <= len(value.get_secret_value()) <= 256:
            raise ValueError("must be 8 to 256 characters long")
        return value

    @field_validator("telegram_api_url", "telegram_webhook_url", "public_url", "zalo_api_url", "zalo_webhook_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Config:
        if self.telegram_webhook_url and self.telegram_webhook_secret is None:
            raise ValueError("TELEGRAM_WEBHOOK_SECRET must be set with TELEGRAM_WEBHOOK_URL (1-256 of A-Za-z0-9_-)")
        if self.zalo_webhook_url and self.zalo_webhook_secret is None:
            raise ValueError("ZALO_WEBHOOK_SECRET must be set with ZALO_WEBHOOK_URL (8-256 characters)")
        if self.broadcast_rate > self.telegram_rate:
            raise ValueError("DANVAN_BROADCAST_RATE must not be above TELEGRAM_RATE (broadcasts share that rate)")
        if self.zalo_token is not None and not self.demo and not _fetchable(self.public_url, self.host):
            raise ValueError("DANVAN_PUBLIC_URL must be set to an https:// address when ZALO_BOT_TOKEN is set: Zalo "
                             "fetches photos from it (http:// only on 127.0.0.1, localhost or ::1, for testing)")
        if is_url(self.db) and self.backup_dir:
            raise ValueError("DANVAN_BACKUP_DIR backs up an SQLite database; back PostgreSQL up with pg_dump")
        if not is_url(self.db) and self.demo_db.resolve() == self.db.resolve():
            raise ValueError("DANVAN_DEMO_DB must be a different file from DANVAN_DB (demo data is not real)")
        return self

    @property
    def store_path(self) -> Path | str:
        """Demo mode has its own database and never opens the production one."""
        return self.demo_db if self.demo else self.db

    @property
    def worker_name(self) -> str:
        return self.worker or f"{socket.gethostname()}:{os.getpid()}"

    @property
    def web_url(self) -> str:
        """Where people open the web chat (deep links, the address printed at start)."""
        if self.public_url:
            return self.public_url.rstrip("/")
        host = "127.0.0.1" if self.host in ("0.0.0.0", "::", "") else self.host  # noqa: S104 (a comparison)
        return f"http://[{host}]:{self.port}" if ":" in host else f"http://{host}:{self.port}"

    @property
    def telegram_file_url(self) -> str:
        """python-telegram-bot's base_file_url matching `telegram_api_url` (…/bot → …/file/bot)."""
        base = self.telegram_api_url
        return base[: -len("/bot")] + "/file/bot" if base.endswith("/bot") else base.rstrip("/") + "/file/bot"

    @property
    def quiet(self) -> tuple[time, time] | None:
        if self.quiet_hours == "off":
            return None
        start, end = self.quiet_hours.split("-")
        return time.fromisoformat(start), time.fromisoformat(end)

    def handler_settings(self) -> HandlerSettings:
        return HandlerSettings(operator_name=self.operator_name, tz=ZoneInfo(self.tz),
                               invite_ttl=timedelta(days=self.invite_days), quiet_hours=self.quiet,
                               case_limit=self.case_limit, retention_months=self.retention_months,
                               similarity=self.similarity,
                               web_chat=self.web_url if self.web_url.startswith("https://") else None)


def _fetchable(public_url: str | None, host: str) -> bool:
    """Whether Zalo may be given links under this address: https, or a loopback address for local testing (unset,
    the address is made from DANVAN_HOST)."""
    if public_url is None:
        return _loopback(host)
    parts = urlsplit(public_url)
    return parts.scheme == "https" or _loopback(parts.hostname or "")


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ip_address(host).is_loopback
    except ValueError:
        return False


def check_env_file(path: Path = ENV_FILE) -> None:
    """Raises UnsafeEnvFile when users other than this one (and root) can change `path`."""
    try:
        info = path.stat()
    except FileNotFoundError:
        return
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise UnsafeEnvFile(path.resolve(), "writable")
    if info.st_uid not in (0, os.geteuid()):
        raise UnsafeEnvFile(path.resolve(), "owner")


def load(**overrides) -> Config:
    check_env_file()
    try:
        return Config(**overrides)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            field = e["loc"][0] if e["loc"] else None
            alias = Config.model_fields[field].alias if field in Config.model_fields else field
            problems.append(f"{alias}: {e['msg']}" if alias else e["msg"].removeprefix("Value error, "))
        raise ConfigError("; ".join(problems)) from None
