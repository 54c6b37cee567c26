"""Bytes a run stores: the JSON columns of its ``Run``, ``StepRun`` and ``RunEvent`` rows, as JSON text.

The logical size (the JSON text's length), not the on-disk one: PostgreSQL compresses big ``jsonb`` values, so
``pg_column_size`` would hide copies of a compressible value. Used by the ``scale`` scenario's amplification
figure and by the tests that hold it (``tests/unit/test_storage.py``).
"""

from __future__ import annotations

import base64
import os

from django.db import connection, models


def value_of_size(n: int) -> dict:
    """A JSON object of about ``n`` bytes that does not compress (random text)."""
    return {"blob": base64.b64encode(os.urandom(n * 3 // 4)).decode()[: n - 12]}


def json_bytes(run_id: int) -> int:
    """Bytes of JSON text in the JSON columns of run ``run_id``'s rows (Run, StepRun, RunEvent)."""
    from workflows.models import Run, RunEvent, StepRun

    total = 0
    for model, column in ((Run, "id"), (StepRun, "run_id"), (RunEvent, "run_id")):
        cols = [connection.ops.quote_name(f.column) for f in model._meta.concrete_fields
                if isinstance(f, models.JSONField)]  # fmt: skip
        if connection.vendor == "postgresql":
            parts = [f"COALESCE(OCTET_LENGTH(t.{c}::text), 0)" for c in cols]
        else:
            parts = [f"COALESCE(LENGTH(CAST(t.{c} AS BLOB)), 0)" for c in cols]
        table = connection.ops.quote_name(model._meta.db_table)
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT COALESCE(SUM({' + '.join(parts)}), 0) FROM {table} t WHERE t.{column} = %s",
                           [run_id])  # fmt: skip
            total += int(cursor.fetchone()[0])
    return total


def table_bytes() -> int:
    """Bytes on disk of the Run, StepRun and RunEvent tables (PostgreSQL: with TOAST, without indexes; SQLite:
    their pages, from ``dbstat`` when the build has it, else the whole database file)."""
    from workflows.models import Run, RunEvent, StepRun

    tables = [m._meta.db_table for m in (Run, StepRun, RunEvent)]
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT SUM(pg_table_size(t::regclass)) FROM unnest(%s::text[]) t", [tables])
            return int(cursor.fetchone()[0])
        try:
            cursor.execute(f"SELECT SUM(pgsize) FROM dbstat WHERE name IN ({', '.join(['%s'] * len(tables))})",
                           tables)  # fmt: skip
            return int(cursor.fetchone()[0] or 0)
        except Exception:
            cursor.execute("SELECT page_count * page_size FROM pragma_page_count(), pragma_page_size()")
            return int(cursor.fetchone()[0])
