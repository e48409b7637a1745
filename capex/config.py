"""Settings from ``CAPEX_*`` environment variables."""

from __future__ import annotations

from functools import lru_cache
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET_KEY = "change-me"


class Settings(BaseSettings):
    """Everything the service can be told; each field reads ``CAPEX_<NAME>``."""

    model_config = SettingsConfigDict(env_prefix="CAPEX_", extra="ignore")

    environment: Literal["development", "test", "production"] = "development"
    database_url: str = "sqlite:///./capex.db"
    secret_key: str = DEFAULT_SECRET_KEY
    token_ttl_minutes: int = Field(default=7 * 24 * 60, ge=5)
    # Sign-in throttling: this many failures within the window lock the username (or the
    # client address) until the oldest failure leaves the window.
    login_window_seconds: int = Field(default=15 * 60, ge=1)
    login_max_failures_per_username: int = Field(default=5, ge=1)
    login_max_failures_per_address: int = Field(default=20, ge=1)
    log_level: str = "INFO"
    # Exchanges: a request unanswered this long expires; a learner may have this many
    # requests waiting at once.
    request_ttl_days: float = Field(default=14, gt=0)
    max_open_requests: int = Field(default=5, ge=1)
    # Notifications also go out by email when set: smtp://user:password@host:port
    # (smtps:// for TLS from the start, ?starttls=true to upgrade).
    smtp_url: str | None = None
    mail_from: str = "capex <noreply@capex.invalid>"
    mail_interval_seconds: float = Field(default=5, gt=0)
    # Housekeeping (expired tokens, old sign-in failures) in every server process.
    maintenance_interval_seconds: float = Field(default=3600, gt=0)
    # Build the matching index when a server process starts, not on its first query.
    warm_matching_index: bool = True
    # Expiry, mail and housekeeping in the background of every server process.
    periodic_tasks: bool = True

    @model_validator(mode="after")
    def _refuse_default_secret_in_production(self) -> Settings:
        if self.environment == "production" and (
            self.secret_key == DEFAULT_SECRET_KEY or len(self.secret_key) < 32
        ):
            raise ValueError(
                "CAPEX_SECRET_KEY must be set to a random value of at least 32 characters "
                "when CAPEX_ENVIRONMENT=production (python -c 'import secrets; "
                "print(secrets.token_urlsafe(48))')"
            )
        return self


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
