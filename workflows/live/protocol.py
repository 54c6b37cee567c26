"""The websocket protocol's data: topics, queued frames, subscriptions and protocol errors."""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

from ..store.models import RUN_TERMINAL

# \A...\Z: the whole string (``$`` would also match before a trailing newline: "runs\n")
TOPIC_RE = re.compile(r"\A(?:run:(?P<run>[1-9][0-9]{0,17})|workflow:(?P<workflow>[A-Za-z0-9_.\-]{1,100})|runs)\Z")
SEEN_LIMIT = 2000  # runs a summary subscription remembers (to drop stale summaries and to sweep active runs)


@dataclass(eq=False)
class Frame:
    """A queued data frame. A run's newer summary replaces its unsent one in place: a slow client gets the
    latest state of each run rather than every intermediate one."""

    sub: Subscription
    seq: int  # run topics: the event's seq (0 for summaries)
    text: str
    run_id: int = 0  # summary frames: the run they describe


class ProtocolError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(eq=False)
class Subscription:
    topic: str
    group: str
    run_id: int | None = None  # run topics
    workflow: str | None = None  # workflow topics
    last: int = 0  # run topics: highest seq queued for the client (contiguous from ``since``)
    sent: int = 0  # run topics: highest seq written to the socket
    want: int = 0  # run topics: highest seq known to exist (``last < want``: read the journal)
    replaying: bool = True  # reading the journal (or taking the snapshot); live messages only raise ``want``
    stalled: bool = False  # overflowed and told to resync: ignores everything until subscribed again
    seen: OrderedDict = field(default_factory=OrderedDict)  # summary topics: run id -> (seq, terminal)
    early: dict = field(default_factory=dict)  # summary topics: live summaries received before the snapshot
    unsent: dict = field(default_factory=dict)  # summary topics: run id -> its queued, not yet sent, Frame
    max_id: int = 0  # summary topics: the newest run id sent

    @property
    def is_run(self) -> bool:
        return self.run_id is not None

    def note(self, s: dict[str, Any]) -> None:
        self.seen[s["id"]] = (s["seq"], s["status"] in RUN_TERMINAL)
        self.seen.move_to_end(s["id"])
        while len(self.seen) > SEEN_LIMIT:
            self.seen.popitem(last=False)
        self.max_id = max(self.max_id, s["id"])

    def is_new(self, s: dict[str, Any]) -> bool:
        prev = self.seen.get(s["id"])
        return prev is None or s["seq"] > prev[0]
