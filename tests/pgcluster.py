"""A throwaway PostgreSQL cluster in a temporary directory, on a free TCP port of 127.0.0.1.

    python -m tests.pgcluster -- CMD ARGS...

starts a cluster, creates the ``workflows`` database, runs CMD with
``DATABASE_URL=postgres://postgres@127.0.0.1:PORT/workflows``, then stops and deletes the cluster (also when CMD
fails or on Ctrl-C) and exits with CMD's exit code. From Python: ``cluster = start()`` ... ``stop(cluster)``.

PostgreSQL refuses to run as root: as root, the server binaries run as the ``postgres`` user (``runuser``) and
the cluster directory belongs to it. The binaries are found through $PG_BINDIR, ``initdb`` on $PATH, or
/usr/lib/postgresql/*/bin. Authentication is ``trust``: keep it to throwaway data.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from workflows.devserver.processes import free_port

SERVER_OPTIONS = "-c listen_addresses=127.0.0.1"
# The test suite's data is thrown away and its speed matters: no flushing to disk. The bench passes durable=True
# (PostgreSQL's defaults, what the README tells production to run) so that its figures are not flattered.
UNSAFE_OPTIONS = "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"


@dataclass
class Cluster:
    directory: Path
    port: int
    bindir: Path
    dbname: str

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{self.dbname}"

    @property
    def data(self) -> Path:
        return self.directory / "data"


def bindir() -> Path:
    if os.environ.get("PG_BINDIR"):
        return Path(os.environ["PG_BINDIR"])
    found = shutil.which("initdb")
    if found:
        return Path(os.path.realpath(found)).parent
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]))
    if versions:
        return versions[-1].parent
    raise RuntimeError("PostgreSQL server binaries not found: install postgresql or set PG_BINDIR")


def _as_owner(cmd: list[str]) -> list[str]:
    """Run ``cmd`` as the postgres user when we are root."""
    return ["runuser", "-u", "postgres", "--", *cmd] if os.geteuid() == 0 else cmd


def _run(cmd: list[str]) -> None:
    """Run ``cmd`` to its end, even on Ctrl-C (the clean-up that follows needs it done); raise if it fails."""
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(_as_owner(cmd), stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            code = proc.wait()
        except KeyboardInterrupt:
            proc.wait()
            raise
        if code:
            out.seek(0)
            raise RuntimeError(f"{' '.join(cmd)} failed ({code}):\n{out.read()}")


def start(dbname: str = "workflows", port: int | None = None, durable: bool = False) -> Cluster:
    """Create and start a cluster, create ``dbname``; return it (its ``url`` is a DATABASE_URL).

    ``durable``: keep PostgreSQL's durable defaults (fsync, synchronous_commit, full_page_writes on) instead of
    the test suite's fast unsafe settings."""
    binaries, chosen_port = bindir(), port or free_port()
    cluster = Cluster(Path(tempfile.mkdtemp(prefix="pgcluster-")), chosen_port, binaries, dbname)
    try:
        directory = cluster.directory
        (directory / "sock").mkdir()
        if os.geteuid() == 0:
            try:
                owner = pwd.getpwnam("postgres")
            except KeyError:
                raise RuntimeError("running as root needs a 'postgres' user to run the server as") from None
            for path in (directory, directory / "sock"):
                os.chown(path, owner.pw_uid, owner.pw_gid)
        initdb = [str(cluster.bindir / "initdb"), "-D", str(cluster.data), "-U", "postgres", "--auth=trust"]
        _run([*initdb, "-E", "UTF8", "--locale=C", "--no-sync"])
        for attempt in range(3):  # the free port may be taken before the server binds it
            server_options = SERVER_OPTIONS if durable else f"{SERVER_OPTIONS} {UNSAFE_OPTIONS}"
            options = f"-p {cluster.port} -k {directory / 'sock'} {server_options}"
            log = str(directory / "server.log")
            try:
                _run([str(cluster.bindir / "pg_ctl"), "-D", str(cluster.data), "-l", log, "-w", "-o", options, "start"])
                break
            except RuntimeError as exc:
                if attempt == 2 or port is not None:
                    server_log = Path(log).read_text(errors="replace") if Path(log).exists() else ""
                    raise RuntimeError(f"{exc}\n{server_log}") from None
                cluster.port = free_port()
        createdb = [str(cluster.bindir / "createdb"), "-h", "127.0.0.1", "-p", str(cluster.port), "-U", "postgres"]
        _run([*createdb, dbname])
    except BaseException:
        stop(cluster)
        raise
    return cluster


def stop(cluster: Cluster) -> None:
    """Stop the server at once (the data is thrown away) and delete the cluster directory."""
    if (cluster.data / "postmaster.pid").exists():
        pg_ctl = [str(cluster.bindir / "pg_ctl"), "-D", str(cluster.data), "-m", "immediate", "-w", "stop"]
        try:
            _run(pg_ctl)
        except RuntimeError:
            with contextlib.suppress(OSError, ValueError, IndexError):  # kill the postmaster by its pid file
                os.kill(int((cluster.data / "postmaster.pid").read_text().split()[0]), signal.SIGKILL)
    shutil.rmtree(cluster.directory, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.pgcluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("--dbname", default="workflows")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- CMD ARGS...")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give a command to run: python -m tests.pgcluster -- CMD ARGS...")

    signal.signal(signal.SIGTERM, signal.default_int_handler)  # start() cleans up on KeyboardInterrupt
    try:
        cluster = start(args.dbname)
    except KeyboardInterrupt:
        return 130
    print(f"pgcluster: PostgreSQL at {cluster.url} ({cluster.directory})", file=sys.stderr, flush=True)
    try:
        proc = subprocess.Popen(command, env={**os.environ, "DATABASE_URL": cluster.url})
        # Ctrl-C reaches CMD too, in the same process group: let it finish. SIGTERM is passed on to it.
        signal.signal(signal.SIGINT, lambda signum, frame: None)
        signal.signal(signal.SIGTERM, lambda signum, frame: proc.send_signal(signal.SIGTERM))
        code = proc.wait()
    finally:
        stop(cluster)
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main())
