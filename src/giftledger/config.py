"""Configuration, read once from the environment (GIFTLEDGER_*), validated, passed explicitly."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

DEFAULT_DATA_DIR = Path("var")
DEFAULT_SQLITE_FILE = "giftledger.sqlite3"


class ConfigurationError(Exception):
    pass


@dataclass(frozen=True)
class Settings:
    database_url: str
    secret_key: str
    previous_secret_keys: tuple[str, ...] = ()
    environment: str = "development"
    token_lifetime_seconds: int = 3600
    token_refresh_window_seconds: int = 600
    token_issuer: str = "giftledger"
    token_audience: str = "giftledger-api"
    max_body_bytes: int = 65_536
    database_pool_size: int = 10
    statement_timeout_ms: int = 10_000
    login_failure_limit: int = 10
    login_failure_window_seconds: int = 900
    document_cache_size: int = 512
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def development(self) -> bool:
        return self.environment == "development"


def default_database_url(data_dir: Path = DEFAULT_DATA_DIR) -> str:
    return f"sqlite:///{data_dir / DEFAULT_SQLITE_FILE}"


def _development_secret(data_dir: Path) -> str:
    """Development mode only: a random key kept in ./var so tokens survive restarts."""
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_text().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    key = secrets.token_urlsafe(48)
    path.write_text(key)
    path.chmod(0o600)
    return key


def load_settings(env: Mapping[str, str] | None = None, *, database_url: str | None = None) -> Settings:
    """Settings from the environment. Outside development mode a secret key must be configured."""
    env = os.environ if env is None else env
    data_dir = Path(env.get("GIFTLEDGER_DATA_DIR", str(DEFAULT_DATA_DIR)))
    environment = env.get("GIFTLEDGER_ENV", "development")
    if environment not in ("development", "production", "test"):
        raise ConfigurationError("GIFTLEDGER_ENV must be development, production or test")
    url = database_url or env.get("GIFTLEDGER_DATABASE_URL") or default_database_url(data_dir)
    if url.startswith("sqlite:///") and not url.startswith("sqlite:////") and url != "sqlite:///:memory:":
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    secret = env.get("GIFTLEDGER_SECRET_KEY", "")
    if not secret:
        if environment != "development":
            raise ConfigurationError("GIFTLEDGER_SECRET_KEY must be set outside development mode")
        secret = _development_secret(data_dir)
    if len(secret) < 32:
        raise ConfigurationError("GIFTLEDGER_SECRET_KEY must be at least 32 characters")
    previous = tuple(k for k in env.get("GIFTLEDGER_PREVIOUS_SECRET_KEYS", "").split(",") if k)
    return Settings(
        database_url=url,
        secret_key=secret,
        previous_secret_keys=previous,
        environment=environment,
        database_pool_size=int(env.get("GIFTLEDGER_DATABASE_POOL_SIZE", "10")),
        statement_timeout_ms=int(env.get("GIFTLEDGER_STATEMENT_TIMEOUT_MS", "10000")),
    )
