"""Configuration, read once from the environment (GIFTLEDGER_*), validated, passed explicitly."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from giftledger.auth.tokens import key_id
from giftledger.domain.validation import is_email

DEFAULT_DATA_DIR = Path("var")
LEFTOVER_SQLITE_FILE = "giftledger.sqlite3"  # where giftledger kept its data before it was PostgreSQL-only
DATABASE_URL_FORMS = (
    "postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE (also postgres://), or leave GIFTLEDGER_DATABASE_URL unset "
    "for the embedded server under GIFTLEDGER_DATA_DIR"
)


# Where the background work runs (app.Background): in each serving process, or in `giftledger work` processes.
IN_SERVE = "serve"
SEPARATE = "separate"


class ConfigurationError(Exception):
    pass


@dataclass(frozen=True)
class Settings:
    database_url: str | None  # None: the embedded server under `data_dir` (app.with_database starts it)
    secret_key: str
    previous_secret_keys: tuple[str, ...] = ()
    environment: str = "development"
    token_lifetime_seconds: int = 3600
    token_refresh_window_seconds: int = 600
    token_issuer: str = "giftledger"
    token_audience: str = "giftledger-api"
    max_body_bytes: int = 65_536
    # what the server reads before a request reaches the app (cli/request_bounds.py)
    max_head_bytes: int = 65_536
    max_headers: int = 100
    read_timeout_seconds: int = 10
    database_pool_size: int = 10
    # reports and exports read here (a read replica) when set; tills and money always use `database_url`
    read_database_url: str | None = None
    database_pooler: str = "none"  # or "pgbouncer": transaction pooling in between (storage/database.py)
    statement_timeout_ms: int = 10_000
    login_failure_limit: int = 10  # failed logins per login name ...
    login_address_failure_limit: int = 10  # ... and per client address, within the window
    login_failure_window_seconds: int = 900
    document_cache_size: int = 512
    # security (docs/security.md): key revocation, GraphQL limits, the cost budget, card-number guessing
    revoked_key_ids: tuple[str, ...] = ()
    max_query_depth: int = 10
    max_query_aliases: int = 15
    max_query_tokens: int = 2000
    cost_maximum: int = 8000  # credits per caller; 0 turns the budget off
    cost_restore: int = 5000  # credits restored per `cost_restore_seconds`
    cost_restore_seconds: int = 600
    card_miss_limit: int = 30  # look-ups of cards that do not exist, per API user or dashboard user ...
    card_miss_address_limit: int = 100  # ... and per client address ...
    card_miss_window_seconds: int = 600  # ... within this window
    # the outbox (services/outbox.py): SMTP, or .eml files under `data_dir/mail` in development and tests
    smtp_url: str | None = None
    mail_from: str = "giftledger@localhost"
    public_url: str = "http://127.0.0.1:8000"  # where links in messages point (the card pages)
    mail_max_attempts: int = 8
    mail_retry_seconds: int = 60  # the first retry's delay; each later one doubles, up to 6 hours
    mail_lease_seconds: int = 120  # how long a sender holds a message it is sending (then another may resend it)
    # webhook deliveries (services/webhook_sender.py): each attempt times out after 10 s
    webhook_max_attempts: int = 12
    webhook_retry_seconds: int = 60  # the first retry's delay; each later one doubles, up to 6 hours
    webhook_lease_seconds: int = 60  # how long a sender holds a delivery it is posting
    background: str = IN_SERVE  # or SEPARATE: `giftledger work` runs the outbox, expiry and exports (app.py)
    export_retention_days: int = 7  # an export's file is deleted this long after it was written (services/exports)
    data_dir: Path = DEFAULT_DATA_DIR
    metrics_token: str | None = None  # /metrics needs it as a bearer token; None: loopback clients only
    extra: Mapping[str, str] = field(default_factory=dict)

    @property
    def development(self) -> bool:
        return self.environment == "development"

    @property
    def mail_directory(self) -> Path:
        """Where messages are written as `.eml` files when no SMTP server is configured (development, tests)."""
        return self.data_dir / "mail"


def leftover_sqlite(data_dir: Path) -> Path | None:
    """A SQLite file an earlier giftledger left in the data directory (never read now), if there is one."""
    path = data_dir / LEFTOVER_SQLITE_FILE
    return path if path.exists() else None


def check_database_url(url: str, data_dir: Path) -> str:
    """`url` when it names a PostgreSQL server; otherwise one clear error naming the accepted forms."""
    scheme = url.split("://", 1)[0].lower() if "://" in url else ""
    if scheme.split("+", 1)[0] in ("postgresql", "postgres"):
        return url
    shown = f"{scheme}://..." if scheme else "without a scheme"  # never echo a password
    message = (
        f"GIFTLEDGER_DATABASE_URL ({shown}) is not supported: giftledger runs on PostgreSQL only. "
        f"Use {DATABASE_URL_FORMS}."
    )
    if (old := leftover_sqlite(data_dir)) is not None:
        message += f" {old} is an SQLite database from an earlier giftledger: it is not read (no data has shipped)."
    raise ConfigurationError(message)


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
    given = (database_url or env.get("GIFTLEDGER_DATABASE_URL") or "").strip()
    url = check_database_url(given, data_dir) if given else None
    read_given = env.get("GIFTLEDGER_READ_DATABASE_URL", "").strip()
    read_url = check_database_url(read_given, data_dir) if read_given else None
    secret = env.get("GIFTLEDGER_SECRET_KEY", "")
    if not secret:
        if environment != "development":
            raise ConfigurationError("GIFTLEDGER_SECRET_KEY must be set outside development mode")
        secret = _development_secret(data_dir)
    if len(secret) < 32:
        raise ConfigurationError("GIFTLEDGER_SECRET_KEY must be at least 32 characters")
    previous = tuple(k.strip() for k in env.get("GIFTLEDGER_PREVIOUS_SECRET_KEYS", "").split(",") if k.strip())
    if any(len(k) < 32 for k in previous):
        raise ConfigurationError("every key in GIFTLEDGER_PREVIOUS_SECRET_KEYS must be at least 32 characters")
    revoked = tuple(k.strip() for k in env.get("GIFTLEDGER_REVOKED_KEY_IDS", "").split(",") if k.strip())
    if key_id(secret) in revoked:
        raise ConfigurationError("GIFTLEDGER_SECRET_KEY is listed in GIFTLEDGER_REVOKED_KEY_IDS: configure a new key")

    smtp_url = env.get("GIFTLEDGER_SMTP_URL", "").strip() or None
    mail_from = env.get("GIFTLEDGER_MAIL_FROM", "").strip()
    if smtp_url is not None and urlsplit(smtp_url).scheme not in ("smtp", "smtps"):
        raise ConfigurationError("GIFTLEDGER_SMTP_URL must be smtp://[user:pass@]host[:port] or smtps://...")
    if environment == "production" and (smtp_url is None or not mail_from):
        raise ConfigurationError(
            "GIFTLEDGER_SMTP_URL and GIFTLEDGER_MAIL_FROM must be set in production: giftledger emails cards and "
            "receipts (in development they are written under GIFTLEDGER_DATA_DIR/mail instead)"
        )
    if mail_from and not is_email(mail_from):
        raise ConfigurationError("GIFTLEDGER_MAIL_FROM must be an email address (name@domain)")
    public_url = env.get("GIFTLEDGER_PUBLIC_URL", "").strip().rstrip("/") or "http://127.0.0.1:8000"
    if urlsplit(public_url).scheme not in ("http", "https") or not urlsplit(public_url).hostname:
        raise ConfigurationError("GIFTLEDGER_PUBLIC_URL must be an http(s) URL, such as https://gift.example.com")

    def number(name: str, default: int, minimum: int = 1) -> int:
        raw = env.get(f"GIFTLEDGER_{name}", "").strip()
        if not raw:
            return default
        if not (raw.isascii() and raw.isdigit()) or int(raw) < minimum:
            raise ConfigurationError(f"GIFTLEDGER_{name} must be a whole number of at least {minimum}")
        return int(raw)

    pooler = env.get("GIFTLEDGER_DATABASE_POOLER", "").strip().lower() or "none"
    if pooler not in ("none", "pgbouncer"):
        raise ConfigurationError("GIFTLEDGER_DATABASE_POOLER must be none or pgbouncer (transaction pooling)")

    background = env.get("GIFTLEDGER_BACKGROUND", "").strip().lower() or IN_SERVE
    if background not in (IN_SERVE, SEPARATE):
        raise ConfigurationError(
            "GIFTLEDGER_BACKGROUND must be serve (each serving process also sends the outbox, runs the expiry and "
            "the exports) or separate (`giftledger work` does)"
        )

    metrics_token = env.get("GIFTLEDGER_METRICS_TOKEN", "").strip() or None
    if metrics_token is not None and (len(metrics_token) < 16 or not metrics_token.isascii()):
        raise ConfigurationError("GIFTLEDGER_METRICS_TOKEN must be at least 16 ASCII characters")

    return Settings(
        database_url=url,
        read_database_url=read_url,
        data_dir=data_dir,
        secret_key=secret,
        previous_secret_keys=previous,
        environment=environment,
        database_pool_size=number("DATABASE_POOL_SIZE", 10),
        database_pooler=pooler,
        statement_timeout_ms=number("STATEMENT_TIMEOUT_MS", 10_000, minimum=100),
        max_body_bytes=number("MAX_BODY_BYTES", 65_536),
        max_head_bytes=number("MAX_HEAD_BYTES", 65_536, minimum=1024),
        max_headers=number("MAX_HEADERS", 100),
        read_timeout_seconds=number("READ_TIMEOUT_SECONDS", 10),
        login_failure_limit=number("LOGIN_FAILURE_LIMIT", 10),
        login_address_failure_limit=number("LOGIN_ADDRESS_FAILURE_LIMIT", 10),
        login_failure_window_seconds=number("LOGIN_FAILURE_WINDOW_SECONDS", 900),
        revoked_key_ids=revoked,
        max_query_depth=number("MAX_QUERY_DEPTH", 10),
        max_query_aliases=number("MAX_QUERY_ALIASES", 15, minimum=0),
        max_query_tokens=number("MAX_QUERY_TOKENS", 2000),
        cost_maximum=number("COST_MAXIMUM", 8000, minimum=0),
        cost_restore=number("COST_RESTORE", 5000),
        cost_restore_seconds=number("COST_RESTORE_SECONDS", 600),
        card_miss_limit=number("CARD_MISS_LIMIT", 30),
        card_miss_address_limit=number("CARD_MISS_ADDRESS_LIMIT", 100),
        card_miss_window_seconds=number("CARD_MISS_WINDOW_SECONDS", 600),
        smtp_url=smtp_url,
        mail_from=mail_from or "giftledger@localhost",
        public_url=public_url,
        mail_max_attempts=number("MAIL_MAX_ATTEMPTS", 8),
        mail_retry_seconds=number("MAIL_RETRY_SECONDS", 60),
        mail_lease_seconds=number("MAIL_LEASE_SECONDS", 120),
        webhook_max_attempts=number("WEBHOOK_MAX_ATTEMPTS", 12),
        webhook_retry_seconds=number("WEBHOOK_RETRY_SECONDS", 60),
        webhook_lease_seconds=number("WEBHOOK_LEASE_SECONDS", 60, minimum=1),
        background=background,
        export_retention_days=number("EXPORT_RETENTION_DAYS", 7),
        metrics_token=metrics_token,
    )
