"""The persistent ``--cache``: answers per address in sqlite, each valid until its expiry.

Rows are keyed by (address, mode): a name found by a plain PTR lookup says nothing about
whether it is forward-confirmed, so ``--verify`` runs keep rows of their own. A row with
no name is a negative entry (NXDOMAIN, no PTR, bogus name, failed confirmation). Time is
passed in as ``now`` (epoch seconds) so that expiry can be tested without waiting.

The cache only saves lookups, so it never costs the run: a file another process holds
locked (sqlite "busy") is waited for ``wait`` seconds, then given up for the rest of the
run, with one call of ``on_busy``. Rows are read as text whatever was stored in them (a
number, bytes that are not UTF-8): their names are judged by the host-name rule later.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

from webresolve.errors import CacheError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS answers (
    address TEXT NOT NULL,
    mode TEXT NOT NULL,
    name TEXT,
    expires REAL NOT NULL,
    PRIMARY KEY (address, mode)
) WITHOUT ROWID
"""
_COMMIT_EVERY = 1000
_BUSY = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)


class Cache:
    """An open cache file. Writes are batched; :meth:`close` commits them."""

    __slots__ = ("path", "mode", "wait", "busy", "_db", "_unsaved", "_on_busy")

    def __init__(
        self,
        path: str,
        mode: str = "ptr",
        *,
        wait: float = 1.5,
        on_busy: Callable[[str], None] | None = None,
    ) -> None:
        """Open (creating if needed) the cache at ``path`` for lookups of kind ``mode``.

        :param wait: seconds to wait for a lock another process holds before giving up.
        :param on_busy: called once, with what happened, when the cache is given up.
        :raises CacheError: the file cannot be opened or is not a webresolve cache.
        """
        self.path = path
        self.mode = mode
        self.wait = wait
        self.busy = False
        """True once the cache was given up: every method is then a no-op."""
        self._unsaved = 0
        self._on_busy = on_busy
        try:
            self._db = sqlite3.connect(path, timeout=wait)
        except sqlite3.Error as exc:
            raise CacheError(path, str(exc)) from None
        self._db.text_factory = _text
        if self._run(_SCHEMA, ()) is not None:
            self.commit()

    def load(self, now: float) -> dict[str, str | None]:
        """Every unexpired entry of this mode, in one query: a run consults the cache once
        per distinct address, and one SELECT for all is ten times cheaper than one each."""
        rows = self._run(
            "SELECT address, CAST(name AS TEXT) FROM answers WHERE mode = ? AND expires > ?",
            (self.mode, now),
        )
        return {} if rows is None else dict(rows.fetchall())

    def put(self, address: str, name: str | None, ttl: float, now: float) -> None:
        """Remember ``name`` (None: negative) for ``address`` for ``ttl`` seconds."""
        self._run(
            "INSERT OR REPLACE INTO answers (address, mode, name, expires) VALUES (?, ?, ?, ?)",
            (address, self.mode, name, now + ttl),
        )
        self._unsaved += 1
        if self._unsaved >= _COMMIT_EVERY:
            self.commit()

    def purge(self, now: float) -> int:
        """Delete expired entries (of every mode); how many went."""
        done = self._run("DELETE FROM answers WHERE expires <= ?", (now,))
        return 0 if done is None else done.rowcount

    def commit(self) -> None:
        """Write batched entries to disk."""
        if self.busy:
            return
        try:
            self._db.commit()
        except sqlite3.Error as exc:
            self._failed(exc)
        self._unsaved = 0

    def close(self) -> None:
        """Commit and close."""
        self.commit()
        self._db.close()

    def _run(self, sql: str, args: tuple[object, ...]) -> sqlite3.Cursor | None:
        """The cursor of ``sql``; None once the cache is given up."""
        if self.busy:
            return None
        try:
            return self._db.execute(sql, args)
        except sqlite3.Error as exc:
            self._failed(exc)
            return None

    def _failed(self, exc: sqlite3.Error) -> None:
        """Give the cache up if another process holds it locked; else it is an error.

        :raises CacheError: anything but a lock.
        """
        if exc.sqlite_errorcode & 0xFF not in _BUSY:
            raise CacheError(self.path, str(exc)) from None
        self.busy = True
        self._db.rollback()
        if self._on_busy is not None:
            reason = f"{exc} (another process holds it) after {self.wait:g} s"
            self._on_busy(f"cache {self.path}: {reason}; going on without it")


def _text(value: bytes) -> str:
    """A text column's value; bytes that are not UTF-8 are replaced, not an error."""
    return value.decode("utf-8", "replace")
