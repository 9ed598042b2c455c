"""PgBouncer (Debian's `pgbouncer`) in transaction mode in front of a PostgreSQL server, for tests and the bench."""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from sqlalchemy.engine import make_url

from tests.support import free_port

PGBOUNCER = "/usr/sbin/pgbouncer"


def unavailable() -> str | None:
    """None when PgBouncer can run here, else why not."""
    if not Path(PGBOUNCER).exists():
        return f"{PGBOUNCER} is not installed (apt-get install pgbouncer)"
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        return "running as root without runuser (PgBouncer refuses to run as root)"
    return None


class Bouncer:
    """PgBouncer on a free local port, pooling in transaction mode to the server `server_url` names (a TCP host
    or a Unix socket directory), `pool_size` server connections per database. `url(database)` is the URL
    giftledger connects to instead. Runs as the socket directory's owner (it must reach the socket) or, as root
    on a TCP server, as `postgres`."""

    def __init__(self, server_url: str, pool_size: int = 4) -> None:
        url = make_url(server_url)
        socket_dir = url.query.get("host")
        host = str(socket_dir) if socket_dir else (url.host or "127.0.0.1")
        self.user = url.username or "postgres"
        self.port = free_port()
        self.directory = Path(tempfile.mkdtemp(prefix="giftledger-pgbouncer-"))
        run_as = None
        if os.geteuid() == 0:
            run_as = pwd.getpwuid(Path(host).stat().st_uid).pw_name if host.startswith("/") else "postgres"
        config = self.directory / "pgbouncer.ini"
        (self.directory / "users.txt").write_text(f'"{self.user}" ""\n')
        config.write_text(
            "[databases]\n"
            f"* = host={host} port={url.port or 5432}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.directory / 'users.txt'}\n"
            f"pool_mode = transaction\ndefault_pool_size = {pool_size}\nmax_client_conn = 500\n"
            f"logfile = {self.directory / 'pgbouncer.log'}\n"
        )
        command = [PGBOUNCER, str(config)]
        if run_as is not None:
            shutil.chown(self.directory, run_as)
            for path in self.directory.iterdir():
                shutil.chown(path, run_as)
            command = ["runuser", "-u", run_as, "--", *command]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        import socket

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"pgbouncer did not start: {self.log()}")

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def log(self) -> str:
        path = self.directory / "pgbouncer.log"
        return path.read_text() if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)  # PgBouncer: immediate shutdown
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)
