"""The pricing lab under AppTest: an analyst sees the live version, edits a tier and sees the
draft's figures beside the live ones move, saves and submits the draft; an admin who is not the
author approves it and the new version is live; a cell that is not a figure saves nothing; an
operator's and a consumer's address for the lab says it needs another role and shows nothing."""

from __future__ import annotations

import json

import pytest

from core.bootstrap import shared
from core.domain.access import Principal, Role
from tests.support.apptest import open_app, open_by_address, signed_in_as

PAGE = "pages/console/pricing.py"


@pytest.fixture(autouse=True)
def live_pricing_restored():
    """The pages of later tests quote with the live version: one a test made live is rolled
    back afterwards, through the same workflow (an analyst submits, another admin approves)."""
    pricing = shared().pricing
    before = pricing.live().number
    yield
    if pricing.live().number != before:
        analyst = Principal(signed_in_as("analyst")["sub"], Role.ANALYST)
        back = pricing.rollback(analyst, before, "restored after a test")
        pricing.approve(Principal(signed_in_as("admin")["sub"], Role.ADMIN), back.number)


def run_as(role: str, lang: str = "zh-CN"):
    user = signed_in_as(role)
    at = open_app(user=user, lang=lang)
    at.switch_page(PAGE).run(timeout=60)
    assert not at.exception, [e.value for e in at.exception]
    return at, user


def figures(at) -> dict[str, dict[str, str]]:
    """The live and draft figures, by version and figure (the table with one row per figure)."""
    wanted = {"Figure", "指标"}
    table = next(d.value for d in at.table if wanted & set(d.value.columns))
    by_figure = table.set_index(table.columns[0])
    return {version: dict(by_figure[version]) for version in by_figure.columns}


def test_an_analyst_edits_a_tier_sees_the_figures_move_and_submits():
    at, user = run_as("analyst", "en")
    assert at.title[0].value == "Pricing lab"
    before = figures(at)
    assert set(before) == {"Live", "Draft"}
    assert before["Live"]["Win rate"] == before["Draft"]["Win rate"]  # the editors start from the live terms
    assert len(at.get("plotly_chart")) == 1
    floor = next(n for n in at.number_input if n.label == "Minimum fee (CNY)")
    cap = next(n for n in at.number_input if n.label == "Fee cap (CNY)")
    cap.set_value(1.0).run(timeout=60)  # at most 1 CNY a transaction: far cheaper for large balances
    after = figures(at)
    assert after["Draft"]["Win rate"] != before["Draft"]["Win rate"]
    assert after["Live"]["Win rate"] == before["Live"]["Win rate"]
    assert floor.value == 0.5
    next(b for b in at.button if b.label == "Save draft").click().run(timeout=60)
    assert any("Draft saved" in s.value for s in at.success), [e.value for e in at.error]
    next(i for i in at.text_input if i.label == "Note (one line)").set_value("fee cap of 1 CNY").run(timeout=60)
    next(b for b in at.button if b.label == "Submit for approval").click().run(timeout=60)
    assert any("Submitted" in s.value for s in at.success), [e.value for e in at.error]
    pricing = shared().pricing
    (pending,) = [v for v in pricing.versions(Principal(user["sub"], Role.ANALYST)) if v.status.value == "submitted"]
    assert pending.note == "fee cap of 1 CNY"

    admin, _ = run_as("admin", "en")
    assert any("Waiting for approval" in h.value for h in admin.subheader)
    diff = "\n".join(c.value for c in admin.code)  # what the admin approves: the changes, and their effect
    assert '-   "cap_yuan": "60.00",' in diff and '+   "cap_yuan": "1.00",' in diff
    assert diff.startswith("--- Live\n+++ Awaiting approval")
    assert set(figures(admin)) == {"Live", "Awaiting approval"}  # the effect: the submitted version, not "Draft"
    pending_curve, lab_curve = (json.loads(c.proto.spec) for c in admin.get("plotly_chart"))
    assert pending_curve["data"] and all(trace["x"] for trace in pending_curve["data"])  # its margin curve, drawn
    assert pending_curve != lab_curve  # the approver's own draft starts from the live terms: another curve
    notes = next(d.value for d in admin.dataframe if "Note" in d.value.columns)
    assert "fee cap of 1 CNY" in set(notes["Note"])
    next(b for b in admin.button if b.label == "Approve and make live").click().run(timeout=60)
    assert any("is live" in s.value for s in admin.success), [e.value for e in admin.error]
    assert pricing.live().number == pending.number
    assert pricing.live().schedule.own_offer.fee.cap_fen == 100


