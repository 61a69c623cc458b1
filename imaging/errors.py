"""Outcomes of pure image code that are not failures of the input."""

from __future__ import annotations


class StepDeclined(Exception):
    """An operation chose to leave the image alone (e.g. a product mask it cannot trust).

    ``code`` is a stable reason code, ``detail`` the reason in words with what was measured.
    """

    def __init__(self, code: str, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code = code
        self.detail = detail
