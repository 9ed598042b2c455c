"""PostgreSQL is the only database: any other URL gets one clear error naming the accepted forms (and the SQLite
file an earlier giftledger left, when there is one), and creates nothing; with no URL the embedded server runs,
and a leftover SQLite file is named in a warning, never read."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from giftledger.config import ConfigurationError, check_database_url, load_settings
from giftledger.storage import migrate
from tests.support import SECRET

FORMS = (
    "Use postgresql://USER[:PASSWORD]@HOST[:PORT]/DATABASE (also postgres://), or leave GIFTLEDGER_DATABASE_URL "
    "unset for the embedded server under GIFTLEDGER_DATA_DIR."
)


def _giftledger(data_dir: Path, *args: str, url: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIFTLEDGER_")}
    env |= {"GIFTLEDGER_ENV": "test", "GIFTLEDGER_SECRET_KEY": SECRET, "GIFTLEDGER_DATA_DIR": str(data_dir)}
    if url is not None:
        env["GIFTLEDGER_DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "giftledger", *args], capture_output=True, text=True, env=env, cwd=data_dir, timeout=120
    )


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("sqlite:///var/giftledger.sqlite3", "sqlite://..."),
        ("sqlite:////tmp/secret-path.sqlite3", "sqlite://..."),
        ("mysql://root:hunter2@db/giftledger", "mysql://..."),
        ("giftledger.sqlite3", "without a scheme"),
    ],
)
def test_any_other_database_is_refused_with_the_accepted_forms_and_nothing_is_created(
    tmp_path: Path, url: str, shown: str
) -> None:
    done = _giftledger(tmp_path, "migrate", url=url)
    assert done.returncode == 1
    assert done.stderr == (
        f"Error: GIFTLEDGER_DATABASE_URL ({shown}) is not supported: giftledger runs on PostgreSQL only. {FORMS}\n"
    )
    assert "hunter2" not in done.stderr + done.stdout  # a password in a refused URL is never echoed
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # no database, no data directory, no key


def test_a_leftover_sqlite_database_is_named_in_the_refusal(tmp_path: Path) -> None:
    (tmp_path / "giftledger.sqlite3").write_bytes(b"SQLite format 3\x00")
    done = _giftledger(tmp_path, "migrate", url="sqlite:///giftledger.sqlite3")
    assert done.returncode == 1
    assert done.stderr.endswith(
        f"{FORMS} {tmp_path / 'giftledger.sqlite3'} is an SQLite database from an earlier giftledger: it is not "
        "read (no data has shipped).\n"
    )
    assert (tmp_path / "giftledger.sqlite3").read_bytes() == b"SQLite format 3\x00"


def test_the_accepted_forms() -> None:
    for url in ("postgresql://u@h/d", "postgres://u@h:5432/d", "postgresql+asyncpg://u@h/d", "POSTGRESQL://u@h/d"):
        assert check_database_url(url, Path("var")) == url
    with pytest.raises(ConfigurationError, match="is not supported"):
        check_database_url("postgresqlx://u@h/d", Path("var"))
    assert load_settings({"GIFTLEDGER_ENV": "test", "GIFTLEDGER_SECRET_KEY": SECRET}).database_url is None


@pytest.fixture
def data_dir() -> Iterator[Path]:
    """Not under pytest's tmp_path: run as root, the embedded server runs as another user, who must reach it."""
    directory = Path(tempfile.mkdtemp(prefix="giftledger-leftover-"))
    yield directory
    shutil.rmtree(directory, ignore_errors=True)


def test_with_no_url_a_leftover_sqlite_file_is_named_and_the_embedded_server_is_used(data_dir: Path) -> None:
    (data_dir / "giftledger.sqlite3").write_bytes(b"SQLite format 3\x00")
    done = _giftledger(data_dir, "migrate", url=None)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"database at revision {migrate.head_revision()}\n")
    assert (
        f"{data_dir / 'giftledger.sqlite3'} is an SQLite database from an earlier giftledger: it is not read "
        "(giftledger runs on PostgreSQL only)"
    ) in done.stderr
    assert (data_dir / "postgres" / "PG_VERSION").read_text().strip() == "18"
    assert (data_dir / "giftledger.sqlite3").read_bytes() == b"SQLite format 3\x00"