def test_a_fee_floor_above_the_smallest_transaction_saves_nothing_and_says_why():
    at, user = run_as("analyst")
    assert at.title[0].value == "定价实验室"
    versions = next(d.value for d in at.dataframe if "说明" in d.value.columns)
    assert "随系统发布的初始版本" in set(versions["说明"])  # the shipped version's note, in the reader's language
    assert "shipped with the portal" not in set(versions["说明"])
    before = len(shared().pricing.versions(Principal(user["sub"], Role.ANALYST)))
    next(n for n in at.number_input if n.label == "最低手续费(元)").set_value(30.0).run(timeout=60)
    assert at.warning  # the terms do not hold together: the lab says so and simulates the live version
    next(b for b in at.button if b.label == "保存草稿").click().run(timeout=60)
    # the problem as the catalog words it, escaped for Markdown (it can quote what was typed)
    assert any("未保存" in e.value and r"floor\_yuan" in e.value for e in at.error)
    # ... in the reader's language: the field path kept, the words Chinese (they were English)
    assert any("必须低于" in e.value and "must be below" not in e.value for e in at.error), [e.value for e in at.error]
    assert len(shared().pricing.versions(Principal(user["sub"], Role.ANALYST))) == before


def test_operators_and_consumers_are_told_the_lab_needs_another_role():
    for role in ("operator", "consumer"):
        at = open_app(user=signed_in_as(role))
        open_by_address(at, "pricing-lab")
        assert not at.exception
        assert at.title[0].value == "定价实验室"
        assert any("分析师" in i.value for i in at.info)
        assert (
            len(at.table) == 0 and len(at.dataframe) == 0 and len(at.get("plotly_chart")) == 0 and len(at.button) == 0
        )


def test_a_draft_saved_after_the_analysts_account_was_disabled_is_not_saved():
    """The lab's buttons check the sign-in again before they act (a callback runs before the
    frame checks it): an account disabled meanwhile saves nothing from a page still open."""
    at, user = run_as("analyst", "en")
    analyst = Principal(user["sub"], Role.ANALYST)
    admin = Principal(signed_in_as("admin")["sub"], Role.ADMIN)
    next(n for n in at.number_input if n.label == "Fee cap (CNY)").set_value(2.0).run(timeout=60)
    shared().staff.disable(admin, analyst.user_id)
    next(b for b in at.button if b.label == "Save draft").click().run(timeout=60)
    assert not at.exception
    assert [v for v in shared().pricing.versions(admin) if v.author_id == analyst.user_id] == []


def test_the_own_offers_name_reads_as_written_in_the_lab_never_as_markdown():
    """A name saved from a file showed bold and red, and the reader's browser fetched its image."""
    from pages._ui.plain_text import plain

    pricing = shared().pricing
    analyst = Principal(signed_in_as("analyst")["sub"], Role.ANALYST)
    document = json.loads(pricing.desk(analyst).live_document)
    name = "<img src=x>**粗体** :red[红] ![a](http://127.0.0.1:9/a.png)"[:40]
    document["own_offer"]["name"]["zh-CN"] = name
    draft = pricing.save_draft(analyst, json.dumps(document, ensure_ascii=False), "a name with markup")
    pricing.submit(analyst, draft.number, "a name with markup")
    pricing.approve(Principal(signed_in_as("admin")["sub"], Role.ADMIN), draft.number)

    at, _ = run_as("analyst")
    shown = " ".join(m.value for m in at.markdown)
    assert plain(name) in shown and name not in shown
