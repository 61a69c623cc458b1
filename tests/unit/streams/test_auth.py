"""API roles and the upload rate limiter (pure)."""

from types import SimpleNamespace

from streams.auth import ADMIN, UPLOADER, RateLimiter, authorized
from streams.settings import Settings


def _request(key=None):
    return SimpleNamespace(headers={"X-API-Key": key} if key else {}, remote="10.0.0.1")


def test_roles(tmp_path):
    settings = Settings(home=tmp_path, _env_file=None, api_keys="up", admin_keys="boss")
    assert authorized(_request("up"), settings, UPLOADER)
    assert authorized(_request("boss"), settings, UPLOADER)  # admins may upload too
    assert not authorized(_request("up"), settings, ADMIN)
    assert authorized(_request("boss"), settings, ADMIN)
    assert not authorized(_request(), settings, UPLOADER)
    assert not authorized(_request("nope"), settings, ADMIN)


def test_without_any_key_configured_everything_is_open(tmp_path):
    settings = Settings(home=tmp_path, _env_file=None, api_keys="", admin_keys="")
    assert authorized(_request(), settings, ADMIN)


def test_the_bucket_allows_a_burst_then_the_rate():
    now = [0.0]
    limiter = RateLimiter(rate=2.0, burst=3, clock=lambda: now[0])
    assert [limiter.retry_after("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.retry_after("a") == 0.5
    assert limiter.retry_after("b") == 0.0  # per client
    now[0] = 0.5
    assert limiter.retry_after("a") == 0.0
    assert RateLimiter(rate=0, burst=1).retry_after("a") == 0.0  # off
