"""Failover soak: PostgreSQL with automatic failover (pg_auto_failover: a monitor, a primary and a synchronous
standby, all on this machine), giftledger pointed at both nodes with one multi-host URL
(`target_session_attrs=read-write`), redemptions from several tills through `giftledger_client`, then the
primary's machine is lost (kill -9 of its pg_autoctl keeper and its PostgreSQL, together); RUNS times, each on a
fresh formation.

    python bench/failover_soak.py [--runs 5] [--tills 4] [--before 5] [--after 10] [--fast] [--kill node|postgres]

With `--kill postgres` only the primary's PostgreSQL is killed, its keeper lives on (a crash, not a lost
machine). Each run reports: the seconds from the kill until a redemption sent after it succeeds again;
the redemptions the tills saw succeed that are not in the ledger afterwards (must be 0: each acknowledged
merchant_transaction_reference is looked up as a line item on the primary); how many redemptions were
acknowledged, refused or left without a reply; and `giftledger ledger verify` through the multi-host URL.

Needs Debian's `postgresql-15-auto-failover` (pg_autoctl) and PostgreSQL 15's binaries; run as root, the
PostgreSQL side runs as the `postgres` user (initdb, which pg_autoctl runs, refuses root). Figures: docs/operations.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

BIN = Path("/usr/lib/postgresql/15/bin")
PG_AUTOCTL = "/usr/bin/pg_autoctl"
CARD_BALANCE = 5_000_000  # pence on each till's card: never runs out during a run
# --fast: pg_auto_failover's defaults (health check every 5 s, a node unhealthy after 20 s, then up to 30 s for
# the old primary to confirm its demotion) shortened; the keeper's own partition timeout (20 s) is kept below
# the demotion wait, so a primary cut off from the monitor and its standby still steps down before another is
# promoted.
FAST_MONITOR = {
    "health_check_period": 1000,
    "health_check_timeout": 1000,
    "health_check_max_retries": 1,
    "health_check_retry_delay": 500,
    "node_considered_unhealthy_timeout": 3000,
    "primary_demote_timeout": 8000,
}
FAST_NODE = {"network_partition_timeout": 5}


def as_postgres(command: list[str]) -> list[str]:
    return ["runuser", "-u", "postgres", "--", *command] if os.geteuid() == 0 else command


@dataclass
class Formation:
    """A pg_auto_failover monitor and two PostgreSQL nodes under one temporary directory."""

    directory: Path
    ports: dict[str, int]  # monitor, node1, node2
    fast: bool = False  # FAST_MONITOR and FAST_NODE instead of pg_auto_failover's defaults
    runs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    @property
    def monitor_uri(self) -> str:
        return f"postgres://autoctl_node@127.0.0.1:{self.ports['monitor']}/pg_auto_failover?sslmode=disable"

    @property
    def url(self) -> str:
        return (
            f"postgresql://postgres@127.0.0.1:{self.ports['node1']},127.0.0.1:{self.ports['node2']}/giftledger"
            "?target_session_attrs=read-write"
        )

    def _common(self, name: str) -> list[str]:
        return [
            "--pgdata", str(self.directory / name), "--pgport", str(self.ports[name]), "--hostname", "127.0.0.1",
            "--listen", "127.0.0.1", "--auth", "trust", "--no-ssl", "--pgctl", str(BIN / "pg_ctl"),
        ]  # fmt: skip

    def create(self, name: str) -> None:
        if name == "monitor":
            command = [PG_AUTOCTL, "create", "monitor", *self._common(name)]
        else:
            command = [PG_AUTOCTL, "create", "postgres", *self._common(name), "--monitor", self.monitor_uri,
                       "--dbname", "giftledger", "--name", name]  # fmt: skip
        log = self.directory / f"create-{name}.log"
        with log.open("wb") as out:
            done = subprocess.run(as_postgres(command), stdout=out, stderr=subprocess.STDOUT, timeout=180)
        if done.returncode != 0:
            raise RuntimeError(f"pg_autoctl create {name} failed: {log.read_text()[-2000:]}")
        if self.fast and name != "monitor":  # the keeper gives up a primary it cannot confirm sooner, too
            timeout = str(FAST_NODE["network_partition_timeout"])
            self._pg_autoctl(
                "config", "set", "--pgdata", str(self.directory / name), "timeout.network_partition_timeout", timeout
            )
        with (self.directory / f"run-{name}.log").open("wb") as out:
            self.runs[name] = subprocess.Popen(
                as_postgres([PG_AUTOCTL, "run", "--pgdata", str(self.directory / name)]),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group: the whole "machine" can be killed at once
            )

    def _pg_autoctl(self, *args: str) -> None:
        subprocess.run(as_postgres([PG_AUTOCTL, *args]), check=True, capture_output=True, timeout=60)

    def tune_monitor(self) -> None:
        """The monitor's failure detection and demotion wait shortened (FAST_MONITOR), then reloaded."""
        settings = "; ".join(f"ALTER SYSTEM SET pgautofailover.{k} = {v}" for k, v in FAST_MONITOR.items())
        port = str(self.ports["monitor"])
        psql = [str(BIN / "psql"), "-h", "127.0.0.1", "-p", port, "-U", "postgres", "-d", "pg_auto_failover"]
        for sql in (*settings.split("; "), "SELECT pg_reload_conf()"):
            subprocess.run(as_postgres([*psql, "-c", sql]), check=True, capture_output=True, timeout=30)

    def states(self) -> dict[str, str]:
        """Each node's state as the monitor last heard it reported (`primary`, `secondary`, ...)."""
        done = subprocess.run(
            as_postgres([PG_AUTOCTL, "show", "state", "--json", "--pgdata", str(self.directory / "monitor")]),
            capture_output=True,
            text=True,
            timeout=30,
        )
        if done.returncode != 0:
            return {}
        try:
            nodes = json.loads(done.stdout)
        except json.JSONDecodeError:
            return {}
        return {
            n["nodename"]: n["current_group_state"]
            for n in nodes
            if n.get("current_group_state") == n.get("assigned_group_state")
        }

    def wait_for(self, wanted: dict[str, str], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(self.states().get(name) == state for name, state in wanted.items()):
                return
            time.sleep(0.5)
        raise RuntimeError(f"the formation did not reach {wanted} (last seen {self.states()})")

    def kill(self, name: str, what: str = "node") -> None:
        """kill -9 the node's keeper and its PostgreSQL (its whole process group): the machine is gone; or, with
        `what="postgres"`, its PostgreSQL alone (the keeper lives on and reports it)."""
        postmaster = (self.directory / name / "postmaster.pid").read_text().split()[0]
        if what == "postgres":
            os.kill(int(postmaster), signal.SIGKILL)
            return
        os.killpg(self.runs[name].pid, signal.SIGKILL)
        with contextlib.suppress(ProcessLookupError):  # already gone with its group
            os.kill(int(postmaster), signal.SIGKILL)
        self.runs[name].wait()

    def destroy(self) -> None:
        for process in self.runs.values():
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for process in self.runs.values():
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for name in ("monitor", "node1", "node2"):  # a postgres its keeper left behind
            pid_file = self.directory / name / "postmaster.pid"
            if pid_file.exists():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid_file.read_text().split()[0]), signal.SIGKILL)
        shutil.rmtree(self.directory, ignore_errors=True)


