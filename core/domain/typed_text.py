"""Text as people type it, read as they meant it. A Chinese input method types full-width
characters (`１２３`, `，`, `．`); other scripts have decimal digits of their own (`٣`, `३`).
Every parser of typed figures (amounts, mobile numbers, one-time codes, payout accounts) reads
them through `folded`, so that one figure is one figure however it was typed, and a character
that only looks like a digit is never read as one."""

from __future__ import annotations

import unicodedata


def folded(text: str) -> str | None:
    """`text` with every decimal digit of any script (full-width ０-９, ٣, ३ ...) as its ASCII
    digit, and every other character folded by NFKC (full-width letters, commas, stops and
    spaces become ASCII); None if anything else would fold into a digit: circled ①, superscript
    ², subscript ₁, ⒈, ㉑ and the like are not digits a person types (NFKC alone reads ¹²⁰ as
    120), and neither are ❶ or ፩, which are "digits" to `str.isdigit` but not decimal."""
    if text.isascii():
        return text
    out = []
    for character in text:
        value = unicodedata.decimal(character, None)
        if value is not None:
            out.append(str(value))
            continue
        if character.isdigit():  # a digit to str.isdigit, but not a decimal one (❶, ፩, ²)
            return None
        compatible = unicodedata.normalize("NFKC", character)
        if any("0" <= c <= "9" for c in compatible):  # ⒈, ㉑ ...
            return None
        out.append(compatible)
    return "".join(out)
