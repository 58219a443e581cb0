"""Words staff type — a reason, a note for a colleague — as they are kept: one line, without
control or formatting characters, and with any full mobile number in them masked.

A note is read by colleagues on screens and in four-eyes requests, sometimes by the consumer
(an operator's own reason), and printed by the command line: a number typed into one would be
shown in full to everyone who reads it, a terminal escape would run in their terminal, and a
right-to-left override would make the words read otherwise. Masked as the portal masks numbers
everywhere (138****8000); the rest is kept as typed.
"""

from __future__ import annotations

import re
import unicodedata

#: A full mainland mobile number standing alone (+86 or not): never inside an id or a hash.
MOBILE_LIKE = re.compile(r"(?<![0-9A-Za-z])(?:\+?86[- ]?)?(1[0-9]{10})(?![0-9A-Za-z])")


def masked_numbers(text: str) -> str:
    """`text` with anything that looks like a full mobile number masked (138****8000)."""
    return MOBILE_LIKE.sub(lambda m: f"{m.group(1)[:3]}****{m.group(1)[-4:]}", text)


def kept_words(text: object) -> str:
    """Typed words as kept: control, invisible formatting, private and unassigned characters
    dropped (tabs and line breaks become spaces), whitespace folded to single spaces, full
    numbers masked."""
    kept = (" " if ch.isspace() else ch for ch in str(text) if ch.isspace() or unicodedata.category(ch) not in _UNSEEN)
    return masked_numbers(" ".join("".join(kept).split()))


def text_problem(text: object, most: int) -> str | None:
    """What keeps staff text that is refused rather than cleaned (a name the portal shows to
    everyone) from reading as one line exactly as written: "empty", "too_long" (over `most`
    characters) or "unseen" (a line break or tab, a control, invisible formatting, private or
    unassigned character); None when it can be shown as it is."""
    if not isinstance(text, str) or not text.strip():
        return "empty"
    if any((ch.isspace() and ch != " ") or unicodedata.category(ch) in _UNSEEN for ch in text):
        return "unseen"
    if len(text) > most:
        return "too_long"
    return None


#: control, formatting (bidirectional overrides, zero-width), surrogate, private use, unassigned
_UNSEEN = ("Cc", "Cf", "Cs", "Co", "Cn")
