"""Configuration from the environment or `.env`, typed and checked once at start."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from handlers.base import Settings as HandlerSettings


class ConfigError(Exception):
    """A setting is missing or wrong; the message names the variable and says what is expected."""


class Config(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore",
                                      populate_by_name=True)

    db: Path = Field(Path("data/danvan.db"), alias="DANVAN_DB")
    tz: str = Field("Asia/Ho_Chi_Minh", alias="DANVAN_TZ")
    operator_name: str = Field("Ban Dân vận Tỉnh ủy Quảng Trị", alias="DANVAN_OPERATOR", min_length=2,
                               max_length=120)
    invite_days: int = Field(7, alias="DANVAN_INVITE_DAYS", ge=1, le=90)
    host: str = Field("127.0.0.1", alias="DANVAN_HOST")
    port: int = Field(8080, alias="DANVAN_PORT", ge=1, le=65535)
    log_level: str = Field("INFO", alias="DANVAN_LOG_LEVEL", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    telegram_token: SecretStr | None = Field(None, alias="TELEGRAM_BOT_TOKEN")
    telegram_api_url: str = Field("https://api.telegram.org/bot", alias="TELEGRAM_API_URL")
    telegram_webhook_url: str | None = Field(None, alias="TELEGRAM_WEBHOOK_URL")
    telegram_webhook_secret: SecretStr | None = Field(None, alias="TELEGRAM_WEBHOOK_SECRET")

    @field_validator("tz")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as err:
            raise ValueError(f"unknown time zone {value!r} (e.g. Asia/Ho_Chi_Minh)") from err
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

    @field_validator("telegram_api_url", "telegram_webhook_url")
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
        return self

    @property
    def telegram_file_url(self) -> str:
        """python-telegram-bot's base_file_url matching `telegram_api_url` (…/bot → …/file/bot)."""
        base = self.telegram_api_url
        return base[: -len("/bot")] + "/file/bot" if base.endswith("/bot") else base.rstrip("/") + "/file/bot"

    def handler_settings(self) -> HandlerSettings:
        return HandlerSettings(operator_name=self.operator_name, tz=ZoneInfo(self.tz),
                               invite_ttl=timedelta(days=self.invite_days))


def load(**overrides) -> Config:
    try:
        return Config(**overrides)
    except ValidationError as err:
        problems = []
        for e in err.errors():
            field = e["loc"][0] if e["loc"] else None
            alias = Config.model_fields[field].alias if field in Config.model_fields else field
            problems.append(f"{alias}: {e['msg']}" if alias else e["msg"].removeprefix("Value error, "))
        raise ConfigError("; ".join(problems)) from None
