"""``imgstream tail`` shows and filters sellers as their catalogues name them."""

from streams.identity import parse_catalogue_id
from streams.tail import TailOptions, format_event, matches

SELLER = parse_catalogue_id("Müller GmbH")
SKU = parse_catalogue_id("Tasse 0,5 l / blau")


def assessed(**fields):
    document = {"event_type": "QualityAssessed", "occurred_at": "2026-12-05T10:00:00.000Z",
                "image_id": "a" * 32, "seller_id": "seller-1", "sku_id": "SKU-1",
                "tier": "good", "overall_score": 70.0, "issues": []}
    return {**document, **fields}


def test_a_line_shows_the_label_when_the_event_has_one():
    labelled = assessed(seller_id=SELLER.key, sku_id=SKU.key, seller_label=SELLER.label,
                        sku_label=SKU.label)
    assert " Müller GmbH/Tasse 0,5 l / blau good " in format_event(labelled)
    assert " seller-1/SKU-1 good " in format_event(assessed())


def test_seller_filter_takes_the_catalogue_id_or_the_key():
    labelled = assessed(seller_id=SELLER.key, seller_label=SELLER.label)
    for seller in ("Müller GmbH", SELLER.key):
        assert matches(labelled, TailOptions("assessed", seller=seller))
    assert not matches(labelled, TailOptions("assessed", seller="seller-1"))
    assert matches(assessed(), TailOptions("assessed", seller="seller-1"))
