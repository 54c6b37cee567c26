"""What the benchmark installs for itself, never as project dependencies.

- matplotlib (the chart) and pyinstrument (the profile) go into the running interpreter's environment;
- the peers (Celery, DBOS) go into a virtualenv of their own, ``var/bench/peers-venv``: Celery pins
  python-dateutil to an older version than the project's, and a benchmark must not change what it measures.

Every install is printed. A failed install is not fatal: what needed it is reported as n/a with the reason.
"""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import venv
from pathlib import Path

from .services import BASE_DIR

PEERS_VENV = BASE_DIR / "var" / "bench" / "peers-venv"
PEER_PACKAGES = ["celery[redis]>=5.4,<6", "dbos>=2.0", "psycopg[binary]>=3.2"]


def _pip(python: str, packages: list[str]) -> str | None:
    """pip install ``packages`` with ``python``; None on success, else the reason."""
    print(f"bench: installing {' '.join(packages)} into {Path(python).parents[1]}", flush=True)
    proc = subprocess.run(
        [python, "-m", "pip", "install", "--disable-pip-version-check", "-q", *packages],
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        lines = [line for line in (proc.stderr or proc.stdout).splitlines() if line.strip()]
        return f"pip install {' '.join(packages)} failed: {lines[-1] if lines else proc.returncode}"
    return None


def ensure_local(modules: dict[str, str]) -> dict[str, str]:
    """Install each missing module's package (``{module: package}``) here; return ``{module: reason}`` of failures."""
    missing = {m: p for m, p in modules.items() if importlib.util.find_spec(m) is None}
    if not missing:
        return {}
    reason = _pip(sys.executable, sorted(set(missing.values())))
    importlib.invalidate_caches()
    return {m: reason or "not importable after install" for m in missing if importlib.util.find_spec(m) is None}


def peers_python() -> tuple[str | None, str | None]:
    """(python of the peers' virtualenv, None) once Celery and DBOS import there; else (None, the reason)."""
    python = PEERS_VENV / "bin" / "python"
    check = [str(python), "-c", "import celery, dbos, redis, kombu.transport.redis"]
    if python.exists() and subprocess.run(check, capture_output=True).returncode == 0:
        return str(python), None
    if not python.exists():
        print(f"bench: creating the peers' virtualenv {PEERS_VENV}", flush=True)
        try:
            venv.create(PEERS_VENV, with_pip=True, clear=True)
        except Exception as exc:  # no ensurepip on this Python, a read-only disk...
            return None, f"could not create {PEERS_VENV}: {exc}"
    reason = _pip(str(python), PEER_PACKAGES)
    if reason:
        return None, reason
    if subprocess.run(check, capture_output=True).returncode:
        return None, "celery or dbos does not import after install"
    return str(python), None
