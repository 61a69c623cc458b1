import pytest

from imaging.errors import RejectedUpload
from streams.settings import Settings


def test_identity_is_checked():
    from streams.ingest import check_identity

    seller, sku, group = check_identity(" s1 ", "SKU-1", "")
    assert (seller.key, seller.carried_label, sku.key, group) == ("s1", None, "SKU-1", None)
    seller, sku, group = check_identity("Müller GmbH", "SKU 1/B", "Tassen & Becher")
    assert (seller.label, sku.label, group.label) == ("Müller GmbH", "SKU 1/B",
                                                      "Tassen & Becher")
    assert all(i.key.startswith("u-") for i in (seller, sku, group))
    for seller, sku, group, code in [
            (None, "k", None, "missing_field"), ("s", "  ", None, "missing_field"),
            ("s", "k" * 129, None, "invalid_field"), ("s\nx", "k", None, "invalid_field"),
            ("s", "k", "g\x00", "invalid_field")]:
        with pytest.raises(RejectedUpload) as info:
            check_identity(seller, sku, group)
        assert info.value.code == code


def test_image_id_is_deterministic_and_distinguishes_listings():
    from streams.records import image_id_for

    a = image_id_for("s1", "k1", "a" * 64)
    assert a == image_id_for("s1", "k1", "a" * 64)
    assert len({a, image_id_for("s1", "k2", "a" * 64), image_id_for("s2", "k1", "a" * 64)}) == 3


def test_settings_from_environment(monkeypatch):
    monkeypatch.setenv("IMGSTREAM_API_KEYS", " k1, k2 ,,")
    monkeypatch.setenv("IMGSTREAM_TOPIC_PREFIX", "t1.")
    monkeypatch.setenv("IMGSTREAM_KAFKA_BOOTSTRAP", "10.0.0.1:9093")
    s = Settings()
    assert s.api_key_set == {"k1", "k2"}
    assert s.topic_name("images.uploaded") == "t1.images.uploaded"
    assert s.kafka_host_port == ("10.0.0.1", 9093)


def test_bad_settings_fail_with_the_field(monkeypatch):
    from pydantic import ValidationError

    monkeypatch.setenv("IMGSTREAM_KAFKA_BOOTSTRAP", "nohost")
    with pytest.raises(ValidationError, match="kafka_bootstrap"):
        Settings()
