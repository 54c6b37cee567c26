"""The multi-host test: three hosts as network namespaces, four scenarios, a table of figures per scenario.

    python -m tests.cluster --runs 30      # make cluster-test
    python -m tests.cluster --runs 4       # the small version CI runs (tests/cluster/test_cluster.py)

As root (``ip netns``): deletes the namespaces that earlier runs left behind, makes this run's (``netns.py``),
runs ``scenarios.py`` inside the ``ctl`` namespace, then kills every process in the namespaces and deletes them,
also when it fails or is interrupted. Exits 0 when every scenario passed; 2 when the namespaces cannot be made.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from . import netns
from .services import BASE_DIR, DATABASE_URL, REDIS_URL


def environment(args: argparse.Namespace) -> dict[str, str]:
    drop = ("DATABASE_URL", "REDIS_URL", "WORKFLOWS_CRASH_AT", "WORKFLOWS_WORKER_CLASS", "PROMETHEUS_MULTIPROC_DIR")
    return {
        **{k: v for k, v in os.environ.items() if k not in drop},
        "DJANGO_SETTINGS_MODULE": "tests.cluster.settings",
        "DATABASE_URL": DATABASE_URL,
        "REDIS_URL": REDIS_URL,
        "SECRET_KEY": "cluster-test-only-" + os.urandom(16).hex(),
        "WORKFLOWS_WORKER_CLASS": "rq.worker.Worker",  # forking, as in production
        "WORKFLOWS_LEASE_SECONDS": str(args.lease),
        "WORKFLOWS_REQUEUE_AFTER_SECONDS": "2",
        "WORKFLOWS_LOG_LEVEL": "INFO",
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.cluster", description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=30, help="runs per scenario (scenario 3: a third of it)")
    parser.add_argument("--lease", type=float, default=5.0, help="WORKFLOWS LEASE_SECONDS (default 5)")
    parser.add_argument("--timeout", type=float, default=240.0, help="seconds to wait for each condition")
    parser.add_argument("--keep", action="store_true", help="keep the logs directory even when it passes")
    args = parser.parse_args(argv)

    if os.geteuid() != 0:
        print("cluster: needs root (ip netns)", file=sys.stderr)
        return 2
    stale = netns.cleanup_stale()
    if stale:
        print(f"cluster: deleted stale namespaces {stale}", flush=True)
    net = netns.Network()
    workdir = Path(tempfile.mkdtemp(prefix="cluster-"))
    workdir.chmod(0o755)  # the postgres user keeps its data directories under it
    code = 1
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        try:
            net.up()
        except (subprocess.CalledProcessError, OSError) as exc:
            detail = getattr(exc, "stderr", "") or str(exc)
            print(f"cluster: cannot make network namespaces: {detail}", file=sys.stderr)
            return 2
        inner = [sys.executable, "-m", "tests.cluster.scenarios", "--tag", net.tag, "--workdir", str(workdir)]
        inner += ["--runs", str(args.runs), "--timeout", str(args.timeout)]
        code = subprocess.run([*net.exec(netns.CONTROL), *inner], cwd=BASE_DIR, env=environment(args)).returncode
    except KeyboardInterrupt:
        code = 130
    finally:
        net.down()
        if code == 0 and not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
        else:
            print(f"cluster: logs kept in {workdir}", flush=True)
    return code


if __name__ == "__main__":
    sys.exit(main())
