"""Failed sign-ins are limited per account and address."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from server.errors import TooManyRequests
from server.ratelimit import SIGNIN_FAILURES, AttemptLimiter
from tests.conftest import PASSWORD, csrf, register


async def test_limiter_window_slides_and_success_resets() -> None:
    """After the limit the key is refused until the oldest failure leaves the window; success clears it."""
    now = [0.0]
    limiter = AttemptLimiter(limit=3, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        await limiter.check("k")
        await limiter.failed("k")
    with pytest.raises(TooManyRequests) as info:
        await limiter.check("k")
    assert info.value.retry_after_s == 60
    await limiter.check("other")
    now[0] = 60.5
    await limiter.check("k")
    await limiter.failed("k")
    await limiter.succeeded("k")
    await limiter.check("k")


async def test_redis_limiter_is_shared_by_processes() -> None:
    """Two limiters on one Redis (two processes) count the same failures; a success anywhere clears them."""
    from server.ratelimit import RedisAttemptLimiter
    from tests.services import redis_server

    with redis_server() as url:
        one, two = RedisAttemptLimiter(url, 3, 60), RedisAttemptLimiter(url, 3, 60)
        key = ("203.0.113.9", "pat@example.org")
        for limiter in (one, two, one):
            await limiter.check(key)
            await limiter.failed(key)
        for limiter in (one, two):
            with pytest.raises(TooManyRequests) as info:
                await limiter.check(key)
            assert 0 < info.value.retry_after_s <= 60
        await two.check(("203.0.113.9", "other@example.org"))
        await two.succeeded(key)
        await one.check(key)
        await one.close()
        await two.close()


def test_signin_is_refused_after_repeated_failures(client: TestClient) -> None:
    """After 10 wrong passwords even the right one gets 429 with Retry-After."""
    register(client)
    client.post("/api/auth/signout", headers=csrf(client))
    for _ in range(SIGNIN_FAILURES):
        wrong = client.post(
            "/api/auth/signin", json={"email": "pat@example.org", "password": "guess-guess"}, headers=csrf(client)
        )
        assert wrong.status_code == 401
    blocked = client.post(
        "/api/auth/signin", json={"email": "pat@example.org", "password": PASSWORD}, headers=csrf(client)
    )
    assert blocked.status_code == 429
    assert int(blocked.headers["retry-after"]) > 0
    assert blocked.json()["error"]["code"] == "too_many_requests"
    assert client.get("/api/me").status_code == 401
