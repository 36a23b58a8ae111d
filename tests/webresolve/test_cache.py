"""The sqlite cache: persistence across opens, expiry by the `now` passed in, modes."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from webresolve.cache import Cache
from webresolve.errors import CacheError


def test_persists_and_expires(tmp_path: Path) -> None:
    path = str(tmp_path / "c.db")
    cache = Cache(path)
    cache.put("192.0.2.1", "host.example", ttl=100, now=1000.0)
    cache.put("192.0.2.2", None, ttl=10, now=1000.0)
    cache.close()
    cache = Cache(path)
    assert cache.load(1005.0) == {"192.0.2.1": "host.example", "192.0.2.2": None}
    assert cache.load(1010.0) == {"192.0.2.1": "host.example"}
    assert cache.load(1100.0) == {}
    assert cache.purge(1050.0) == 1
    assert cache.load(0.0) == {"192.0.2.1": "host.example"}
    cache.close()


def test_modes_are_separate(tmp_path: Path) -> None:
    path = str(tmp_path / "c.db")
    plain = Cache(path, "ptr")
    plain.put("192.0.2.1", "host.example", 100, 0.0)
    plain.close()
    verified = Cache(path, "fcrdns")
    assert verified.load(1.0) == {}
    verified.close()


def test_replacing_an_entry(tmp_path: Path) -> None:
    cache = Cache(str(tmp_path / "c.db"))
    cache.put("192.0.2.1", "old.example", 100, 0.0)
    cache.put("192.0.2.1", "new.example", 100, 50.0)
    assert cache.load(149.0) == {"192.0.2.1": "new.example"}
    assert cache.load(150.0) == {}
    cache.close()


def test_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "junk"
    path.write_bytes(b"this is not sqlite at all" * 100)
    with pytest.raises(CacheError, match="junk"):
        Cache(str(path))


def test_unopenable(tmp_path: Path) -> None:
    with pytest.raises(CacheError):
        Cache(str(tmp_path / "missing-dir" / "c.db"))


def test_rows_of_any_type_are_read_as_text(tmp_path: Path) -> None:
    """Rows another program wrote (sqlite stores any type in any column) come back as
    text for the host-name rule to judge, never as an error or as bytes."""
    path = str(tmp_path / "c.db")
    Cache(path).close()
    with sqlite3.connect(path) as db:
        db.executemany(
            "INSERT INTO answers VALUES (?, 'ptr', ?, 2000.0)",
            [("192.0.2.1", 2130706433), ("192.0.2.2", b"\xff\xfe.example"),
             ("192.0.2.3", "evil host\n\x1b[31m"), ("192.0.2.4", None)],
        )  # fmt: skip
    db.close()
    cache = Cache(path)
    assert cache.load(1000.0) == {
        "192.0.2.1": "2130706433",
        "192.0.2.2": "\ufffd\ufffd.example",
        "192.0.2.3": "evil host\n\x1b[31m",
        "192.0.2.4": None,
    }
    cache.close()


def test_locked_by_another_process_is_given_up(tmp_path: Path) -> None:
    """An exclusive lock held elsewhere: after ``wait`` the cache is given up, once, with
    one warning, and every method goes on as a no-op."""
    path = str(tmp_path / "c.db")
    Cache(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    warnings: list[str] = []
    try:
        cache = Cache(path, wait=0.1, on_busy=warnings.append)
        assert cache.busy and cache.load(0.0) == {}
        cache.put("192.0.2.1", "host.example", 100, 0.0)
        assert cache.purge(0.0) == 0
        cache.close()
    finally:
        holder.rollback()
        holder.close()
    assert len(warnings) == 1 and "locked" in warnings[0] and path in warnings[0]


def test_locked_midway_keeps_the_run_going(tmp_path: Path) -> None:
    path = str(tmp_path / "c.db")
    warnings: list[str] = []
    cache = Cache(path, wait=0.1, on_busy=warnings.append)
    cache.put("192.0.2.1", "host.example", 100, 0.0)
    cache.commit()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        cache.put("192.0.2.2", "other.example", 100, 0.0)
        cache.commit()
        cache.put("192.0.2.3", "third.example", 100, 0.0)
        cache.close()
    finally:
        holder.rollback()
        holder.close()
    assert cache.busy and len(warnings) == 1
    again = Cache(path)
    assert again.load(0.0) == {"192.0.2.1": "host.example"}
    again.close()
