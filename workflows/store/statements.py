"""The hot path's statements, their SQL built once per database instead of at every call.

Django compiles a queryset into SQL at every execution: 0.2-1 ms of Python per statement, and a transition's
statements all run inside the transaction that holds its run's lock, which on SQLite is the database's only
write lock: every other worker waits for it. Measured on a 5-step no-op chain, compiling was half of the time
the lock was held. These helpers build each statement's SQL once (with Django's own compiler and field
conversions, so the rows read and written are exactly what the ORM would read and write) and reuse it.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from django.db import connections, router
from django.utils import timezone

from .models import Pool, Run, RunEvent, StepRun
from .models import Workflow as WorkflowRow

_sql: dict[tuple, str] = {}  # (database alias, statement, shape) -> SQL
_workflow_names: dict[int, str] = {}  # a workflow row's name never changes


def _cached(key: tuple, build) -> str:
    if key not in _sql:
        _sql[key] = build()
    return _sql[key]


def _execute(alias: str, sql: str, params: Sequence[Any]) -> int:
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


def _fetch_one(alias: str, sql: str, params: Sequence[Any]) -> tuple | None:
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchone()


def _columns(model, qn) -> str:
    """Every column of ``model``, quoted, in field order (what ``_instance`` reads back)."""
    return ", ".join(qn(f.column) for f in model._meta.concrete_fields)


_locks: dict[str, tuple] = {}  # database alias -> (SQL, compiler, converters, field names) of lock_run


def lock_run(run_id: int) -> Run:
    """The run row, locked for the rest of the transaction (``SELECT ... FOR UPDATE`` where the database has it),
    with its workflow's name (the workflow's other fields load on access)."""
    alias = router.db_for_write(Run)
    if alias not in _locks:
        names = [f.attname for f in Run._meta.concrete_fields]
        query = Run.objects.using(alias).select_for_update().filter(pk=0).values_list(*names).query
        compiler = query.get_compiler(alias)
        sql, params = compiler.as_sql()
        assert list(params) == [0], params
        _locks[alias] = (sql, compiler, compiler.get_converters([col for col, _, _ in compiler.select]), names)
    sql, compiler, converters, names = _locks[alias]
    with connections[alias].cursor() as cursor:
        cursor.execute(sql, [run_id])
        row = cursor.fetchone()
    if row is None:
        raise Run.DoesNotExist(f"Run {run_id} does not exist")
    if converters:  # the ORM's own conversions (JSON text, SQLite's datetimes), as a queryset would apply them
        row = next(compiler.apply_converters([row], converters))
    return attach_workflow(Run.from_db(alias, names, row))


_readers: dict[tuple, tuple] = {}  # (alias, model) -> (compiler, converters, field names) for rows read back


def _reader(model, alias: str) -> tuple:
    """How to turn a row of all ``model``'s columns into an instance, as a queryset would (its converters)."""
    key = (alias, model.__name__)
    if key not in _readers:
        names = [f.attname for f in model._meta.concrete_fields]
        compiler = model.objects.using(alias).filter(pk=0).values_list(*names).query.get_compiler(alias)
        compiler.as_sql()  # sets up compiler.select
        _readers[key] = (compiler, compiler.get_converters([col for col, _, _ in compiler.select]), names)
    return _readers[key]


def _instance(model, alias: str, row: Sequence[Any]):
    compiler, converters, names = _reader(model, alias)
    if converters:
        row = next(compiler.apply_converters([row], converters))
    return model.from_db(alias, names, row)


def can_return(alias: str | None = None) -> bool:
    """Does the database answer ``UPDATE ... RETURNING`` (PostgreSQL; SQLite from 3.35)?"""
    return connections[alias or router.db_for_write(Run)].features.can_return_columns_from_insert


