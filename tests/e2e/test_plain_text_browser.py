"""What a colleague typed (a note, a reason) reads in the console exactly as typed: Streamlit's
Markdown renders none of it as formatting, link, image, icon or formula (Chromium's rendering of
`pages._ui.plain_text.plain`, in each kind of element the console shows such text in)."""

from __future__ import annotations

from urllib.parse import quote, urlsplit

import pytest

from tests.support.processes import running_portal

pytestmark = pytest.mark.slow

HOSTILE = [
    "**已电话核实** [点我](javascript:alert(1)) ![x](http://127.0.0.1:9/track.png) :red[红色警告]",
    "# heading\n- item\n1. item > quote `code` ~~gone~~ <b>b</b> &amp;",
    ":material/home: :smile: $x^2$ http://example.com WWW.example.com ops@example.com a_b_c \\*",
]
ELEMENTS = "[data-testid=stMarkdownContainer], [data-testid=stCaptionContainer]"
FORMATTING = "a, img, strong, em, h1, h2, li, blockquote, code, del, b, .katex, [role=img], .stMarkdownColoredText"


@pytest.fixture(scope="module")
def probe_url(browser):
    with running_portal("tests/e2e/plain_text_app.py") as url:
        warm = browser.new_page()
        warm.goto(url)
        warm.wait_for_selector("text=DONE", timeout=60_000)
        warm.close()
        yield url


@pytest.mark.parametrize("text", HOSTILE)
def test_typed_text_is_shown_as_typed_never_as_formatting_links_or_images(browser, probe_url, text):
    page = browser.new_page()
    fetched: list[str] = []
    page.on("request", lambda request: fetched.append(request.url))
    page.goto(f"{probe_url}/?text={quote(text)}")
    page.wait_for_selector("text=DONE", timeout=30_000)
    for label in ("MARKDOWN", "CAPTION", "INFO"):
        element = page.locator(f"{ELEMENTS}", has_text=label).first
        assert element.locator(FORMATTING).count() == 0, element.inner_html()
        shown = element.inner_text().replace("\u2060", "")
        assert shown == f"{label} " + " ".join(text.split())  # every character as typed, on one line
    assert not [url for url in fetched if urlsplit(url).netloc in ("127.0.0.1:9", "example.com")]  # nothing fetched
    page.close()
