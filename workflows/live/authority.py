"""Who a websocket's user is now: the consumer's sweep calls ``recheck`` every ``LIVE["SWEEP_SECONDS"]``.

A connection outlives the request that opened it, so a logout, an expired session, a changed password, a
deactivated account or a revoked permission would otherwise go unnoticed for as long as the socket stays open.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from . import reads

if TYPE_CHECKING:
    from .consumer import LiveConsumer

SESSION_ENDED = 4401  # close code: the session ended; reconnecting needs a new login


async def recheck(consumer: LiveConsumer) -> bool:
    """Close the connection (False) if its session ended; else follow the user's current permissions: summary
    topics filter with them from now on, and a run topic no longer visible ends with a ``not_found`` error."""
    user = await reads.current_user(consumer.scope, consumer.user)
    if user is None:
        await consumer._error("session_ended", "your session ended: log in again")
        await consumer.close(code=SESSION_ENDED)
        return False
    consumer.user, consumer.sees_all = user, await reads.sees_all(user)
    runs = [s for s in consumer.subs.values() if s.is_run]
    visible = await reads.visible_ids(user, [s.run_id for s in runs]) if runs else set()
    for sub in runs:
        if sub.run_id not in visible and consumer.subs.get(sub.topic) is sub:
            del consumer.subs[sub.topic]
            consumer._drop_queued(sub)
            await consumer.channel_layer.group_discard(sub.group, consumer.channel_name)
            await consumer._error("not_found", f"no run {sub.run_id} that you may see", topic=sub.topic)
    return True