def start_step_of(step_run_id: int, status: str, pending: str, running: str) -> tuple[Run, bool] | None:
    """The run side of a claim, in one ``UPDATE`` that locks the run row for the rest of the transaction as
    ``lock_run`` would (run, then step: the usual lock order): if step run ``step_run_id`` is ``status`` and its
    run ``pending`` or ``running``, the run becomes ``running`` (started now if it was pending, which a run is
    exactly while it has not started) and takes the journal seqs of the claim's events: one, or two when it
    starts. No other column is rewritten. (the run as it is now, whether it started now); None (nothing changed)
    otherwise."""
    alias = router.db_for_write(Run)
    connection = connections[alias]
    qn = connection.ops.quote_name
    run_t, step_t = qn(Run._meta.db_table), qn(StepRun._meta.db_table)

    def build() -> str:
        columns = _columns(Run, qn)
        started, seq = qn("started_at"), qn("last_seq")
        return (
            f"UPDATE {run_t} SET {seq} = {seq} + CASE WHEN {started} IS NULL THEN 2 ELSE 1 END, "
            f"{started} = COALESCE({started}, %s), {qn('status')} = %s, {qn('updated_at')} = %s "
            f"WHERE {qn('id')} = (SELECT {qn('run_id')} FROM {step_t} WHERE {qn('id')} = %s AND {qn('status')} = %s) "
            f"AND {qn('status')} IN (%s, %s) RETURNING {columns}"
        )

    sql = _cached((alias, "start_step_of"), build)
    now = timezone.now()
    at = Run._meta.get_field("updated_at").get_db_prep_save(now, connection)
    with connection.cursor() as cursor:
        cursor.execute(sql, [at, running, at, step_run_id, status, pending, running])
        row = cursor.fetchone()
    if row is None:
        return None
    run = attach_workflow(_instance(Run, alias, row))
    return run, run.started_at == now


def set_step_returning(step_run_id: int, expect: str, fields: dict[str, Any]) -> StepRun | None:
    """Compare-and-set step run ``step_run_id`` from status ``expect`` to ``fields``, in one ``UPDATE`` that
    returns the whole row; None (nothing changed) if its status was not ``expect``."""
    alias = router.db_for_write(StepRun)
    connection = connections[alias]
    meta = StepRun._meta
    names = tuple(fields)

    def build() -> str:
        qn = connection.ops.quote_name
        sets = ", ".join(f"{qn(meta.get_field(f).column)} = %s" for f in names)
        columns = _columns(StepRun, qn)
        return (
            f"UPDATE {qn(meta.db_table)} SET {sets} WHERE {qn(meta.pk.column)} = %s AND {qn('status')} = %s "
            f"RETURNING {columns}"
        )

    sql = _cached((alias, "set_step_returning", names), build)
    params = [meta.get_field(f).get_db_prep_save(v, connection) for f, v in fields.items()]
    with connection.cursor() as cursor:
        cursor.execute(sql, [*params, step_run_id, expect])
        row = cursor.fetchone()
    return None if row is None else _instance(StepRun, alias, row)


def attach_workflow(run: Run, name: str | None = None) -> Run:
    """Give ``run`` its workflow row with the name only (the row's other fields load on access)."""
    alias = run._state.db or router.db_for_write(Run)
    if name is None:
        name = _workflow_names.get(run.workflow_id)
    if name is None:
        name = WorkflowRow.objects.using(alias).get(pk=run.workflow_id).name
    _workflow_names[run.workflow_id] = name
    Run._meta.get_field("workflow").set_cached_value(
        run, WorkflowRow.from_db(alias, ["id", "name"], [run.workflow_id, name])
    )
    return run


def workflow_name(run: Run) -> str:
    """The name of ``run``'s workflow, from the row attached by ``lock_run`` (or read once per workflow)."""
    if Run.workflow.is_cached(run):
        return run.workflow.name
    return attach_workflow(run).workflow.name