def new_formation(fast: bool) -> Formation:
    from tests.support import free_port

    directory = Path(tempfile.mkdtemp(prefix="giftledger-failover-"))
    if os.geteuid() == 0:
        shutil.chown(directory, "postgres", "postgres")
    ports = {name: free_port() for name in ("monitor", "node1", "node2")}
    formation = Formation(directory, ports, fast)
    try:
        formation.create("monitor")
        time.sleep(1)
        if fast:
            formation.tune_monitor()
        formation.create("node1")
        formation.wait_for({"node1": "single"}, 120)
        formation.create("node2")
        formation.wait_for({"node1": "primary", "node2": "secondary"}, 180)
    except BaseException:
        formation.destroy()
        raise
    return formation


@dataclass
class Till:
    """One till redeeming 1p at a time, recording what it saw."""

    number: int
    card: str
    acknowledged: list[tuple[float, float, str]] = field(default_factory=list)  # (sent, answered, reference)
    failed: int = 0
    unanswered: int = 0

    def run(self, client: Any, stop: threading.Event) -> None:
        from giftledger_client import GiftLedgerError, ServerError, TransportError, new_reference

        while not stop.is_set():
            reference = new_reference()
            sent = time.monotonic()
            try:
                client.redeem(self.card, 1, reference=reference)
            except (TransportError, ServerError):
                self.unanswered += 1  # no reply, or no verdict: applied whole or not at all, not acknowledged
                time.sleep(0.05)
                continue
            except GiftLedgerError:
                self.failed += 1
                time.sleep(0.05)
                continue
            self.acknowledged.append((sent, time.monotonic(), reference))


