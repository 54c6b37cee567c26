"""Django's SQLite backend, with writers queued on a file lock instead of SQLite's busy handler.

SQLite lets one writer in at a time. A second one that finds the database locked sleeps and retries, backing off
up to 100 ms a try (``sqlite3_busy_timeout``), so under a few busy workers a transition waits tens of
milliseconds for a lock that was free after one. Here every transaction first takes an exclusive ``flock`` on a
file beside the database and releases it at commit or rollback: the kernel wakes the next writer the moment the
lock is free. The busy timeout stays as the fallback for writes outside transactions. A process that dies
holding the lock releases it with its file descriptor.

Use it with ``ENGINE: "workflows.sqlite"`` (the project does, for SQLite URLs).
"""

from __future__ import annotations

import fcntl
import os

from django.db.backends.sqlite3 import base


class DatabaseWrapper(base.DatabaseWrapper):
    _writer_fd: int | None = None

    def get_new_connection(self, conn_params):
        conn = super().get_new_connection(conn_params)
        name = str(self.settings_dict["NAME"])
        if not self.is_in_memory_db():
            self._writer_fd = os.open(f"{name}-writers.lock", os.O_RDWR | os.O_CREAT, 0o600)
        return conn

    def _start_transaction_under_autocommit(self):
        if self._writer_fd is not None:
            fcntl.flock(self._writer_fd, fcntl.LOCK_EX)
        try:
            super()._start_transaction_under_autocommit()
        except BaseException:
            self._release_writers()
            raise

    def _release_writers(self) -> None:
        if self._writer_fd is not None:
            fcntl.flock(self._writer_fd, fcntl.LOCK_UN)

    def _commit(self):
        try:
            return super()._commit()
        finally:
            self._release_writers()

    def _rollback(self):
        try:
            return super()._rollback()
        finally:
            self._release_writers()

    def _close(self):
        try:
            return super()._close()
        finally:
            if self._writer_fd is not None:
                os.close(self._writer_fd)
                self._writer_fd = None
