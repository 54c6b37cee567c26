"""The statements between two foreach items, their SQL built once per database.

What follows an item's success used to aggregate every row of its foreach block (completed, total, still open),
then look for the next unreleased item with a sort, each statement compiled by Django at every call: at 400
items about 2 ms of the 4.5 ms between one item's end and the next one's start, growing with the list. Here:

- ``progress``: the block's (completed, total) from its last ``foreach_progress`` event, one index step back in
  the run's journal, instead of counting the block's rows. The journal is exact for this: every item success
  goes through ``advance.after_success``, which journals the block's progress under the run's lock.
- ``release_next``: the next unreleased item (pending, no due time: items are created in input order, so the
  lowest id is the lowest index) is released, or given the finishing step's slot, by one ``UPDATE`` that
  returns its row and the block's last progress: no sort, no second statement.
"""

from __future__ import annotations

import json
from typing import Any

from django.db import connections, router

from .models import RunEvent, StepRun, StepStatus
from .statements import _cached, _columns, _fetch_one, _instance


def _last_progress(qn) -> str:
    """SQL of the data of a block's last ``foreach_progress`` event; params: run id, kind, block id."""
    return (
        f"SELECT {qn('data')} FROM {qn(RunEvent._meta.db_table)} WHERE {qn('run_id')} = %s AND {qn('kind')} = %s "
        f"AND {qn('step')} = %s ORDER BY {qn('seq')} DESC LIMIT 1"
    )


def _counts(data: Any) -> tuple[int, int] | None:
    if data is None:
        return None
    data = json.loads(data) if isinstance(data, str | bytes) else data
    return int(data["completed"]), int(data["total"])


def progress(run_id: int, block_id: str) -> tuple[int, int] | None:
    """(completed, total) of foreach ``block_id`` as its last journaled ``foreach_progress`` says; None if none."""
    alias = router.db_for_read(RunEvent)
    connection = connections[alias]
    sql = _cached((alias, "foreach_progress"), lambda: _last_progress(connection.ops.quote_name))
    row = _fetch_one(alias, sql, [run_id, "foreach_progress", block_id])
    return None if row is None else _counts(row[0])


def release_next(
    run_id: int, block: int, block_id: str, fields: dict[str, Any]
) -> tuple[StepRun, tuple[int, int] | None] | None:
    """Set ``fields`` on the next unreleased item (``kind`` "step") of foreach ``block`` (``block_id``); its row
    and the block's (completed, total) before this transaction (``progress``). None when every item is released.
    Call under the run's lock (the only writer of unreleased items)."""
    alias = router.db_for_write(StepRun)
    connection = connections[alias]
    meta = StepRun._meta
    names = tuple(fields)

    def build() -> str:
        qn = connection.ops.quote_name
        table = qn(meta.db_table)
        sets = ", ".join(f"{qn(meta.get_field(f).column)} = %s" for f in names)
        columns = _columns(StepRun, qn)
        unreleased = f"{qn('status')} = %s AND {qn('due_at')} IS NULL"
        first = (
            f"SELECT {qn('id')} FROM {table} WHERE {qn('run_id')} = %s AND {qn('block')} = %s AND {unreleased} "
            f"AND {qn('kind')} = %s ORDER BY {qn('id')} LIMIT 1"
        )
        return (
            f"UPDATE {table} SET {sets} WHERE {qn('id')} = ({first}) AND {unreleased} "
            f"RETURNING {columns}, ({_last_progress(qn)})"
        )

    sql = _cached((alias, "release_next", names), build)
    params = [meta.get_field(f).get_db_prep_save(v, connection) for f, v in fields.items()]
    pending = StepStatus.PENDING
    row = _fetch_one(
        alias, sql, [*params, run_id, block, pending, "step", pending, run_id, "foreach_progress", block_id]
    )
    return None if row is None else (_instance(StepRun, alias, row[:-1]), _counts(row[-1]))
