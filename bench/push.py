"""Push latency: runs ``bench/push_latency.py`` (its own daphne, SQLite database and websocket client, on our
Redis) once per repetition and reads its table: commit -> the client has the frame, p50 and p99 in ms.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys

from .services import BASE_DIR

SCRIPT = BASE_DIR / "bench" / "push_latency.py"
ROW = "commit → client has the frame"


def run(
    events: int, rate: float, warmup: int, reps: int, env: dict[str, str], held: bool = False, timeout: float = 300
) -> dict:
    """With ``held``, the events are committed the way a worker's job commits transitions (``--held``)."""
    if not SCRIPT.exists():
        return {"error": f"{SCRIPT.relative_to(BASE_DIR)} is missing"}
    p50, p99, notes = [], [], []
    for rep in range(reps):
        cmd = [sys.executable, str(SCRIPT), "--events", str(events), "--rate", str(rate), "--warmup", str(warmup)]
        cmd += ["--held"] if held else []
        try:
            proc = subprocess.run(cmd, cwd=BASE_DIR, env={**os.environ, **env}, capture_output=True, text=True,
                                  timeout=timeout)  # fmt: skip
        except subprocess.TimeoutExpired:
            return {"error": f"push_latency.py did not finish within {timeout:g}s"}
        row = next((line for line in proc.stdout.splitlines() if line.startswith(f"| {ROW} |")), None)
        if proc.returncode or row is None:
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
            return {"error": f"push_latency.py failed ({proc.returncode}): {' / '.join(tail)}"}
        cells = [float(c) for c in re.findall(r"\|\s*([0-9.]+)\s*(?=\|)", row)]
        p50.append(cells[0])  # columns: p50 p90 p99 max mean
        p99.append(cells[2])
        notes = [line for line in proc.stdout.splitlines() if "events measured" in line]
        kind = " (held)" if held else ""
        print(f"    push{kind} rep {rep + 1}: p50 {p50[-1]:.1f} ms, p99 {p99[-1]:.1f} ms", file=sys.stderr, flush=True)
    return {"p50": p50, "p99": p99, "events": events, "rate": rate, "note": notes[0].strip() if notes else ""}
