"""Signed image links: valid until they expire, for their path only."""

from streams.api.signing import signed_path, valid_signature


def _parts(url: str) -> tuple[str, str, str]:
    path, query = url.split("?")
    fields = dict(item.split("=") for item in query.split("&"))
    return path, fields["expires"], fields["sig"]


def test_a_signed_path_is_valid_for_its_path_until_it_expires():
    url = signed_path("secret", "/api/images/abc/original", now=1_000_000)
    path, expires, sig = _parts(url)
    assert path == "/api/images/abc/original"
    assert valid_signature("secret", path, expires, sig, now=1_000_000)
    assert int(expires) >= 1_000_000 + 3600
    assert not valid_signature("secret", path, expires, sig, now=int(expires) + 1)
    assert not valid_signature("secret", "/api/images/abd/original", expires, sig, now=1_000_000)
    assert not valid_signature("other", path, expires, sig, now=1_000_000)
    assert not valid_signature("secret", path, str(int(expires) + 600), sig, now=1_000_000)
    assert not valid_signature("secret", path, None, sig)
    assert not valid_signature("secret", path, "soon", sig)


def test_links_repeat_within_ten_minutes_so_browsers_can_cache_them():
    assert signed_path("s", "/p", now=1_200_000) == signed_path("s", "/p", now=1_200_299)
