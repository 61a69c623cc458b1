"""Catalogue ids and their event keys (streams/identity.py)."""

import hashlib
import re
import subprocess
import sys
import unicodedata

import pytest
from jsonschema import Draft202012Validator

import schemas
from schemas.compat import released_documents
from streams.identity import (
    EVENT_KEY_PATTERN,
    InvalidCatalogueId,
    event_key,
    key_matches_label,
    parse_catalogue_id,
)


def released_pattern_matches(key: str) -> bool:
    """The released external_id definition itself, through the schema validator."""
    released = released_documents("1.1")["common.json"]["$defs"]["external_id"]
    return Draft202012Validator(released).is_valid(key)


@pytest.mark.parametrize("plain", ["seller-42", "SKU-1001", "a", "x" * 64, "grp.1:2_3",
                                   "u-" + "0" * 32])
def test_ids_that_match_the_released_pattern_are_their_own_keys(plain):
    parsed = parse_catalogue_id(plain)
    assert (parsed.key, parsed.label, parsed.carried_label) == (plain, plain, None)


@pytest.mark.parametrize("catalogue_id", [
    "Müller GmbH", "SKU 12/B", "../../etc/passwd", "a/../../b", "靴-001", "mug 🍵",
    "👩\u200d👩\u200d👧",  # an emoji sequence joined by ZWJ
    "\u06a9\u062a\u0627\u0628\u200c\u0647\u0627",  # Persian, with a ZWNJ
    "x" * 65, "x" * 128, "seller 42", "sku#1", "s1,", "é"])
def test_other_ids_get_a_hashed_key_that_matches_the_released_pattern(catalogue_id):
    parsed = parse_catalogue_id(catalogue_id)
    expected = "u-" + hashlib.sha256(
        unicodedata.normalize("NFC", catalogue_id).encode()).hexdigest()[:32]
    assert parsed.key == expected
    assert released_pattern_matches(parsed.key)
    assert "/" not in parsed.key and ".." not in parsed.key
    assert parsed.carried_label == unicodedata.normalize("NFC", catalogue_id)
    assert key_matches_label(parsed.key, parsed.label)


def test_the_key_is_stable_across_runs():
    """Keys are stored in MySQL and derive image ids: a pinned value catches any drift
    (another hash, another prefix, another normalisation)."""
    assert parse_catalogue_id("Müller GmbH").key == "u-a71002a2627289b53ca055ee90e213ca"


def test_nfc_and_nfd_spellings_are_one_id():
    nfc, nfd = (unicodedata.normalize(form, "Müller") for form in ("NFC", "NFD"))
    assert nfc != nfd
    assert parse_catalogue_id(nfc) == parse_catalogue_id(nfd)
    assert parse_catalogue_id(nfd).label == nfc


def test_surrounding_whitespace_is_removed_inner_whitespace_kept():
    assert parse_catalogue_id("  Müller GmbH\u00a0") == parse_catalogue_id("Müller GmbH")
    assert parse_catalogue_id(" s1 ").key == "s1"
    assert parse_catalogue_id("Müller  GmbH").key != parse_catalogue_id("Müller GmbH").key


def test_distinct_ids_get_distinct_keys():
    ids = ["Müller", "müller", "Muller", "Mu\u0308ller ", "SKU 1", "SKU  1", "SKU/1",
           "SKU-1", "u-" + parse_catalogue_id("SKU 1").key[2:].upper()]
    keys = {parse_catalogue_id(i).key for i in ids}
    assert len(keys) == len(ids) - 1  # "Mu\u0308ller " is "Müller"


def test_128_characters_after_nfc_is_the_limit():
    assert parse_catalogue_id("ü" * 128).label == "ü" * 128
    # 256 code points decomposed, 128 composed: the limit counts the stored form.
    assert parse_catalogue_id("u\u0308" * 128).label == "ü" * 128
    with pytest.raises(InvalidCatalogueId, match="129 characters long; the limit is 128"):
        parse_catalogue_id("ü" * 129)


@pytest.mark.parametrize(("catalogue_id", "code_point"), [
    ("a\nb", "U+000A"), ("a\tb", "U+0009"), ("a\x00", "U+0000"), ("a\x7fb", "U+007F"),
    ("a\u202eb", "U+202E"),   # right-to-left override: spoofs how an id reads
    ("a\u00adb", "U+00AD"),   # soft hyphen: invisible
    ("a\u2028b", "U+2028"),   # line separator
    ("a\ue000b", "U+E000"),   # private use
    ("a\U000e0001b", "U+E0001"),  # language tag
    ("a\u0378b", "U+0378"),   # unassigned
])
def test_control_invisible_and_unassigned_characters_are_refused(catalogue_id, code_point):
    with pytest.raises(InvalidCatalogueId, match=re.escape(code_point)):
        parse_catalogue_id(catalogue_id)


@pytest.mark.parametrize("blank", ["", "   ", "\u3000"])
def test_empty_ids_are_refused(blank):
    with pytest.raises(InvalidCatalogueId, match="empty"):
        parse_catalogue_id(blank)


def test_an_event_label_must_be_the_one_its_key_was_made_from():
    key = parse_catalogue_id("Müller GmbH").key
    assert key_matches_label(key, "Müller GmbH")
    assert not key_matches_label(key, "Mueller GmbH")
    assert not key_matches_label(key, unicodedata.normalize("NFD", "Müller GmbH"))
    assert not key_matches_label(key, "Müller GmbH\n")


def test_the_key_pattern_is_the_released_one():
    released = schemas.load_schema("common")["$defs"]["external_id"]["pattern"]
    assert released == "^" + EVENT_KEY_PATTERN.pattern + "$"
    assert event_key("ok\n") != "ok\n"  # fullmatch: no trailing newline sneaks through


def test_identity_imports_without_faust():
    probe = "import sys, streams.identity; sys.exit('faust' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", probe]).returncode == 0
