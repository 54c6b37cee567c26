"""Run everything on one machine: embedded Redis, migrations, RQ workers, the recovery loop, daphne (and, with
``--demo-user``, the demo's admin user).

Each child runs in a session of its own, so a terminal Ctrl-C reaches only this command, which then stops
them all: SIGTERM to every child's process group, SIGKILL after a grace period to whatever is left (forking
RQ workers' work horses included: they sit in process groups of their own), and Redis last. The grace period
covers the workers' own (``SHUTDOWN_GRACE_SECONDS``: a running step finishes, or is handed back to run again at
the next start) plus ``GRACE_SECONDS``; a second Ctrl-C skips it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import IO

import redis
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser
from rq import Worker

from workflows import conf, metrics
from workflows.devserver import redis_server
from workflows.devserver.processes import descendants

LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]"}
GRACE_SECONDS = 10.0  # beyond the workers' SHUTDOWN_GRACE_SECONDS: to hand a step back, and exit


def grace_seconds() -> float:
    """How long the children have between SIGTERM and SIGKILL: more than a worker's grace for its running step."""
    return float(conf.get("SHUTDOWN_GRACE_SECONDS")) + GRACE_SECONDS


_print_lock = threading.Lock()


def demo_user_refusal() -> str | None:
    """Why ``--demo-user`` must not create its well-known account here, or None: a local, DEBUG site only."""
    if not settings.DEBUG:
        return "--demo-user creates the admin/admin account for local use only: it needs DEBUG on (DEBUG=1)"
    public = [h for h in settings.ALLOWED_HOSTS if h not in LOCAL_HOSTS]
    if public:
        return (
            f"--demo-user creates the admin/admin account for local use only, and ALLOWED_HOSTS allows {public!r}: "
            "allow only localhost, 127.0.0.1 and ::1, or create a real superuser with manage.py createsuperuser"
        )
    return None


def say(name: str, line: str) -> None:
    with _print_lock:
        print(f"[{name}] {line}", flush=True)


def pump(name: str, stream: IO[bytes]) -> threading.Thread:
    """Print every line of ``stream`` prefixed with ``[name]``, until end of file."""

    def run() -> None:
        for raw in iter(stream.readline, b""):
            say(name, raw.decode(errors="replace").rstrip())
        stream.close()

    thread = threading.Thread(target=run, name=f"pump-{name}", daemon=True)
    thread.start()
    return thread


@dataclass
class Child:
    name: str
    proc: subprocess.Popen
    output: threading.Thread


def project_dir() -> Path:
    """Where the project's modules import from (the children run there)."""
    return Path(getattr(settings, "BASE_DIR", None) or os.getcwd())


def fresh_dir(path: Path) -> Path:
    """``path``, emptied: the metrics files of an earlier ``up``'s processes (their pids) are stale."""
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.db"):
        old.unlink(missing_ok=True)
    return path


def var_dir() -> Path:
    """Where the embedded Redis keeps its socket and data: ``settings.VAR_DIR``, else ``<BASE_DIR>/var``."""
    return Path(getattr(settings, "VAR_DIR", None) or project_dir() / "var")


def asgi_application() -> str:
    """``ASGI_APPLICATION`` ("mysite.asgi.application") as daphne names it ("mysite.asgi:application")."""
    path = getattr(settings, "ASGI_APPLICATION", None)
    if not path:
        raise CommandError("Set ASGI_APPLICATION (README: 'Add it to your project', step 4) for daphne to serve")
    module, _, attr = path.rpartition(".")
    return f"{module}:{attr}"


