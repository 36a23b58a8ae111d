"""Fixtures for pen's socket tests: backends and pen processes, all stopped by the test."""

from __future__ import annotations

import subprocess

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


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A throwaway self-signed certificate made with the openssl command."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key
