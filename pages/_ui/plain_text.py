"""Text somebody typed (a colleague's note or reason, a partner's answer, a name) put inside a
Markdown line: shown exactly as written, never as formatting.

Streamlit's Markdown would otherwise render it: bold, colours (`:red[…]`), headings, icons
(`:material/…:`), formulas, links and images (an image from any address is fetched by whoever
opens the page: a colleague reading a four-eyes request would tell its writer when and from
where). Every Markdown character is escaped with a backslash; a colon, an `@` and `www.` also
get an invisible word joiner (U+2060), because Streamlit finds icons, emoji short codes, bare web
and mail addresses in the text after the escapes are read. Line breaks become spaces: a note is
one line.
"""

from __future__ import annotations

import re

_MARKDOWN = re.compile(r"([\\`*_{}\[\]()<>#+\-.!|~:$&=^])")
_JOINER = "\u2060"
_WWW = re.compile(r"(www)(\\\.)", re.IGNORECASE)


def plain(text: object) -> str:
    """`text` (one line) ready to go inside Markdown, to read exactly as written."""
    escaped = _MARKDOWN.sub(r"\\\1", " ".join(str(text).split()))
    escaped = escaped.replace("\\:", "\\:" + _JOINER).replace("@", _JOINER + "@")
    return _WWW.sub(lambda m: m.group(1) + _JOINER + m.group(2), escaped)
