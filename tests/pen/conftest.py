"""Fixtures for pen's socket tests: backends and pen processes, all stopped by the test."""

from __future__ import annotations

import pytest

from .helpers import Backend, Pen


@pytest.fixture
def backends(tmp_path):
    """Factory: ``backends("100", "101")`` starts HTTP backends logging to tmp_path."""
    started: list[Backend] = []

    def start(*names: str, mode: str = "http", host: str = "127.0.0.1") -> list[Backend]:
        new = [Backend(n, host=host, mode=mode, log_path=tmp_path / f"access_log.{n}").start()
               for n in names]
        started.extend(new)
        return new

    yield start
    for backend in started:
        if backend._thread.is_alive():
            backend.stop()


@pytest.fixture
def pen(tmp_path):
    """Factory: ``pen(args)`` starts our pen in the foreground and stops it after the test."""
    running: list[Pen] = []

    def start(args: list[str], **kw) -> Pen:
        proc = Pen(tmp_path, [str(a) for a in args], **kw)
        running.append(proc)  # before start, so a half-started pen is stopped too
        return proc.start()

    yield start
    for proc in running:
        proc.stop()
