"""``--follow``: a run's journal over the live websocket (``Authorization: Bearer`` on the handshake), shown as a
table of steps (status, attempt, a foreach's items done, progress) and the newest log lines, until the run
succeeds, fails, is canceled or waits for a person (suspended). Reconnects resubscribe from the last ``seq``."""

from __future__ import annotations

import json
import sys
import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.table import Table
from rich.text import Text
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.sync.client import connect

from .client import Client, CliError

ENDS = ("succeeded", "failed", "canceled", "suspended")  # following stops at these run statuses
COLOURS = {
    "succeeded": "green", "failed": "red", "canceled": "magenta", "running": "cyan", "suspended": "yellow",
    "waiting": "yellow", "queued": "blue", "pending": "dim", "skipped": "dim", "retrying": "yellow",
}  # fmt: skip
ACK_EVERY = 32
LOG_LINES = 8


@dataclass
class RunView:
    """What the journal said so far: the run's status and, per step path, its latest state."""

    run_id: int
    status: str = "pending"
    seq: int = 0
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    logs: list[str] = field(default_factory=list)
    horizon: int = 2**62  # the run's last seq when subscribed: a "suspended" before it is history, not the end

    @property
    def done(self) -> bool:
        return self.status in ENDS and self.seq >= self.horizon

    def apply(self, event: dict[str, Any]) -> None:
        self.seq = max(self.seq, event.get("seq", 0))
        kind, step, data = event.get("kind", ""), event.get("step") or "", event.get("data") or {}
        if kind.startswith("run_") and kind != "run_created":
            self.status = kind[4:]
        elif kind == "step_log":
            self.logs = [*self.logs[-(LOG_LINES - 1) :], f"{step}: {data.get('message', '')}"]
        elif kind == "step_progress":
            self.steps.setdefault(step, {"status": "running"})["progress"] = data.get("fraction")
        elif kind.startswith("step_") and step:
            row = self.steps.setdefault(step, {})
            row["status"] = kind[5:]
            if "attempt" in data:
                row["attempt"] = data["attempt"]
            if kind == "step_failed" and isinstance(data.get("error"), dict):
                row["error"] = f"{data['error'].get('type', '')}: {data['error'].get('message', '')}"

    def render(self) -> Group:
        table = Table(title=f"run {self.run_id}: {self.status}", title_style=COLOURS.get(self.status, ""))
        for column in ("step", "status", "attempt", "progress"):
            table.add_column(column)
        foreach: dict[str, list[str]] = {}
        for path, row in self.steps.items():  # a foreach's items: one line, items done / seen
            if "[" in path:
                foreach.setdefault(path.split("[", 1)[0], []).append(row.get("status", ""))
        for path, row in self.steps.items():
            if "[" in path:
                name = path.split("[", 1)[0]
                if name in foreach:  # at its first item's place
                    statuses = foreach.pop(name)
                    done = sum(s == "succeeded" for s in statuses)
                    status = "failed" if "failed" in statuses else "succeeded" if done == len(statuses) else "running"
                    table.add_row(f"{name}[*]", Text(status, COLOURS[status]), "", f"{done}/{len(statuses)} items")
                continue
            status = row.get("status", "")
            progress = f"{row['progress'] * 100:.0f}%" if isinstance(row.get("progress"), int | float) else ""
            table.add_row(path, Text(status, COLOURS.get(status, "")), str(row.get("attempt", "")), progress)
            if row.get("error"):
                table.add_row("", Text(row["error"][:200], "red"), "", "")
        return Group(table, *(Text(line, "dim") for line in self.logs))


def follow(client: Client, run_id: int, *, as_json: bool = False, timeout: float | None = None) -> str:
    """Stream the run until it ends or is suspended; its status then. ``as_json``: one JSON event per line."""
    view = RunView(run_id)
    console = Console(stderr=False)
    deadline = None if timeout is None else time.monotonic() + timeout
    url = client.live_url()
    headers = {"Authorization": f"Bearer {client.config.token}"}
    live = None if as_json else Live(view.render(), console=console, refresh_per_second=8, transient=False)
    if live:
        live.start()
    try:
        attempts = 0
        while not view.done:
            try:
                with connect(url, additional_headers=headers, open_timeout=30, max_size=2**22) as ws:
                    attempts = 0
                    _stream(ws, view, live, as_json, deadline)
            except InvalidStatus as exc:
                raise CliError(f"The live socket refused the token ({exc.response.status_code})") from None
            except (ConnectionClosed, InvalidHandshake, OSError, TimeoutError) as exc:
                attempts += 1
                if attempts > 5 or (deadline and time.monotonic() > deadline):
                    raise CliError(f"Lost the live socket: {exc}") from None
                time.sleep(min(2**attempts / 4, 5))
    finally:
        if live:
            live.update(view.render())
            live.stop()
    return view.status


def _stream(ws: Any, view: RunView, live: Live | None, as_json: bool, deadline: float | None) -> None:
    ws.send(json.dumps({"op": "subscribe", "topic": f"run:{view.run_id}", "since": view.seq, "id": "follow"}))
    received = 0
    while not view.done:
        wait = 5.0 if deadline is None else max(0.1, min(5.0, deadline - time.monotonic()))
        if deadline and time.monotonic() > deadline:
            raise CliError(f"Run {view.run_id} still {view.status} at the --timeout")
        try:
            frame = json.loads(ws.recv(timeout=wait))
        except TimeoutError:
            continue
        received += 1
        if received % ACK_EVERY == 0:
            ws.send(json.dumps({"op": "ack", "n": received}))
        op = frame.get("op")
        if op == "subscribed":
            view.horizon = frame.get("last_seq") or 0
        elif op == "event" and frame.get("seq", 0) > view.seq:
            view.apply(frame)
            if as_json:
                print(json.dumps({k: frame.get(k) for k in ("seq", "kind", "step", "data", "at")}), flush=True)
            elif live:
                live.update(view.render())
        elif op == "resync":
            ws.send(json.dumps({"op": "subscribe", "topic": f"run:{view.run_id}", "since": view.seq}))
        elif op == "error":
            if frame.get("code") == "session_ended":
                raise CliError("The token was revoked or expired")
            if frame.get("id") == "follow" or frame.get("code") == "not_found":
                raise CliError(f"Cannot follow run {view.run_id}: {frame.get('message')}")
            print(f"live: {frame.get('code')}: {frame.get('message')}", file=sys.stderr)
