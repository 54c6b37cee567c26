"""What a live connection reads to catch up (a mixin of ``consumer.LiveConsumer``, which holds the queue, the
subscriptions and the settings it uses): the journal replayed as fast as the client takes it, the runs lists'
snapshots, and the periodic sweep that finds what Redis may have lost, re-checks the session or token, closes a
connection that does not drain and renews its slot in the per-user quota."""

from __future__ import annotations

import asyncio
import logging

from . import authority, quota, reads
from .protocol import Subscription

log = logging.getLogger(__name__)

NOT_DRAINING = 4408  # close code: the client acknowledged nothing for DRAIN_SECONDS while frames waited


class CatchUp:
    # --- journal replay and snapshots --------------------------------------------------------------------------

    def _room(self) -> tuple[int, int]:
        """Frames and bytes a replay may queue now: half the queue is kept for live frames."""
        return self.buffer_frames // 2 - len(self.queue), self.buffer_bytes // 2 - self.queued_bytes

    async def _replayer(self) -> None:
        """Read the journal for subscriptions behind it, a batch at a time, as the queue empties."""
        while True:
            await self.wake_replayer.wait()
            self.wake_replayer.clear()
            while True:
                behind = [s for s in self.subs.values() if s.replaying and not s.stalled]
                if not behind or min(self._room()) <= 0:
                    break
                for sub in behind:
                    frames, size = self._room()
                    if frames <= 0 or size <= 0:
                        break
                    if sub.is_run:
                        await self._replay_run(sub, min(frames, self.replay_batch), size)
                    else:
                        await self._replay_summaries(sub)

    async def _replay_run(self, sub: Subscription, limit: int, max_bytes: int) -> None:
        events, limit = await reads.events_after(sub.run_id, sub.last, limit, max_bytes)
        if not self._current(sub):
            return
        for payload in events:
            if payload["seq"] != sub.last + 1:  # cannot happen (gapless seqs); never send a gap, never spin
                log.error("live updates: run %s journal jumps from %s to %s", sub.run_id, sub.last, payload["seq"])
                sub.replaying, sub.want = False, sub.last
                return
            if not await self._enqueue(sub, payload["seq"], {"op": "event", "topic": sub.topic, **payload}):
                return
            sub.last = payload["seq"]
        if len(events) < limit:
            if sub.last < sub.want and not events:
                log.warning("live updates: run %s has no events after %s (want %s)", sub.run_id, sub.last, sub.want)
                sub.want = sub.last
            if sub.last >= sub.want:
                sub.replaying = False  # caught up: live events from here on (a live seq past last+1 re-enters)

    async def _replay_summaries(self, sub: Subscription) -> None:
        runs = await reads.snapshot(self.user, sub.workflow, self.snapshot_runs)
        if not self._current(sub):
            return
        for s in runs:
            sub.note(s)
        sub.replaying = False
        if not await self._enqueue(sub, 0, {"op": "snapshot", "topic": sub.topic, "runs": runs}):
            return
        early, sub.early = sub.early, {}
        for s in sorted(early.values(), key=lambda s: s["id"]):
            await self._offer_summary(sub, s)

    # --- the sweep: what Redis may have lost -------------------------------------------------------------------

    async def _sweeper(self) -> None:
        while True:
            await asyncio.sleep(self.sweep_seconds)
            await self.sweep()

    async def sweep(self) -> None:
        """Re-join every group (a restarted Redis forgets them) and send what the journal has and we did not."""
        if not await authority.recheck(self):  # the session ended: closed
            return
        if self.in_flight and asyncio.get_running_loop().time() - self.acked_at > self.drain_seconds:
            log.info("live updates: connection %s acknowledged nothing for %ss; closing it", self.channel_name,
                     self.drain_seconds)  # fmt: skip
            await self.close(code=NOT_DRAINING)
            return
        await quota.claim(self.user.pk, self.channel_name, renew=True)
        subs = [s for s in self.subs.values() if not s.stalled]
        for sub in subs:
            await self.channel_layer.group_add(sub.group, self.channel_name)
        runs = [s for s in subs if s.is_run]
        if runs:
            last_seqs = await reads.last_seqs([s.run_id for s in runs])
            for sub in runs:
                if last_seqs.get(sub.run_id, 0) > max(sub.last, sub.want) and self._current(sub):
                    log.info("live updates: %s missed events %s..%s", sub.topic, sub.last + 1, last_seqs[sub.run_id])
                    sub.want = last_seqs[sub.run_id]
                    sub.replaying = True
                    self.wake_replayer.set()
        for sub in subs:
            if sub.is_run or sub.replaying:
                continue
            active = [run_id for run_id, (_, terminal) in sub.seen.items() if not terminal][-500:]
            for s in await reads.changed(self.user, sub.workflow, active, sub.max_id, self.snapshot_runs * 4):
                if self._current(sub):
                    await self._offer_summary(sub, s)