def update_fields(obj: Run | StepRun, fields: Sequence[str], where: dict[str, Any] | None = None) -> int:
    """``UPDATE`` ``fields`` of ``obj``'s row from its attributes (``auto_now`` fields are set, as by ``save``),
    only where the row's columns also equal ``where``'s values (a value that is a tuple means one of them).
    Returns the number of rows changed."""
    model, alias = type(obj), router.db_for_write(type(obj))
    connection = connections[alias]
    meta = model._meta
    where = where or {}
    shape = tuple(fields), tuple((k, len(v) if isinstance(v, tuple) else None) for k, v in where.items())

    def build() -> str:
        qn = connection.ops.quote_name
        sets = ", ".join(f"{qn(meta.get_field(f).column)} = %s" for f in fields)
        conditions = [f"{qn(meta.pk.column)} = %s"]
        for name, count in shape[1]:
            column = qn(meta.get_field(name).column)
            conditions.append(f"{column} IN ({', '.join(['%s'] * count)})" if count else f"{column} = %s")
        return f"UPDATE {qn(meta.db_table)} SET {sets} WHERE {' AND '.join(conditions)}"

    sql = _cached((alias, model.__name__, "update", shape), build)
    params = [_prep(meta.get_field(f), obj, connection) for f in fields] + [obj.pk]
    for name, value in where.items():
        field = meta.get_field(name)
        for v in value if isinstance(value, tuple) else (value,):
            params.append(field.get_db_prep_value(v, connection))
    return _execute(alias, sql, params)


def insert(obj: Run | StepRun) -> None:
    """``INSERT`` a new row for ``obj`` (every field from its attributes, as ``save`` would) and set its id."""
    model, alias = type(obj), router.db_for_write(type(obj))
    connection = connections[alias]
    meta = model._meta
    fields = [f for f in meta.concrete_fields if not f.primary_key]
    returning = connection.features.can_return_columns_from_insert

    def build() -> str:
        qn = connection.ops.quote_name
        columns = ", ".join(qn(f.column) for f in fields)
        sql = f"INSERT INTO {qn(meta.db_table)} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"
        return f"{sql} RETURNING {qn(meta.pk.column)}" if returning else sql

    sql = _cached((alias, model.__name__, "insert"), build)
    params = [f.get_db_prep_save(f.pre_save(obj, add=True), connection) for f in fields]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        pk = cursor.fetchone()[0] if returning else connection.ops.last_insert_id(cursor, meta.db_table, meta.pk.column)
    obj.pk = pk
    obj._state.adding, obj._state.db = False, alias


def _prep(field, obj, connection) -> Any:
    value = field.pre_save(obj, add=False)  # auto_now fields take the time now, like Model.save
    return field.get_db_prep_save(value, connection)


_EVENT_FIELDS = ("run", "seq", "kind", "step", "data", "at")


def insert_events(events: Sequence[RunEvent]) -> None:
    """``INSERT`` journal events, as few statements as the database's parameter limit allows (their ids are not
    read back: nothing uses them)."""
    if not events:
        return
    alias = router.db_for_write(RunEvent)
    connection = connections[alias]
    fields = [RunEvent._meta.get_field(f) for f in _EVENT_FIELDS]
    batch = max(1, connection.ops.bulk_batch_size(fields, events))
    for start in range(0, len(events), batch):
        chunk = events[start : start + batch]

        def build(rows: int = len(chunk)) -> str:
            qn = connection.ops.quote_name
            row = f"({', '.join(['%s'] * len(fields))})"
            columns = ", ".join(qn(f.column) for f in fields)
            return f"INSERT INTO {qn(RunEvent._meta.db_table)} ({columns}) VALUES {', '.join([row] * rows)}"

        # a transition writes a handful of events: those statements are kept; a big batch is built each time
        sql = _cached((alias, "insert_events", len(chunk)), build) if len(chunk) <= 16 else build()
        params = [field.get_db_prep_save(getattr(e, field.attname), connection) for e in chunk for field in fields]
        _execute(alias, sql, params)


def pool_gate(pool: str, pending: str, priority: int) -> tuple[bool, int | None, bool] | None:
    """The pool's (paused, runtime limit, whether a ``pending`` step of a priority above ``priority`` waits for
    it) in one read; None when the pool has no row yet."""
    alias = router.db_for_read(Pool)
    connection = connections[alias]

    def build() -> str:
        qn = connection.ops.quote_name
        return (
            f"SELECT {qn('paused')}, {qn('limit')}, EXISTS(SELECT 1 FROM {qn(StepRun._meta.db_table)} "
            f"WHERE {qn('pool')} = %s AND {qn('status')} = %s AND {qn('priority')} > %s) "
            f"FROM {qn(Pool._meta.db_table)} WHERE {qn('name')} = %s"
        )

    row = _fetch_one(alias, _cached((alias, "pool_gate"), build), [pool, pending, priority, pool])
    return None if row is None else (bool(row[0]), row[1], bool(row[2]))


