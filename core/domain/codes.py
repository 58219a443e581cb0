"""One-time codes as people type them: digits from a Chinese input method are full-width
(`１２３４５６`) and spaces creep in. Pure functions, used by every sign-in path."""

from __future__ import annotations

from core.domain import typed_text

MAX_TYPED_CODE = 64  # a code, spaces and all, is never longer: more is junk, not normalised


def typed_code(code: object) -> str:
    """A code as the person meant it: digits typed with a Chinese input method are full-width
    (`１２３４５６`), and spaces (ideographic ones too) creep in. Digits of any script read as
    ASCII ones (`core.domain.typed_text`); whitespace is dropped; a character that only looks like a
    digit (², ①) makes the whole junk (""). Whatever is left may still be junk: see
    `is_six_digits`."""
    text = str(code)
    if len(text) > MAX_TYPED_CODE:
        return ""
    folded = typed_text.folded(text)
    return "" if folded is None else "".join(ch for ch in folded if not ch.isspace())


def is_six_digits(code: str) -> bool:
    """Six ASCII digits (str.isdigit alone also accepts other scripts' digits, superscripts ...)."""
    return len(code) == 6 and code.isascii() and code.isdigit()
