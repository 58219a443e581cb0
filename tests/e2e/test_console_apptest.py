"""The operators' console under AppTest: the review queue from claim to a second operator's
agreement, and every console page refusing the roles it is not for, with no data."""

from __future__ import annotations

import pytest
from streamlit.testing.v1 import AppTest

from core.bootstrap import shared
from core.domain.recovery import RecoveryState
from pages._ui.plain_text import plain
from tests.support.apptest import open_app, open_page, recovery_in_review, run_alone, signed_in_as

#: Each console page's address (a page a role may not open is registered under it, hidden).
CONSOLE_PAGES = ["queue", "recoveries", "stuck"]


def queue_as(user: dict) -> AppTest:
    return open_page("pages/console/queue.py", user)


def button(at: AppTest, key: str):
    return next(b for b in at.button if b.key == key)


def test_an_operator_claims_decides_and_a_second_operator_agrees():
    view = recovery_in_review()
    maker, checker = signed_in_as("operator"), signed_in_as("operator")

    at = queue_as(maker)
    headings = " ".join(m.value for m in at.markdown)
    assert "¥1,200.00" in headings and view.masked_number in headings and view.id[:8] in headings
    assert "金额" in headings  # the rule that fired, in words
    button(at, f"claim_{view.id}").click().run()
    assert any("已认领" in s.value for s in at.success)

    at.selectbox[0].set_value((True, "identity_confirmed"))
    at.text_area[0].input("called the owner")
    next(b for b in at.button if b.label == "提交决定").click().run()
    assert any("第二位运营人员" in s.value for s in at.success)
    assert shared().recoveries.get(shared_staff(maker), view.id).state is RecoveryState.REVIEW

    other = queue_as(checker)
    assert any("called the owner" in m.value for m in other.markdown)
    button(other, next(b.key for b in other.button if b.key and b.key.startswith("agree_"))).click().run()
    assert any("已同意" in s.value for s in other.success), [e.value for e in other.error]
    assert shared().recoveries.get(shared_staff(checker), view.id).state in (
        RecoveryState.DEBITING,
        RecoveryState.DEBITED,
        RecoveryState.PAYING,
        RecoveryState.PAID,
    )


def test_a_makers_note_reaches_the_second_operator_as_written_never_as_formatting():
    """Markdown in a note (an image fetched from anywhere, a red "verified") is escaped: the
    browser shows its characters (tests/e2e/test_plain_text_browser.py)."""
    view = recovery_in_review()
    maker, checker = signed_in_as("operator"), signed_in_as("operator")
    at = queue_as(maker)
    button(at, f"claim_{view.id}").click().run()
    note = "**已电话核实** :red[verified] ![x](http://127.0.0.1:9/track.png)"
    at.selectbox[0].set_value((True, "identity_confirmed"))
    at.text_area[0].input(note)
    next(b for b in at.button if b.label == "提交决定").click().run()

    shown = " ".join(m.value for m in queue_as(checker).markdown)
    assert plain(note) in shown
    assert note not in shown and "![x](" not in shown


def test_a_request_kept_with_free_words_as_its_reason_shows_them_as_written_never_as_a_key():
    """`review approve --reason "<words>"` kept the words where a code belongs: the queue showed
    `理由:queue.reason.called the owner, fine =1+1`, and as Markdown."""
    from core.domain.access import Principal, Role
    from core.domain.review import FourEyesAction

    view = recovery_in_review()
    maker, checker = signed_in_as("operator"), signed_in_as("operator")
    words = "called the owner, fine =1+1 **ok** :red[x]"
    shared().approvals.request(
        Principal(maker["sub"], Role.OPERATOR), FourEyesAction.APPROVE_RECOVERY, view.id, {"reason": words}
    )
    shown = " ".join(m.value for m in queue_as(checker).markdown)
    assert plain(words) in shown and "queue.reason" not in shown and words not in shown


def test_a_case_another_operator_holds_shows_who_holds_it_and_offers_no_decision():
    view = recovery_in_review()
    holder, other = signed_in_as("operator"), signed_in_as("operator")
    button(queue_as(holder), f"claim_{view.id}").click().run()

    at = queue_as(other)
    assert any(holder["name"] in c.value or "正在处理" in c.value for c in at.caption)
    assert f"claim_{view.id}" not in [b.key for b in at.button]


@pytest.mark.parametrize("role", [None, "consumer", "analyst"])
@pytest.mark.parametrize("page", CONSOLE_PAGES)
def test_a_console_page_is_not_registered_for_another_role(role, page):
    """Its address answers with what it needs (tests/e2e/test_console_browser.py, in a real
    browser); its file is never run for them."""
    at = open_app(user=signed_in_as(role) if role else None)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(f"pages/console/{page}.py")


@pytest.mark.parametrize("page", CONSOLE_PAGES)
def test_a_console_page_run_without_an_operator_shows_nothing(page):
    """The page's own guard, behind the menu's: run alone, with nobody signed in, it shows its
    title and stops (and every service call behind it checks the role again)."""
    view = recovery_in_review()
    at = run_alone(f"pages/console/{page}.py")
    assert not at.exception
    shown = " ".join(str(e.value) for e in [*at.markdown, *at.info, *at.caption, *at.button])
    assert view.masked_number not in shown and view.id[:8] not in shown and len(at.button) == 0