def any_due(pool: str, pending: str, now: datetime) -> bool:
    """Does a ``pending`` step of ``pool`` due by ``now`` exist? (one indexed read, no lock)"""
    alias = router.db_for_read(StepRun)
    connection = connections[alias]

    def build() -> str:
        qn = connection.ops.quote_name
        return (
            f"SELECT 1 FROM {qn(StepRun._meta.db_table)} WHERE {qn('pool')} = %s AND {qn('status')} = %s "
            f"AND {qn('due_at')} <= %s LIMIT 1"
        )

    at = StepRun._meta.get_field("due_at").get_db_prep_value(now, connection)
    return _fetch_one(alias, _cached((alias, "any_due"), build), [pool, pending, at]) is not None


def lock_pool(pool: str) -> tuple[bool, int | None, int] | None:
    """The pool row's (paused, runtime limit, max_parallel), locked for the rest of the transaction
    (``SELECT ... FOR UPDATE`` where the database has it; SQLite's transaction already holds the write lock)."""
    alias = router.db_for_write(Pool)
    connection = connections[alias]

    def build() -> str:
        qn = connection.ops.quote_name
        lock = " FOR UPDATE" if connection.features.has_select_for_update else ""
        return (
            f"SELECT {qn('paused')}, {qn('limit')}, {qn('max_parallel')} FROM {qn(Pool._meta.db_table)} "
            f"WHERE {qn('name')} = %s{lock}"
        )

    row = _fetch_one(alias, _cached((alias, "lock_pool"), build), [pool])
    return None if row is None else (bool(row[0]), row[1], row[2])


def count_in(pool: str, statuses: Sequence[str]) -> int:
    """Step runs of ``pool`` in one of ``statuses``."""
    alias = router.db_for_read(StepRun)
    connection = connections[alias]

    def build() -> str:
        qn = connection.ops.quote_name
        return (
            f"SELECT COUNT(*) FROM {qn(StepRun._meta.db_table)} WHERE {qn('pool')} = %s "
            f"AND {qn('status')} IN ({', '.join(['%s'] * len(statuses))})"
        )

    return _fetch_one(alias, _cached((alias, "count_in", len(statuses)), build), [pool, *statuses])[0]


def plain_due(pool: str, pending: str, now: datetime, limit: int) -> list[tuple[int, int, str, int]] | None:
    """Up to ``limit`` (id, run id, path, attempt) of ``pool``'s ``pending`` steps due by ``now``, in run order
    (the fair index), when admission needs nothing more: every pending step has the same priority and none due
    has a concurrency key. None otherwise (the caller orders by priority and counts keys)."""
    alias = router.db_for_read(StepRun)
    connection = connections[alias]
    qn = connection.ops.quote_name
    table, key, due_at = qn(StepRun._meta.db_table), qn("concurrency_key"), qn("due_at")
    where = f"WHERE {qn('pool')} = %s AND {qn('status')} = %s"

    def shape() -> str:
        return (
            f"SELECT MIN({qn('priority')}), MAX({qn('priority')}), "
            f"MAX(CASE WHEN {due_at} <= %s AND {key} <> '' THEN 1 ELSE 0 END) FROM {table} {where}"
        )

    def rows() -> str:
        return (
            f"SELECT {qn('id')}, {qn('run_id')}, {qn('path')}, {qn('attempt')} FROM {table} {where} "
            f"AND {due_at} <= %s ORDER BY {qn('run_id')}, {due_at}, {qn('id')} LIMIT %s"
        )

    at = StepRun._meta.get_field("due_at").get_db_prep_value(now, connection)
    with connection.cursor() as cursor:
        cursor.execute(_cached((alias, "plain_due_shape"), shape), [at, pool, pending])
        low, high, keyed = cursor.fetchone()
        if low != high or keyed:
            return None
        cursor.execute(_cached((alias, "plain_due_rows"), rows), [pool, pending, at, limit])
        return [tuple(row) for row in cursor.fetchall()]
