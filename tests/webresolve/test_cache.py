"""The sqlite cache: persistence across opens, expiry by the `now` passed in, modes."""

from __future__ import annotations

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