class Command(BaseCommand):
    help = "Start Redis (unless a Redis URL is set), migrate, and run RQ workers, the recovery loop and daphne."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="daphne bind address (default 127.0.0.1)")
        parser.add_argument("--port", type=int, default=8000, help="daphne port (default 8000)")
        parser.add_argument("--workers", type=int, default=2, help="number of RQ worker processes (default 2)")
        parser.add_argument("--worker-class", help="e.g. rq.worker.SimpleWorker (default: the setting)")
        parser.add_argument("--demo-user", action="store_true", help="create the superuser admin (DEMO_PASSWORD)")
        parser.add_argument("--noreload", action="store_true", help="do not restart the processes when code changes")
        parser.add_argument("--watch", action="append", help="a folder whose .py files restart the processes when they "
                            "change (repeatable; default: the project's BASE_DIR)")  # fmt: skip

    def handle(self, *args, **options) -> None:
        self.stopping = threading.Event()
        self.hurry = threading.Event()  # a second signal: skip the grace period
        self.children: list[Child] = []
        self.specs: list[tuple[str, list[str], dict[str, str]]] = []  # what to start again after a code change
        self.changed = threading.Event()  # set by the watcher thread
        if options["workers"] < 1:
            raise CommandError("--workers must be at least 1")
        if options["demo_user"] and (refusal := demo_user_refusal()):
            raise CommandError(refusal)  # before anything starts
        self.check_port(options["host"], options["port"])
        for sig in (signal.SIGINT, signal.SIGTERM):  # raise KeyboardInterrupt until the children run
            signal.signal(sig, signal.default_int_handler)
        redis_proc: subprocess.Popen | None = None
        code = 0
        try:
            embedded = var_dir() / "redis"
            url = os.environ.get("REDIS_URL") or conf.settings().REDIS_URL or ""
            if url == f"unix://{embedded / 'redis.sock'}":
                url = ""  # the embedded server's own address (the demo's default): start it
            names = [f"worker-{i}" for i in range(1, options["workers"] + 1)]
            if url:
                say("up", f"using Redis at {url}")
                rq_names = [f"{n}-{socket.gethostname()}-{os.getpid()}" for n in names]  # a shared Redis
            else:
                try:
                    redis_proc, url = redis_server.start(embedded, appendonly=True)
                except RuntimeError as exc:
                    raise CommandError(f"cannot start Redis: {exc}") from None
                pump("redis", redis_proc.stdout)
                say("up", f"started Redis (pid {redis_proc.pid}) at {url}")
                rq_names = names
                self.forget_dead_workers(url, rq_names)  # left registered by a previous run that was killed
            call_command("migrate", interactive=False, verbosity=options["verbosity"])
            if getattr(settings, "STATIC_ROOT", None):
                Path(settings.STATIC_ROOT).mkdir(parents=True, exist_ok=True)  # else whitenoise warns it is missing
            login = f" and log in as {self.demo_user()}" if options["demo_user"] else ""
            say("up", f"open http://{options['host']}:{options['port']}/{login}")

            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, self.on_signal)
            env = {
                **os.environ,
                "REDIS_URL": url,
                "DJANGO_SETTINGS_MODULE": settings.SETTINGS_MODULE,
                "PYTHONUNBUFFERED": "1",
            }
            if conf.get("METRICS") and not metrics.multiproc_dir():  # one directory for every process's counters
                env["PROMETHEUS_MULTIPROC_DIR"] = str(fresh_dir(var_dir() / "metrics"))
            manage = [sys.executable, "-m", "django"]  # the project's settings come from DJANGO_SETTINGS_MODULE
            worker_class = ["--worker-class", options["worker_class"]] if options["worker_class"] else []
            for label, rq_name in zip(names, rq_names, strict=True):
                self.spawn(label, [*manage, "workflows_worker", "--name", rq_name, *worker_class], env)
            self.spawn("recovery", [*manage, "workflows_recover", "--loop"], env)
            daphne = ["-m", "daphne", "-b", options["host"], "-p", str(options["port"]), asgi_application()]
            self.spawn("daphne", [sys.executable, *daphne], env)
            if not options["noreload"]:
                self.watch([Path(p) for p in options["watch"] or [project_dir()]])
            code = self.supervise(redis_proc)
        except KeyboardInterrupt:
            say("up", "interrupted")
        finally:
            self.shutdown()
            if redis_proc is not None:
                redis_server.stop(redis_proc)
                say("up", "stopped Redis")
        sys.exit(code)

    def check_port(self, host: str, port: int) -> None:
        with socket.socket() as sock:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind((host, port))
            except OSError as exc:
                raise CommandError(f"cannot listen on {host}:{port} ({exc.strerror}); choose one with --port") from None

    def forget_dead_workers(self, url: str, names: list[str]) -> None:
        """Our Redis has just started, so no worker of ours is alive: clear their stale registrations."""
        conn = redis.Redis.from_url(url)
        for name in names:
            worker = Worker.find_by_key(Worker.redis_worker_namespace_prefix + name, connection=conn)
            if worker is not None:
                worker.register_death()

    def demo_user(self) -> str:
        """Create the demo superuser if missing; return how to log in."""
        password = os.environ.get("DEMO_PASSWORD") or "admin"
        User = get_user_model()
        user = User.objects.filter(username="admin").first()
        if user is None:
            User.objects.create_superuser("admin", "admin@example.com", password)
            say("up", "created the demo superuser 'admin'")
            say("up", "WARNING: " + "*" * 90)
            say("up", f"WARNING: the superuser admin / {password} is for LOCAL USE ONLY: anyone who can reach this")
            say("up", "WARNING: site can log in with it. Never expose it; delete it (or change its password) first.")
            say("up", "WARNING: " + "*" * 90)
        elif not user.check_password(password):
            return "admin (an existing user: its password is unchanged)"
        return f"admin / {password}"

    def spawn(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        self.specs.append((name, cmd, env))
        self.start(name, cmd, env)

    def start(self, name: str, cmd: list[str], env: dict[str, str]) -> None:
        proc = subprocess.Popen(
            cmd,
            cwd=project_dir(),
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.children.append(Child(name, proc, pump(name, proc.stdout)))
        say("up", f"started {name} (pid {proc.pid})")

    def on_signal(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping.is_set():
            self.hurry.set()
        self.stopping.set()

    def watch(self, folders: list[Path]) -> None:
        """Restart the processes when a .py file under ``folders`` changes, so nobody debugs stale code."""
        from watchfiles import PythonFilter, watch

        ignore = [str(var_dir())]

        def run() -> None:
            for changes in watch(*folders, watch_filter=PythonFilter(ignore_paths=ignore), stop_event=self.stopping,
                                 raise_interrupt=False):  # fmt: skip
                files = sorted({Path(path).name for _, path in changes})
                say("up", f"code changed ({', '.join(files[:3])}{'…' if len(files) > 3 else ''}): restarting")
                self.changed.set()

        threading.Thread(target=run, name="up-watch", daemon=True).start()
        say("up", f"restarting on code changes in {', '.join(map(str, folders))} (--noreload: never)")

    def restart(self) -> None:
        """Stop every child as at Ctrl-C (workers finish or hand back their steps), then start them again."""
        self.changed.clear()
        self.shutdown()
        self.children = []
        for name, cmd, env in self.specs:
            self.start(name, cmd, env)

    def supervise(self, redis_proc: subprocess.Popen | None) -> int:
        """Wait for a signal (return 0) or for a child to die (return 1); restart the children on code changes."""
        while not self.stopping.wait(0.2):
            if self.changed.is_set():
                self.restart()
                continue
            for child in self.children:
                if child.proc.poll() is not None:
                    say("up", f"{child.name} exited unexpectedly with code {child.proc.returncode}; stopping")
                    return 1
            if redis_proc is not None and redis_proc.poll() is not None:
                say("up", f"Redis exited unexpectedly with code {redis_proc.returncode}; stopping")
                return 1
        steps = f"running steps have {conf.get('SHUTDOWN_GRACE_SECONDS'):g}s to finish"
        say("up", f"stopping... ({steps}; Ctrl-C again kills everything now)")
        return 0

    def shutdown(self) -> None:
        """SIGTERM every child's process group, wait, then SIGKILL every group still there, horses included."""
        if not self.children:
            return
        family = {pid for c in self.children for pid in descendants(c.proc.pid)}
        self.signal_groups({c.proc.pid for c in self.children}, signal.SIGTERM)
        grace = grace_seconds()
        deadline = time.monotonic() + grace
        while any(c.proc.poll() is None for c in self.children) and time.monotonic() < deadline:
            if self.hurry.wait(0.1):
                break
        family |= {pid for c in self.children if c.proc.poll() is None for pid in descendants(c.proc.pid)}
        groups = {c.proc.pid for c in self.children if c.proc.poll() is None}
        for pid in family:
            with contextlib.suppress(ProcessLookupError):
                groups.add(os.getpgid(pid))
        left = [c.name for c in self.children if c.proc.poll() is None]
        if left:
            say("up", f"killing {', '.join(left)}: still running after {grace:g}s")
        self.signal_groups(groups, signal.SIGKILL)  # also catches work horses whose worker has exited
        for child in self.children:
            child.proc.wait()
            child.output.join(2)
            say("up", f"{child.name} stopped ({child.proc.returncode})")

    def signal_groups(self, groups: set[int], sig: signal.Signals) -> None:
        own = os.getpgrp()
        for pgid in groups - {own}:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, sig)
