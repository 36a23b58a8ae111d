"""Attempt scheduling, the rate ceiling and TTL clamping, with time passed in."""

from __future__ import annotations

import pytest

from webresolve.plan import Attempts, RateLimiter, clamp_ttl


def test_attempts_rotate_servers_and_stop_after_retries() -> None:
    plan = Attempts(servers=2, retries=2, timeout=2.0, lifetime=10.0, start=100.0)
    assert plan.next(100.0) == (0, 2.0)
    assert plan.next(102.0) == (1, 2.0)
    assert plan.next(104.0) == (0, 2.0)
    assert plan.next(106.0) is None


def test_attempts_cut_by_lifetime() -> None:
    plan = Attempts(servers=1, retries=5, timeout=2.0, lifetime=5.0, start=0.0)
    assert plan.next(0.0) == (0, 2.0)
    assert plan.next(2.0) == (0, 2.0)
    assert plan.next(4.0) == (0, 1.0)
    assert plan.next(5.0) is None


def test_no_retries_means_one_attempt() -> None:
    plan = Attempts(servers=3, retries=0, timeout=1.0, lifetime=5.0, start=0.0)
    assert plan.next(0.0) == (0, 1.0)
    assert plan.next(0.1) is None


def test_rate_limiter_spaces_sends() -> None:
    limiter = RateLimiter(10.0)
    assert limiter.delay(0.0) == 0.0
    assert limiter.delay(0.0) == pytest.approx(0.1)
    assert limiter.delay(0.0) == pytest.approx(0.2)
    assert limiter.delay(1.0) == 0.0


def test_rate_zero_is_unlimited() -> None:
    limiter = RateLimiter(0.0)
    assert [limiter.delay(0.0) for _ in range(3)] == [0.0, 0.0, 0.0]


@pytest.mark.parametrize(("ttl", "out"), [(10, 300), (3600, 3600), (10**9, 86400)])
def test_clamp_ttl(ttl: float, out: float) -> None:
    assert clamp_ttl(ttl, 300, 86400) == out