def one_run(number: int, options: argparse.Namespace, work: Path) -> dict[str, Any]:
    from tests.safety.helpers import NO_THROTTLES
    from tests.support import SECRET, new_demo, start_server

    from giftledger_client import GiftCardClient, TerminalSettings

    began = time.monotonic()
    formation = new_formation(options.fast)
    server = None
    try:
        env = {**os.environ, "GIFTLEDGER_ENV": "test", "GIFTLEDGER_SECRET_KEY": SECRET}
        subprocess.run(
            [sys.executable, "-m", "giftledger", "--database-url", formation.url, "migrate"],
            check=True, capture_output=True, env=env, timeout=180,
        )  # fmt: skip
        demo = new_demo(formation.url)
        server = start_server(formation.url, work, NO_THROTTLES)
        tills, clients = [], []
        for i in range(options.tills):
            settings = TerminalSettings(
                endpoint=server.graphql_url,
                account_id=demo.account_id,
                username=demo.api_username,
                password=demo.api_password,
                site_reference=demo.unit_epos_references[i % len(demo.unit_epos_references)],
                merchant_id=demo.merchant_id,
                product_id=demo.product_id,
                timeout=15,
            )
            client = GiftCardClient(settings, max_attempts=1)
            card = demo.card_references[i]
            client.sell_card(card, CARD_BALANCE)
            tills.append(Till(i, card))
            clients.append(client)
        set_up = time.monotonic() - began
        stop = threading.Event()
        threads = [
            threading.Thread(target=t.run, args=(c, stop), daemon=True) for t, c in zip(tills, clients, strict=True)
        ]
        for thread in threads:
            thread.start()
        time.sleep(options.before)
        primary = next(name for name, state in formation.states().items() if state == "primary")
        killed_at = time.monotonic()
        formation.kill(primary, options.kill)
        # until a redemption sent after the kill is acknowledged, then `after` seconds more
        deadline = killed_at + 300
        recovered_at: float | None = None
        while time.monotonic() < deadline:
            after_kill = [a for t in tills for (s, a, _) in t.acknowledged if s > killed_at]
            if after_kill:
                recovered_at = min(after_kill)
                break
            time.sleep(0.05)
        if recovered_at is not None:
            time.sleep(options.after)
        stop.set()
        for thread in threads:
            thread.join(60)
        for client in clients:
            client.close()
        states = formation.states()
        missing = missing_references(formation.url, demo.account_id, tills)  # on whichever node is primary now
        verify = subprocess.run(
            [sys.executable, "-m", "giftledger", "--database-url", formation.url, "ledger", "verify", "--json",
             "--account-id", str(demo.account_id)],
            capture_output=True, text=True, env=env, timeout=180,
        )  # fmt: skip
        report = json.loads(verify.stdout) if verify.stdout.strip().startswith("{") else {}
        return {
            "run": number,
            "set_up_s": round(set_up, 1),
            "killed": primary,
            "recovered_s": None if recovered_at is None else round(recovered_at - killed_at, 1),
            "acknowledged": sum(len(t.acknowledged) for t in tills),
            "acknowledged_before_kill": sum(1 for t in tills for (_, a, _) in t.acknowledged if a <= killed_at),
            "refused": sum(t.failed for t in tills),
            "unanswered": sum(t.unanswered for t in tills),
            "missing": missing,
            "verify_ok": verify.returncode == 0 and bool(report.get("ok")),
            "states_after": states,
        }
    finally:
        if server is not None:
            server.stop()
        formation.destroy()


def missing_references(url: str, account_id: int, tills: list[Till]) -> int:
    """How many acknowledged references have no line item (read straight from the surviving node)."""
    import asyncpg
    from tests.support import run

    wanted = [reference for t in tills for (_, _, reference) in t.acknowledged]

    async def count() -> int:
        conn = await asyncpg.connect(url, timeout=10)
        try:
            found = await conn.fetch(
                "SELECT DISTINCT transactions.merchant_transaction_reference AS reference FROM transactions"
                " JOIN line_items ON line_items.account_id = transactions.account_id"
                " AND line_items.transaction_id = transactions.id"
                " WHERE transactions.account_id = $1 AND transactions.merchant_transaction_reference = ANY($2::text[])",
                account_id,
                wanted,
            )
        finally:
            await conn.close()
        return len(set(wanted) - {row["reference"] for row in found})

    result: int = run(count())
    return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--tills", type=int, default=4)
    parser.add_argument("--before", type=float, default=5.0, help="seconds of redemptions before the kill")
    parser.add_argument("--after", type=float, default=10.0, help="seconds of redemptions after recovery")
    parser.add_argument(
        "--kill", choices=("node", "postgres"), default="node", help="the keeper and PostgreSQL, or PostgreSQL alone"
    )
    parser.add_argument("--fast", action="store_true", help="shorter failure detection (FAST_MONITOR, FAST_NODE)")
    options = parser.parse_args()
    if shutil.which(PG_AUTOCTL) is None or not (BIN / "pg_ctl").exists():
        print(f"needs {PG_AUTOCTL} (apt-get install postgresql-15-auto-failover) and {BIN}/pg_ctl", file=sys.stderr)
        return 2
    work = Path(tempfile.mkdtemp(prefix="giftledger-failover-server-"))
    results = []
    print(
        "| run | killed | seconds to recover | acknowledged (before kill) | refused | no reply | lost | ledger verify |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for number in range(1, options.runs + 1):
        r = one_run(number, options, work)
        results.append(r)
        print(
            f"| {r['run']} | {r['killed']} | {r['recovered_s']} | {r['acknowledged']} ({r['acknowledged_before_kill']})"
            f" | {r['refused']} | {r['unanswered']} | {r['missing']} | {'OK' if r['verify_ok'] else 'FAILED'} |",
            flush=True,
        )
        print(json.dumps(r), file=sys.stderr, flush=True)
    bad = [r for r in results if r["missing"] or not r["verify_ok"] or r["recovered_s"] is None]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
