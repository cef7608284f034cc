"""A real PostgreSQL and a real ``mlflow server`` on 127.0.0.1, for tests and benchmarks (helpers and
pytest fixtures, no tests; nothing here imports har).

PostgreSQL: ``initdb`` into a fresh temporary folder with a generated password (scram-sha-256 for every
connection, TCP on 127.0.0.1 only, the Unix socket inside that folder), then ``pg_ctl start``. initdb
refuses to run as root, so under root the server runs as the unprivileged ``postgres`` account (the
Debian package's), else ``nobody``. Clients find the password through ``PGPASSFILE`` (a 0600 file in a
0700 temporary folder), so it never appears in a URI, a command line or a log; both folders are deleted
at teardown.

``mlflow server`` runs as the current user on ``postgresql://har@127.0.0.1:<port>/<db>`` (no password in
the URI) with proxied artifacts in a local folder or an object store, one worker, and is stopped by its
process group. The object store is moto's S3 server (``running_object_store``), credentials made up per
run and handed to clients through the environment only.

    with running_postgres() as pg, running_mlflow_server(pg, folder) as server:
        MlflowClient(server.url)

In a test module, ``pytest_plugins = ["tests.servers"]`` provides the fixtures ``postgres`` and
``mlflow_server`` (module scope). Only a machine without PostgreSQL binaries skips them.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

ROLE = "har"  # the database superuser initdb creates


class NoPostgres(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def postgres_bin() -> Path:
    """The folder holding initdb, pg_ctl and postgres: $PG_BIN, then PATH, then the Debian layout."""
    candidates = [os.environ.get("PG_BIN", "")]
    found = shutil.which("initdb")
    if found:
        candidates.append(str(Path(found).resolve().parent))
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=_version_key, reverse=True)
    candidates += ["/usr/local/pgsql/bin"]
    for folder in candidates:
        if folder and all((Path(folder) / b).is_file() for b in ("initdb", "pg_ctl", "postgres")):
            return Path(folder)
    raise NoPostgres(
        "no PostgreSQL server binaries (initdb, pg_ctl, postgres) on PATH or in /usr/lib/postgresql"
    )


def _version_key(path: str) -> tuple[int, ...]:
    digits = Path(path).parent.name
    return tuple(int(p) for p in digits.split(".") if p.isdigit())


def _server_account() -> pwd.struct_passwd | None:
    """The account PostgreSQL runs as: None (this user) unless we are root, which initdb refuses."""
    if os.geteuid() != 0:
        return None
    for name in (os.environ.get("PG_USER", ""), "postgres", "nobody"):
        if not name:
            continue
        with contextlib.suppress(KeyError):
            account = pwd.getpwnam(name)
            if account.pw_uid != 0:
                return account
    raise RuntimeError("running as root and no unprivileged account (postgres, nobody) to run PostgreSQL as")


@dataclass
class Postgres:
    """A running PostgreSQL cluster. ``uri`` carries no password; pass ``env`` to every client."""

    port: int
    database: str
    folder: Path  # data/, the socket and the log, owned by the server's account
    passfile: Path
    bindir: Path
    account: pwd.struct_passwd | None
    role: str = ROLE

    @property
    def uri(self) -> str:
        return f"postgresql://{self.role}@127.0.0.1:{self.port}/{self.database}"

    @property
    def env(self) -> dict[str, str]:
        return {"PGPASSFILE": str(self.passfile)}

    def log_tail(self, chars: int = 3000) -> str:
        with contextlib.suppress(OSError):
            return (self.folder / "postgres.log").read_text(errors="replace")[-chars:]
        return ""

    def create_database(self, name: str) -> str:
        """CREATE DATABASE ``name`` (e.g. one for Optuna beside MLflow's: both keep an alembic_version
        table); its URI."""
        createdb = (
            self.bindir / "createdb" if (self.bindir / "createdb").is_file() else shutil.which("createdb")
        )
        if createdb is None:
            raise RuntimeError(f"no createdb next to {self.bindir / 'initdb'} or on PATH")
        made = subprocess.run(
            [str(createdb), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.role, "-w", name],
            env={**os.environ, **self.env},
            capture_output=True,
            text=True,
            timeout=60,
        )
        if made.returncode != 0:
            raise RuntimeError(f"createdb {name} failed: {made.stderr[-1000:]}")
        return f"postgresql://{self.role}@127.0.0.1:{self.port}/{name}"


def _as_server(account: pwd.struct_passwd | None, args: list[str], cwd: Path, timeout: float):
    """Run a PostgreSQL program as its account (dropping root), with a minimal environment."""
    extra: dict = {}
    if account is not None:
        extra = {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []}
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C", "TZ": "UTC"}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, **extra)


@contextlib.contextmanager
def running_postgres(database: str = "mlflow", settings: dict[str, str] | None = None) -> Iterator[Postgres]:
    """initdb + pg_ctl start in a temporary folder, CREATE DATABASE, and stop + delete at exit.

    ``settings``: extra ``-c key=value`` server settings (defaults are PostgreSQL's own, fsync included).
    Raises NoPostgres when there are no binaries, RuntimeError (with the server's log) when it fails."""
    bindir = postgres_bin()
    account = _server_account()
    base = Path(tempfile.mkdtemp(prefix="har-pg-"))  # 0700, ours: the client's password file lives here
    folder = Path(tempfile.mkdtemp(prefix="har-pgdata-"))  # data, socket and log: the server's account
    if account is not None:
        os.chown(folder, account.pw_uid, account.pw_gid)
    password = secrets.token_urlsafe(24)
    pg: Postgres | None = None
    try:
        pwfile = folder / "pwfile"
        fd = os.open(pwfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(password + "\n")
        if account is not None:
            os.chown(pwfile, account.pw_uid, account.pw_gid)
        init = _as_server(
            account,
            [str(bindir / "initdb"), "-D", str(folder / "data"), "-U", ROLE, f"--pwfile={pwfile}",
             "--auth=scram-sha-256", "--encoding=UTF8", "--no-locale", "--no-instructions"],
            cwd=folder,
            timeout=180,
        )  # fmt: skip
        pwfile.unlink()
        if init.returncode != 0:
            raise RuntimeError(f"initdb failed ({init.returncode}): {init.stderr[-2000:]}")
        extra = " ".join(f"-c {k}={v}" for k, v in (settings or {}).items())
        for attempt in range(3):  # a free port can be taken between the check and the bind
            port = free_port()
            options = f"-k {folder} -h 127.0.0.1 -p {port} {extra}".strip()
            start = _as_server(
                account,
                [str(bindir / "pg_ctl"), "-D", str(folder / "data"), "-l", str(folder / "postgres.log"),
                 "-w", "-t", "120", "-o", options, "start"],
                cwd=folder,
                timeout=180,
            )  # fmt: skip
            if start.returncode == 0:
                break
            if attempt == 2:
                log = (folder / "postgres.log").read_text(errors="replace")[-3000:]
                raise RuntimeError(f"pg_ctl start failed ({start.returncode}): {start.stderr[-1000:]}\n{log}")
        passfile = base / "pgpass"
        fd = os.open(passfile, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(f"127.0.0.1:{port}:*:{ROLE}:{password}\n")
        pg = Postgres(port, database, folder, passfile, bindir, account)
        pg.create_database(database)
        yield pg
    finally:
        if (folder / "data" / "postmaster.pid").exists():
            stop = _as_server(
                account,
                [str(bindir / "pg_ctl"), "-D", str(folder / "data"), "-m", "fast", "-w", "-t", "60", "stop"],
                cwd=folder,
                timeout=90,
            )
            if stop.returncode != 0:
                _kill_postmaster(folder / "data" / "postmaster.pid")
        shutil.rmtree(folder, ignore_errors=True)
        shutil.rmtree(base, ignore_errors=True)


def _kill_postmaster(pidfile: Path) -> None:
    with contextlib.suppress(OSError, ValueError, IndexError):
        pid = int(pidfile.read_text().splitlines()[0])
        os.kill(pid, signal.SIGQUIT)
        time.sleep(2)
        os.kill(pid, signal.SIGKILL)


# -- mlflow server ----------------------------------------------------------------------------------
def _mlflow_command() -> list[str]:
    script = Path(sys.executable).parent / "mlflow"
    return [str(script)] if script.is_file() else [sys.executable, "-m", "mlflow"]


@dataclass
class MlflowServer:
    """``mlflow server`` on 127.0.0.1 over a backend store; ``stop()`` and ``start()`` keep the port (a
    restarted server answers at the same URL)."""

    backend_uri: str
    folder: Path  # artifacts/ and server.log
    env: dict[str, str] = field(default_factory=dict)
    port: int = 0
    workers: int = 1
    proc: subprocess.Popen | None = None
    artifacts: str = ""  # where the server keeps artifacts (proxied): a URI such as s3://bucket/mlflow, else folder/artifacts

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.folder / "server.log"

    def log_tail(self, chars: int = 4000) -> str:
        with contextlib.suppress(OSError):
            return self.log.read_text(errors="replace")[-chars:]
        return ""

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as reply:
                return reply.status == 200
        except OSError:
            return False

    def start(self, timeout: float = 180) -> None:
        self.port = self.port or free_port()
        (self.folder / "artifacts").mkdir(parents=True, exist_ok=True)
        command = [*_mlflow_command(), "server", "--backend-store-uri", self.backend_uri,
                   "--artifacts-destination", self.artifacts or str(self.folder / "artifacts"),
                   "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)]  # fmt: skip
        env = {**os.environ, **self.env, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
        with open(self.log, "ab") as log:
            self.proc = subprocess.Popen(
                command,
                cwd=self.folder,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while not self.healthy():
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlflow server exited with {self.proc.returncode}:\n{self.log_tail()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(
                    f"mlflow server did not answer /health in {timeout:.0f} s:\n{self.log_tail()}"
                )
            time.sleep(0.5)

    def stop(self, grace: float = 20) -> None:
        """SIGTERM to the server's process group (gunicorn/uvicorn and their workers), SIGKILL after
        ``grace`` seconds."""
        proc, self.proc = self.proc, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)
        with contextlib.suppress(ProcessLookupError):  # stragglers of the group
            os.killpg(proc.pid, signal.SIGKILL)


@contextlib.contextmanager
def running_mlflow_server(
    pg: Postgres, folder: Path, workers: int = 1, artifacts: str = "", env: dict[str, str] | None = None
) -> Iterator[MlflowServer]:
    """``mlflow server`` backed by ``pg`` (tables created by the server's own migrations on start);
    ``artifacts``: an object-store URI for the artifacts (``env`` then carries its credentials)."""
    folder.mkdir(parents=True, exist_ok=True)
    server = MlflowServer(pg.uri, folder, env={**pg.env, **(env or {})}, workers=workers, artifacts=artifacts)
    try:
        server.start()
        yield server
    finally:
        server.stop()


# -- an S3-compatible object store -------------------------------------------------------------------
@dataclass
class ObjectStore:
    """moto's S3 server on 127.0.0.1. ``env`` is all a client needs (credentials made up per run, the
    endpoint): boto3, pyarrow (Ray Tune's storage), s3fs (DVC's remote) and MLflow all read
    ``AWS_ENDPOINT_URL`` and the ``AWS_*`` keys from the environment."""

    port: int
    proc: subprocess.Popen
    log: Path
    env: dict[str, str]

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def client(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=self.env["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=self.env["AWS_SECRET_ACCESS_KEY"],
            region_name=self.env["AWS_DEFAULT_REGION"],
        )

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return [item["Key"] for page in pages for item in page.get("Contents", [])]


@contextlib.contextmanager
def running_object_store(folder: Path, buckets: tuple[str, ...] = ("har",)) -> Iterator[ObjectStore]:
    """``moto_server`` (moto[server]) on a free port with ``buckets`` created; stopped by its process
    group. Its objects live in memory: nothing outlives the context."""
    script = Path(sys.executable).parent / "moto_server"
    if not script.is_file():
        raise RuntimeError(f"{script} not found: install the dev extra (moto[server])")
    folder.mkdir(parents=True, exist_ok=True)
    port = free_port()
    env = {"AWS_ACCESS_KEY_ID": secrets.token_hex(10), "AWS_SECRET_ACCESS_KEY": secrets.token_urlsafe(30),
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": f"http://127.0.0.1:{port}"}  # fmt: skip
    log = folder / "moto.log"
    with open(log, "ab") as out:
        proc = subprocess.Popen(
            [str(script), "-H", "127.0.0.1", "-p", str(port)],
            env={**os.environ, **env},
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    store = ObjectStore(port, proc, log, env)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{store.endpoint}/moto-api/", timeout=2):
                    break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto_server did not start:\n{log.read_text()[-2000:]}") from None
                time.sleep(0.3)
        for bucket in buckets:
            store.client().create_bucket(Bucket=bucket)
        yield store
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


# -- pytest fixtures ----------------------------------------------------------------------------------
try:
    import pytest
except ImportError:  # benchmarks use the context managers only
    pytest = None

if pytest is not None:

    @pytest.fixture(scope="module")
    def postgres() -> Iterator[Postgres]:
        try:
            with running_postgres() as pg:
                yield pg
        except NoPostgres as exc:
            pytest.skip(f"PostgreSQL is not installed: {exc}")

    @pytest.fixture(scope="module")
    def object_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObjectStore]:
        with running_object_store(tmp_path_factory.mktemp("object-store")) as store:
            yield store

    @pytest.fixture(scope="module")
    def mlflow_server(postgres: Postgres, tmp_path_factory: pytest.TempPathFactory) -> Iterator[MlflowServer]:
        with running_mlflow_server(postgres, tmp_path_factory.mktemp("mlflow-server")) as server:
            yield server
