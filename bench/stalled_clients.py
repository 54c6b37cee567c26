"""Daphne's memory with websocket clients that subscribe to a large run and stop reading.

    .venv/bin/python bench/stalled_clients.py [--clients 5] [--events 1000] [--event-kb 60] [--live 200]

Starts an embedded Redis (unless REDIS_URL is set), a fresh SQLite database and daphne in a temporary directory;
writes a run whose journal holds ``--events`` events of ``--event-kb`` kB each (through the engine's own path);
then opens ``--clients`` websockets on raw TCP sockets with a small receive buffer, each subscribing to that run
from seq 0 and never reading again (nor acknowledging). While they sit there, ``--live`` more events of the same
size are appended (the live path). Prints daphne's resident memory (VmRSS, and the peak VmHWM) before the clients
connect and after, once it has stopped growing. Not a test.
"""

import argparse
import base64
import json
import os
import socket
import sys
import time
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(BASE_DIR))

from bench.live_site import live_site  # noqa: E402


def memory_mb(pid: int) -> tuple[float, float]:
    """(VmRSS, VmHWM) of ``pid`` in MB."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines() if ":" in line)
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def stalled_client(port: int, cookie: str, run_id: int) -> socket.socket:
    """A websocket that subscribes to ``run:<run_id>`` and then never reads: a 4 kB receive buffer, no acks."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /ws/ HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\nOrigin: http://127.0.0.1:{port}\r\n"
            f"Cookie: sessionid={cookie}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    payload = json.dumps({"op": "subscribe", "topic": f"run:{run_id}", "since": 0}).encode()
    mask = os.urandom(4)
    assert len(payload) < 126
    frame = bytes([0x81, 0x80 | len(payload)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(frame)
    return sock


def settle(pid: int, seconds: float = 4.0, limit: float = 120.0) -> tuple[float, float]:
    """Wait until daphne's RSS has not grown by more than 1 MB for ``seconds``; return (RSS, peak)."""
    deadline = time.monotonic() + limit
    last, since = memory_mb(pid)[0], time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.5)
        now = memory_mb(pid)[0]
        if now > last + 1:
            last, since = now, time.monotonic()
        elif time.monotonic() - since >= seconds:
            break
    return memory_mb(pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--clients", type=int, default=5)
    parser.add_argument("--events", type=int, default=1000, help="events in the run's journal before they connect")
    parser.add_argument("--event-kb", type=int, default=60, help="size of each event's data")
    parser.add_argument("--live", type=int, default=200, help="events appended while the clients are stalled")
    args = parser.parse_args()

    with live_site("stalled-clients") as site:
        measure(args, site)


def measure(args: argparse.Namespace, site) -> None:
    from tests.integration.live_fixtures import Stack, free_port
    from workflows.engine import appends

    run = site.run
    blob = "x" * (args.event_kb * 1000)
    for i in range(args.events):
        appends.record(run.pk, "bench", "", i=i, blob=blob)

    stack = Stack(env=dict(os.environ), log_dir=site.work)
    port = free_port()
    sockets = []
    try:
        daphne = stack.daphne(port)
        pid = daphne.popen.pid
        time.sleep(2)
        before = memory_mb(pid)
        sockets = [stalled_client(port, site.cookie, run.pk) for _ in range(args.clients)]
        for i in range(args.live):
            appends.record(run.pk, "bench", "", i=args.events + i, blob=blob)
        after = settle(pid)
    finally:
        for s in sockets:
            s.close()
        stack.stop_all(show_logs=False)
    journal_mb = (args.events + args.live) * args.event_kb / 1000
    print(
        f"{args.clients} stalled clients on one run of {args.events}+{args.live} events x {args.event_kb} kB "
        f"({journal_mb:.0f} MB of journal); daphne RSS before: {before[0]:.0f} MB; after: {after[0]:.0f} MB "
        f"(+{after[0] - before[0]:.0f} MB; peak {after[1]:.0f} MB)"
    )


if __name__ == "__main__":
    main()
