"""`giftledger work`: the background work (app.Background: the outbox's emails and webhook deliveries, the
expiry run, the dashboard's exports) in a process of its own, for servers started with
`GIFTLEDGER_BACKGROUND=separate`. Run one or several (the outbox's leases, the expiry run's SKIP LOCKED batches
and the exports' claims let several share the work); each stops on SIGTERM or SIGINT once what it holds is done.

By default it lowers its own CPU priority (`--nice 10`): on a machine it shares with the serving processes,
the tills' requests come first when the CPU is short, and the deliveries catch up when it is not. What one
costs the other is measured in `make bench` (`--only webhooks`; docs/webhooks.md, "Cost")."""

from __future__ import annotations

import asyncio
import logging
import os
import signal

import click

from giftledger.app import Background
from giftledger.cli.running import run_with_services
from giftledger.services.context import Services

log = logging.getLogger("giftledger")


@click.command("work")
@click.option(
    "--nice",
    type=click.IntRange(0, 19),
    default=10,
    show_default=True,
    help="added to this process's niceness (0: the same CPU priority as the serving processes)",
)
@click.pass_context
def work(ctx: click.Context, nice: int) -> None:
    """Send the outbox, run the expiry and the exports until stopped (SIGTERM or SIGINT). Its log: JSON lines
    on stderr."""
    from giftledger import logs

    logs.configure()

    async def _work(services: Services) -> None:
        if nice:  # only this process: the embedded server, when it started one, keeps its priority
            os.nice(nice)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stopping.set)
        background = Background(services)
        background.start()
        log.info("working", extra={"pid": os.getpid(), "niceness": os.nice(0)})
        await stopping.wait()
        log.info("stopping: finishing what this process holds")
        await background.stop()

    run_with_services(ctx, _work)


def register(cli: click.Group) -> None:
    cli.add_command(work)
