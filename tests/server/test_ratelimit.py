"""Failed sign-ins are limited per account and address."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from server.errors import TooManyRequests
from server.ratelimit import SIGNIN_FAILURES, AttemptLimiter
from tests.conftest import PASSWORD, csrf, register


def test_limiter_window_slides_and_success_resets() -> None:
    """After the limit the key is refused until the oldest failure leaves the window; success clears it."""
    now = [0.0]
    limiter = AttemptLimiter(limit=3, window_s=60, clock=lambda: now[0])
    for _ in range(3):
        limiter.check("k")
        limiter.failed("k")
    with pytest.raises(TooManyRequests) as info:
        limiter.check("k")
    assert info.value.retry_after_s == 60
    limiter.check("other")
    now[0] = 60.5
    limiter.check("k")
    limiter.failed("k")
    limiter.succeeded("k")
    limiter.check("k")


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
