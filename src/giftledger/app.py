"""The composition root: settings -> database -> services -> transports (one Starlette app)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from giftledger import metrics
from giftledger.api.endpoint import GraphQLEndpoint
from giftledger.auth.tokens import TokenIssuer
from giftledger.config import IN_SERVE, ConfigurationError, Settings, leftover_sqlite
from giftledger.dashboard import dashboard_error_handlers, dashboard_routes
from giftledger.domain.errors import Retryable
from giftledger.outbound.mailers import DirectoryMailer, Mailer, SmtpMailer
from giftledger.services.context import Services
from giftledger.services.expiry import Expirer
from giftledger.services.exports import Exporter
from giftledger.services.outbox import Sender, backlog
from giftledger.storage import embedded, migrate
from giftledger.storage.database import Database

log = logging.getLogger("giftledger")
# Paths that are not the dashboard's: an unknown method or sub-path there keeps its plain answer.
API_PATHS = ("/graphql", "/graphiql", "/healthz", "/readyz", "/metrics")


def with_database(settings: Settings) -> Settings:
    """`settings` with a database URL: when none is configured, the embedded server under the data directory,
    started (or joined) and held until this process exits (storage/embedded.py)."""
    if settings.database_url is not None:
        return settings
    if (old := leftover_sqlite(settings.data_dir)) is not None:
        log.warning(
            "%s is an SQLite database from an earlier giftledger: it is not read (giftledger runs on PostgreSQL only)",
            old,
        )
    return replace(settings, database_url=embedded.hold(settings.data_dir))


def mailer_for(settings: Settings) -> Mailer:
    """SMTP when GIFTLEDGER_SMTP_URL is set (required in production: config.py); otherwise each message is
    written as an .eml file under the data directory's `mail/` (the dashboard lists them)."""
    if settings.smtp_url:
        return SmtpMailer(settings.smtp_url)
    return DirectoryMailer(settings.mail_directory)


class Background:
    """The work no request waits for: this process's share of the outbox (emails and webhook deliveries:
    services/outbox.py), the expiry run (breakage and reminders: services/expiry.py) and the exports queued from
    the dashboard (services/exports.py). Each serving process runs it (`GIFTLEDGER_BACKGROUND=serve`, the
    default), or none does and `giftledger work` runs it in processes of its own (`separate`)."""

    def __init__(self, services: Services) -> None:
        self._parts = (Sender(services, mailer_for(services.settings)), Expirer(services), Exporter(services))

    def start(self) -> None:
        for part in self._parts:
            part.start()

    async def stop(self) -> None:
        for part in self._parts:
            await part.stop()


def build_services(settings: Settings) -> Services:
    if settings.database_url is None:
        raise ConfigurationError("no database URL: start the embedded server first (app.with_database)")
    db = Database(
        settings.database_url,
        pool_size=settings.database_pool_size,
        statement_timeout_ms=settings.statement_timeout_ms,
        pooler=settings.database_pooler,
    )
    tokens = TokenIssuer(
        settings.secret_key,
        previous_keys=settings.previous_secret_keys,
        revoked_key_ids=settings.revoked_key_ids,
        lifetime_seconds=settings.token_lifetime_seconds,
        refresh_window_seconds=settings.token_refresh_window_seconds,
        issuer=settings.token_issuer,
        audience=settings.token_audience,
    )
    replica = None
    if settings.read_database_url is not None:  # reports and exports only (services/exports.py, finance.py)
        replica = Database(
            settings.read_database_url,
            pool_size=settings.database_pool_size,
            statement_timeout_ms=settings.statement_timeout_ms,
            pooler=settings.database_pooler,
        )
    return Services(db=db, settings=settings, tokens=tokens, replica=replica)


async def migrate_database(services: Services) -> str | None:
    """Bring the database to the latest revision (idempotent); the revision it is at now."""
    await migrate.upgrade(services.db.engine)
    return await migrate.current_revision(services.db.engine)


async def schema_revisions(services: Services) -> tuple[str | None, str | None]:
    """The revision the database is at (None: no giftledger schema), and the code's latest."""
    return await migrate.current_revision(services.db.engine), migrate.head_revision()


def create_app(settings: Settings) -> Starlette:
    services = build_services(settings)
    graphql = GraphQLEndpoint(services)

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    async def readyz(_: Request) -> Response:
        try:
            async with services.db.engine.connect() as conn:
                await conn.execute(text("SELECT 1"))
            current = await migrate.current_revision(services.db.engine)
        except Exception as exc:  # any failure to reach the database means "not ready"
            return JSONResponse({"status": "unavailable", "reason": type(exc).__name__}, status_code=503)
        head = migrate.head_revision()
        if current != head:
            return JSONResponse({"status": "migrations pending", "current": current, "head": head}, status_code=503)
        return JSONResponse({"status": "ready", "revision": current})

    async def metrics_page(request: Request) -> Response:
        """Prometheus's text format, to whom `metrics.refusal` allows (metrics.py)."""
        if (refused := metrics.refusal(request, settings.metrics_token)) is not None:
            return refused
        try:
            waiting = await backlog(services)
        except Retryable:  # the database away: the rest is still worth reading
            waiting = None
        return metrics.page(waiting, datetime.now(UTC))

    background = Background(services) if settings.background == IN_SERVE else None

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        if background is not None:
            background.start()
        yield
        if background is not None:
            await background.stop()
        await graphql.guard.close()  # audit records still waiting
        await services.dispose()

    app = Starlette(
        routes=[
            Route("/graphql", graphql.handle, methods=["GET", "POST"]),
            graphql.explorer.files_route(),  # the files GraphiQL loads, under /graphiql
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_page),
            *dashboard_routes(services),
        ],
        exception_handlers=dict(dashboard_error_handlers(services, besides=API_PATHS)),
        lifespan=lifespan,
    )
    app.state.services = services
    app.state.graphql = graphql  # (its audit queue: tests flush it)
    return app
