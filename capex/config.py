"""Settings from ``CAPEX_*`` environment variables."""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

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
    # Write limits: every POST, PUT, PATCH and DELETE (API and web forms) counts against its
    # account (when signed in) and its client address; past either in a fixed window of
    # this many seconds it is answered 429 until the window ends. 0 turns a limit off.
    write_limit_window_seconds: int = Field(default=60, ge=1, le=24 * 3600)
    write_limit_per_account: int = Field(default=60, ge=0)
    write_limit_per_address: int = Field(default=600, ge=0)
    log_level: str = "INFO"
    # While the database is unreachable every request that needs it is answered 503 within
    # about these: a new connection gives up after the first (PostgreSQL; SQLite keeps its
    # own lock timeout), a request waiting for a pooled one after the second. The 503 asks
    # clients to come back after the third.
    db_connect_timeout_seconds: int = Field(default=3, ge=1, le=300)
    db_pool_timeout_seconds: float = Field(default=5, gt=0, le=300)
    db_retry_after_seconds: int = Field(default=5, ge=1, le=3600)
    # Exchanges: a request unanswered this long expires; a learner may have this many
    # requests waiting at once.
    request_ttl_days: float = Field(default=14, gt=0)
    max_open_requests: int = Field(default=5, ge=1)
    # Notifications also go out by email when set: smtp://user:password@host:port
    # (smtps:// for TLS from the start, ?starttls=true to upgrade).
    smtp_url: str | None = None
    mail_from: str = "capex <noreply@capex.invalid>"
    mail_interval_seconds: float = Field(default=5, gt=0)
    # On SIGTERM `capex serve` drains: no new connections, an answer (with Connection: close)
    # for every request that arrives on an open one, then exit. Past this many seconds the
    # requests still running are cut.
    shutdown_grace_seconds: int = Field(default=20, ge=1, le=3600)
    # A kept-alive connection idle this long is closed (during the drain too). Behind a
    # reverse proxy that keeps connections to capex open, make it longer than the proxy's
    # idle timeout, so that capex never hangs up while the proxy sends.
    keep_alive_seconds: int = Field(default=5, ge=1, le=3600)
    # Housekeeping (expired tokens, old sign-in failures) in every server process.
    maintenance_interval_seconds: float = Field(default=3600, gt=0)
    # Password hashes (Argon2id) one server process computes at once; more sign-ins wait
    # their turn. One Argon2id hash already keeps both cores of a small host busy (4 lanes
    # in threads), so one per worker process, with as many workers as cores, keeps sign-ins
    # from crowding out every other request (bench/README.md, Capacity).
    password_hash_slots: int = Field(default=1, ge=1, le=64)
    # A sign-in waits at most this long for its turn, then is answered 503 with Retry-After:
    # when more people sign in than the cores can hash for, the queue stays this short.
    password_hash_wait_seconds: float = Field(default=10, gt=0, le=300)
    # Build the matching index when a server process starts, not on its first query; until
    # it is ready, matches are answered 503 with Retry-After (no request waits for a build).
    warm_matching_index: bool = True
    # A folder the server's workers share their matching index in: built once per host and
    # mapped by each (`capex serve` makes a fresh one per run when this is unset). Unset
    # outside `capex serve`: each process builds its own.
    matching_index_dir: Path | None = None
    # On PostgreSQL, LISTEN for changes to volunteers and skills instead of polling.
    matching_listen: bool = True
    # `capex serve --workers N`: a worker that does not answer its supervisor's health ping
    # within this long is replaced. uvicorn's 5 s is less than a loaded host takes to import
    # the app and build its first statistics snapshot, which restarted workers in a loop.
    worker_healthcheck_seconds: int = Field(default=60, ge=1, le=3600)
    # Expiry, mail and housekeeping in the background of every server process.
    periodic_tasks: bool = True
    # Request bodies past this many bytes are refused with 413 before they are parsed.
    max_body_bytes: int = Field(default=1024 * 1024, ge=1024, le=64 * 1024 * 1024)
    # Statistics: open data (?format=tab) writes counts below this as null; answers come
    # from a snapshot of the database at most this many seconds old (0: taken on each call).
    stats_min_cell: int = Field(default=5, ge=1, le=1000)
    stats_max_age_seconds: float = Field(default=60, ge=0, le=3600)
    # Strict-Transport-Security max-age, for a deployment served only over HTTPS; 0: none.
    hsts_seconds: int = Field(default=0, ge=0, le=2 * 365 * 24 * 3600)
    # Origins (scheme://host[:port]) whose pages may call the API from a browser.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    # Addresses or networks of the reverse proxies whose X-Forwarded-For/-Proto to believe;
    # from anyone else (loopback included) the connection's own address counts.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("cors_origins", "trusted_proxies", mode="before")
    @classmethod
    def _split_commas(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [item.strip() for item in value.split(",") if item.strip()]
        return value

    @field_validator("cors_origins")
    @classmethod
    def _check_origins(cls, origins: list[str]) -> list[str]:
        for origin in origins:
            parts = urlsplit(origin)
            if origin != "*" and (
                parts.scheme not in ("http", "https") or not parts.netloc or parts.path
            ):
                raise ValueError(f"{origin!r} is not an origin like https://app.example.org")
        return [origin.rstrip("/") for origin in origins]

    @field_validator("trusted_proxies")
    @classmethod
    def _check_proxies(cls, proxies: list[str]) -> list[str]:
        for proxy in proxies:
            if proxy == "*":
                continue
            try:
                ipaddress.ip_network(proxy, strict=False)
            except ValueError:
                raise ValueError(
                    f"{proxy!r} is not an IP address or network (such as 10.0.0.5 or 10.0.0.0/24)"
                ) from None
        return proxies

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


class SettingsError(Exception):
    """A CAPEX_* variable has a value the service cannot run with; one line per problem."""


_HIDDEN = frozenset({"secret_key", "smtp_url", "database_url"})


def describe(error: ValidationError) -> str:
    """One line per bad setting: its variable, its value (unless secret), what it allows."""
    lines = []
    for item in error.errors(include_url=False):
        message = str(item["msg"]).removeprefix("Value error, ")
        if not item["loc"]:
            lines.append(message)
            continue
        name = str(item["loc"][0])
        value = "(hidden)" if name in _HIDDEN else item.get("input")
        lines.append(f"CAPEX_{name.upper()}={value}: {message}")
    return "\n".join(lines)


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings, read once; SettingsError names each bad variable."""
    try:
        return Settings()
    except ValidationError as error:
        raise SettingsError(describe(error)) from None