def shared_staff(user: dict):
    from core.domain.access import Principal, Role

    return Principal(user["sub"], Role.OPERATOR)


def test_an_operator_finds_a_recovery_by_its_number_and_opens_its_record():
    view = recovery_in_review()
    svc = shared()
    phone = next(p for p, b in svc.partners.sandbox_carrier.balances.items() if p.endswith(view.masked_number[-4:]))
    at = open_app(user=signed_in_as("operator"))
    at.switch_page("pages/console/recoveries.py").run()
    assert not at.exception
    next(t for t in at.text_input if t.label.startswith("完整手机号")).input(phone)
    next(b for b in at.button if b.label == "查询").click().run()
    assert not at.exception, at.exception
    assert "n" in at.query_params and phone not in str(dict(at.query_params))
    assert view.masked_number in at.dataframe[0].value.to_string()
    at.query_params["view"] = view.id
    at.run()
    assert any(view.id[:8] in s.value for s in at.subheader)
    assert len(at.dataframe) >= 5  # the results, then parts, timeline, ledger, calls, audit


def test_an_export_is_offered_for_the_filters_it_was_made_for_only():
    """A CSV prepared for one search was offered again, byte for byte, after the filters
    changed: its download button now goes with the selection it holds."""
    recovery_in_review()
    at = open_page("pages/console/recoveries.py", signed_in_as("operator"))
    next(b for b in at.button if b.label.startswith("准备 CSV 导出")).click().run()
    assert len(at.get("download_button")) == 1
    at.query_params["state"] = "review"  # the same recovery, another selection
    at.run()
    assert not at.exception and at.dataframe and len(at.get("download_button")) == 0
    del at.query_params["state"]
    at.run()
    assert len(at.get("download_button")) == 1  # back to the selection it was made for


def test_an_unusable_filter_is_refused_once_and_the_results_stay():
    """A recovery id that is not one was refused twice, and the results of the address's filters
    were hidden by the second refusal."""
    recovery_in_review()
    at = open_page("pages/console/recoveries.py", signed_in_as("operator"))
    next(t for t in at.text_input if t.label.startswith("回收编号")).input("' OR 1=1 --")
    next(b for b in at.button if b.label == "查询").click().run()
    assert not at.exception and len(at.error) == 1
    assert at.dataframe  # the results the address still selects


def test_the_language_chosen_on_a_console_page_is_carried_by_the_address():
    """Switched to English on a console page, a reload went back to Chinese: the address did not
    carry the language."""
    at = open_app(user=signed_in_as("operator"))
    at.switch_page("pages/console/queue.py").run()
    at.segmented_control[0].set_value("en").run()
    assert not at.exception and at.query_params.get("lang") in ("en", ["en"])
    at.segmented_control[0].set_value("zh-CN").run()
    assert "lang" not in at.query_params  # the default needs no word in the address


def test_the_stuck_page_lists_nothing_when_nothing_is_late():
    at = open_app(user=signed_in_as("operator"))
    at.switch_page("pages/console/stuck.py").run()
    assert not at.exception
    assert at.title[0].value == "卡住的回收"


def test_a_button_pressed_after_the_account_was_disabled_does_nothing():
    """A button's callback runs before the page runs again (and before the frame checks the
    sign-in), with the principal the page was drawn for: it is checked again first, so an
    operator disabled meanwhile changes nothing from a page still open."""
    from core.domain.access import Principal, Role

    view = recovery_in_review()
    operator = signed_in_as("operator")
    at = queue_as(operator)
    admin = Principal(signed_in_as("admin")["sub"], Role.ADMIN)
    shared().staff.disable(admin, operator["sub"])
    button(at, f"claim_{view.id}").click().run()
    assert not at.exception
    other = queue_as(signed_in_as("operator"))
    assert f"claim_{view.id}" in [b.key for b in other.button]  # nobody holds the case


@pytest.mark.parametrize(
    "query",
    [
        {"after": "9999-12-31T23:59:59-23:59|zzzz"},
        {"after": "0001-01-01T00:00:00+23:59|a"},
        {"after": "0001-01-01T00:00:00+00:00|a"},
        {"after": "2026-11-18T10:00:00+08:00|" + "'; DROP TABLE x; --"},
        {"from": "0001-01-01", "to": "9999-12-31"},
        {"from": "9999-12-31"},
        {"to": "0001-01-01"},
    ],
)
def test_an_edited_address_never_breaks_the_recoveries_page(query):
    """A cursor whose moment has no UTC time (year 1 at +23:59, year 9999 at -23:59) overflowed
    binding it (Streamlit's error page): an edited cursor is the first page, an unusable date a
    message."""
    view = recovery_in_review()
    at = open_page("pages/console/recoveries.py", signed_in_as("operator"), **query)
    assert not at.exception, [e.value for e in at.exception]
    if "after" in query:
        assert not at.error and view.id[:8] in at.dataframe[0].value.to_string()  # the first page
    else:
        assert len(at.error) == 1 and "2000-01-01" in at.error[0].value
