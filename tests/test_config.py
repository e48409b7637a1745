"""Settings from CAPEX_* variables, and database URLs."""

from __future__ import annotations

import secrets

import pytest
from pydantic import ValidationError

from capex.config import DEFAULT_SECRET_KEY, Settings
from capex.db import normalize_url


@pytest.fixture(autouse=True)
def _no_capex_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("CAPEX_ENVIRONMENT", "CAPEX_SECRET_KEY", "CAPEX_DATABASE_URL"):
        monkeypatch.delenv(name, raising=False)


def test_production_refuses_the_default_secret():
    with pytest.raises(ValidationError, match="CAPEX_SECRET_KEY"):
        Settings(environment="production")


def test_production_refuses_a_short_secret():
    with pytest.raises(ValidationError, match="CAPEX_SECRET_KEY"):
        Settings(environment="production", secret_key="s" * 31)


def test_production_refuses_the_default_secret_from_the_environment(monkeypatch):
    monkeypatch.setenv("CAPEX_ENVIRONMENT", "production")
    monkeypatch.setenv("CAPEX_SECRET_KEY", DEFAULT_SECRET_KEY)
    with pytest.raises(ValidationError, match="CAPEX_SECRET_KEY"):
        Settings()


def test_production_accepts_a_long_random_secret():
    secret = secrets.token_urlsafe(48)
    settings = Settings(environment="production", secret_key=secret)
    assert settings.secret_key == secret


def test_production_accepts_a_secret_of_exactly_32_characters():
    assert Settings(environment="production", secret_key="k" * 32).environment == "production"


def test_development_accepts_the_default_secret():
    settings = Settings(environment="development")
    assert settings.secret_key == DEFAULT_SECRET_KEY


def test_database_url_is_read_from_capex_database_url(monkeypatch):
    monkeypatch.setenv("CAPEX_DATABASE_URL", "postgresql://capex:pw@db.example.org/capex")
    assert Settings().database_url == "postgresql://capex:pw@db.example.org/capex"


def test_secret_key_is_read_from_capex_secret_key(monkeypatch):
    secret = secrets.token_urlsafe(48)
    monkeypatch.setenv("CAPEX_ENVIRONMENT", "production")
    monkeypatch.setenv("CAPEX_SECRET_KEY", secret)
    assert Settings().secret_key == secret


def test_unknown_environment_is_refused():
    with pytest.raises(ValidationError, match="environment"):
        Settings(environment="staging")


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            "postgresql://capex:s3cret@db:5432/capex",
            "postgresql+psycopg://capex:s3cret@db:5432/capex",
        ),
        ("postgres://capex@db/capex", "postgresql+psycopg://capex@db/capex"),
        ("postgresql+psycopg://capex@db/capex", "postgresql+psycopg://capex@db/capex"),
        ("sqlite:///./capex.db", "sqlite:///./capex.db"),
    ],
)
def test_normalize_url_points_postgresql_at_psycopg(url, expected):
    assert normalize_url(url) == expected
