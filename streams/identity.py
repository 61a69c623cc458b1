"""Catalogue ids (seller, SKU, product group) and the event keys that stand for them.

Pure: no I/O, no faust. Sellers send the ids their catalogues use ("Müller GmbH",
"SKU 12/B", "靴-001"); events, Kafka keys, image ids and MySQL key columns use an
**event key** that always matches the released ``external_id`` pattern
(``^[A-Za-z0-9._:-]{1,64}$``, schemas/events/v1/common.json), which a minor schema
version may not change:

- an id that already matches the pattern is its own key, so every id accepted before
  keeps its image ids and events byte for byte;
- any other id maps to ``u-`` + the first 32 hex characters of SHA-256 of its NFC UTF-8
  bytes (``"u-" + sha256(nfc(id).encode()).hexdigest()[:32]``), which anyone can
  recompute from the label an event carries beside the key.

A plain id of that same form (``u-`` + 32 lowercase hex) stays its own key: it equals the
key of some other id only if someone finds 128 bits of a SHA-256 preimage, and an
uploader who wanted to write under another seller's key could simply send that seller's
id (uploader keys are not bound to sellers). Keys never contain '/', so a path built from
one cannot leave its prefix; the label is for display only and is never part of a path.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass

#: The released ``external_id`` pattern: what every event's seller_id / sku_id /
#: product_group_id must match (fullmatch: a trailing newline is not allowed either).
EVENT_KEY_PATTERN = re.compile(r"[A-Za-z0-9._:-]{1,64}")
#: Prefix of the keys of ids that do not match the pattern.
HASHED_KEY_PREFIX = "u-"
#: Longest catalogue id, in Unicode code points after NFC (as MySQL's VARCHAR(128) and
#: JSON Schema's maxLength count).
MAX_CATALOGUE_ID_LENGTH = 128

#: Format characters that real text needs: the zero-width non-joiner and joiner (Persian
#: words, Indic conjuncts, emoji sequences). Other format characters (bidi overrides,
#: soft hyphen, BOM) are invisible and make two ids look alike, so they are refused.
_ALLOWED_FORMAT = frozenset("\u200c\u200d")
#: What a refused character is, by Unicode category, for the seller's error message.
_REFUSED_KINDS = {
    "Cc": "a control character",
    "Cf": "an invisible formatting character",
    "Cs": "a surrogate",
    "Co": "a private-use character",
    # An unassigned code point might normalise differently once a later Unicode assigns
    # it, which would change the key.
    "Cn": "a code point unassigned in this worker's Unicode",
    # Line and paragraph separators break lines in logs and CLI output as a newline does.
    "Zl": "a line separator",
    "Zp": "a paragraph separator",
}


class InvalidCatalogueId(ValueError):
    """A catalogue id that cannot be accepted; the message says why, for the seller."""


@dataclass(frozen=True)
class CatalogueId:
    """One accepted id: ``label`` as the catalogue has it (NFC, surrounding whitespace
    removed), ``key`` the form events and key columns carry."""

    label: str
    key: str

    @property
    def carried_label(self) -> str | None:
        """The label events and rows carry beside the key: only when it differs from it
        (events of plain ids stay what they were)."""
        return None if self.label == self.key else self.label


def _refused_kind(char: str) -> str | None:
    """What ``char`` is when it may not be part of an id, else None."""
    if char in _ALLOWED_FORMAT:
        return None
    return _REFUSED_KINDS.get(unicodedata.category(char))


def normalise_catalogue_id(value: str) -> str:
    """``value`` in the form that is stored and hashed: NFC, surrounding whitespace
    removed (as uploads always had it). Raises InvalidCatalogueId."""
    text = unicodedata.normalize("NFC", value).strip()
    if not text:
        raise InvalidCatalogueId("it is empty")
    if len(text) > MAX_CATALOGUE_ID_LENGTH:
        raise InvalidCatalogueId(
            f"it is {len(text)} characters long; the limit is {MAX_CATALOGUE_ID_LENGTH}")
    for char in text:
        if kind := _refused_kind(char):
            raise InvalidCatalogueId(f"it contains U+{ord(char):04X}, {kind}")
    return text


def event_key(normalised: str) -> str:
    """The event key of an already normalised catalogue id."""
    if EVENT_KEY_PATTERN.fullmatch(normalised):
        return normalised
    digest = hashlib.sha256(normalised.encode("utf-8")).hexdigest()
    return HASHED_KEY_PREFIX + digest[:32]


def parse_catalogue_id(value: str) -> CatalogueId:
    """Check and normalise a catalogue id and derive its key. Raises InvalidCatalogueId."""
    label = normalise_catalogue_id(value)
    return CatalogueId(label=label, key=event_key(label))


def key_matches_label(key: str, label: str) -> bool:
    """Does an event's ``label`` (normalised, as producers write it) stand for ``key``?"""
    try:
        return normalise_catalogue_id(label) == label and event_key(label) == key
    except InvalidCatalogueId:
        return False


def keys_meant_by(value: str) -> frozenset[str]:
    """Event keys an operator's filter (``--seller``, ``--sku``) can mean: the value as
    typed (a key copied from an event or a row) and the key of the catalogue id it spells."""
    try:
        return frozenset({value, parse_catalogue_id(value).key})
    except InvalidCatalogueId:
        return frozenset({value})
