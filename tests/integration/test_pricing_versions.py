"""Pricing versions on SQLite and PostgreSQL: the shipped document is version 1, live; an
analyst's draft is checked whole (a bad one saves nothing); the author submits, an admin who is
not the author approves and the new version is live at once while the old one retires; the
author cannot approve; a second submission waits for the first; a decline needs a reason;
a rollback is the same two steps; consumers and operators cannot touch pricing; every step is
in the audit chain."""

from __future__ import annotations

import dataclasses
import hashlib
import json

import pytest
from sqlmodel import select

from core.domain.access import NotAllowed, Principal
from core.domain.pricing import PricingError, VersionStatus
from core.errors import InputError
from core.persistence.tables import AuditRecord, PricingVersion
from core.persistence.uow import UnitOfWork
from core.services.audit import AuditLog
from core.services.pricing import PricingService, SameAuthor, VersionConflict
from tests.support import ROOT
from tests.support.cli import cli_services
from tests.support.cli import run as run_cli
from tests.support.portal import PASSWORD, Portal

SHIPPED = ROOT / "data" / "pricing" / "schedule.json"


def service_of(portal: Portal) -> PricingService:
    market = {c.id: c for c in portal.quotes.terms().catalog.channels}
    return PricingService(
        portal.engine,
        AuditLog(portal.clock),
        lambda: market,
        SHIPPED,
        calendar=portal.quotes.calendar,
        clock=portal.clock,
    )


def staff(portal: Portal, role: str, name: str) -> Principal:
    return Principal(portal.identity.create_staff(role, name, PASSWORD), role)


def with_rate(rate: str) -> str:
    document = json.loads(SHIPPED.read_text(encoding="utf-8"))
    document["own_offer"]["fee"]["tiers"][0]["rate"] = rate
    return json.dumps(document, ensure_ascii=False)


@pytest.fixture
def lab(portal):
    return service_of(portal), staff(portal, "analyst", "ana.lyst"), staff(portal, "admin", "ad.min")


def audit_actions(portal: Portal) -> list[str]:
    with UnitOfWork(portal.engine) as uow:
        return [r.action for r in uow.session.exec(select(AuditRecord).order_by(AuditRecord.seq)).all()]


def test_the_shipped_document_is_version_one_and_live(lab):
    service, analyst, _ = lab
    live = service.live()
    assert live.number == 1
    assert live.schedule.own_offer.id == "direct"
    (only,) = service.versions(analyst)
    assert (only.number, only.status, only.author) == (1, VersionStatus.LIVE, "")


def test_an_approved_version_is_live_at_once_and_the_old_one_retires(portal, lab):
    service, analyst, admin = lab
    draft = service.save_draft(analyst, with_rate("0.04"), "cheaper small recoveries")
    assert (draft.number, draft.status) == (2, VersionStatus.DRAFT)
    service.submit(analyst, 2, "4% under 100 CNY")
    assert service.live().number == 1  # submitted is not live
    approved = service.approve(admin, 2, "checked the curves")
    assert approved.status is VersionStatus.LIVE
    live = service.live()
    assert live.number == 2
    assert live.schedule.own_offer.fee.tiers[0].rate_ppm == 40_000
    statuses = {v.number: v.status for v in service.versions(admin)}
    assert statuses == {2: VersionStatus.LIVE, 1: VersionStatus.RETIRED}
    assert audit_actions(portal)[-3:] == ["pricing_draft", "pricing_submit", "pricing_approve"]


def test_the_desk_shows_each_person_their_own_draft_and_who_may_decide_the_pending_version(portal, lab):
    service, analyst, admin = lab
    other = staff(portal, "analyst", "ana.desk")
    opening = service.desk(analyst)
    assert (opening.live.number, opening.pending, opening.draft, opening.may_decide) == (1, None, None, False)
    assert json.loads(opening.live_document) == json.loads(SHIPPED.read_text(encoding="utf-8"))
    service.save_draft(analyst, with_rate("0.04"), "mine")
    service.save_draft(other, with_rate("0.038"), "theirs")
    assert service.desk(analyst).draft.number == 2 and service.desk(other).draft.number == 3
    assert service.desk(admin).draft is None  # nobody else's draft is one's own
    service.submit(analyst, 2, "please")
    for who, decides in ((analyst, False), (other, False), (admin, True)):
        desk = service.desk(who)
        assert desk.pending is not None and desk.pending.number == 2 and desk.may_decide is decides
    assert service.desk(analyst).draft is None  # submitted, no longer a draft
    service.approve(admin, 2)
    after = service.desk(other)
    assert after.live.number == 2 and after.pending is None
    assert json.loads(after.live_document)["own_offer"]["fee"]["tiers"][0]["rate"] == "0.04"
    with pytest.raises(NotAllowed):
        service.desk(staff(portal, "operator", "op.desk"))


def test_another_process_sees_the_new_version_within_its_refresh(portal, lab):
    service, analyst, admin = lab
    other = service_of(portal)  # another replica or worker: its own cache
    assert other.live().number == 1
    service.save_draft(analyst, with_rate("0.04"))
    service.submit(analyst, 2, "note")
    service.approve(admin, 2)
    other._live = None  # its refresh is due (a second by default)
    assert other.live().number == 2


def test_the_author_cannot_approve_or_decline_even_as_an_admin(portal, lab):
    service, _, admin = lab
    service.save_draft(admin, with_rate("0.04"))
    service.submit(admin, 2, "mine")
    with pytest.raises(SameAuthor):
        service.approve(admin, 2)
    with pytest.raises(SameAuthor):
        service.decline(admin, 2, "no")
    other_admin = staff(portal, "admin", "ad.two")
    assert service.approve(other_admin, 2).status is VersionStatus.LIVE


def test_only_an_admin_approves(portal, lab):
    service, analyst, _ = lab
    service.save_draft(analyst, with_rate("0.04"))
    service.submit(analyst, 2, "note")
    for role in ("analyst", "operator"):
        with pytest.raises(NotAllowed):
            service.approve(staff(portal, role, f"x.{role}"), 2)
    assert service.live().number == 1


def test_a_second_submission_waits_for_the_first_to_be_decided(portal, lab):
    service, analyst, admin = lab
    other = staff(portal, "analyst", "ana.two")
    service.save_draft(analyst, with_rate("0.04"))
    service.save_draft(other, with_rate("0.038"))
    service.submit(analyst, 2, "first")
    with pytest.raises(VersionConflict):
        service.submit(other, 3, "second")
    assert service.version(other, 3).status is VersionStatus.DRAFT  # nothing changed
    service.decline(admin, 2, "too cheap")
    assert service.submit(other, 3, "second").status is VersionStatus.SUBMITTED


def test_a_decline_needs_a_reason_and_the_declined_version_never_quotes(lab):
    service, analyst, admin = lab
    service.save_draft(analyst, with_rate("0.04"))
    service.submit(analyst, 2, "note")
    with pytest.raises(InputError):
        service.decline(admin, 2, "  ")
    assert service.decline(admin, 2, "margin below zero").status is VersionStatus.DECLINED
    with pytest.raises(VersionConflict):
        service.approve(admin, 2)
    assert service.live().number == 1


def test_a_rollback_is_submitted_and_approved_like_any_version(lab):
    service, analyst, admin = lab
    service.save_draft(analyst, with_rate("0.04"))
    service.submit(analyst, 2, "note")
    service.approve(admin, 2)
    back = service.rollback(analyst, 1, "version 2 lost volume")
    assert (back.number, back.status, back.based_on) == (3, VersionStatus.SUBMITTED, 1)
    assert service.live().number == 2  # not yet
    service.approve(admin, 3)
    assert service.live().number == 3
    assert service.live().schedule.own_offer.fee.tiers[0].rate_ppm == 45_000  # version 1's terms
    service.save_draft(analyst, with_rate("0.038"))
    service.submit(analyst, 4, "note")
    service.decline(admin, 4, "no")
    with pytest.raises(VersionConflict):
        service.rollback(analyst, 4, "a declined version was never live")


def test_a_bad_document_or_a_bad_note_saves_nothing(portal, lab):
    service, analyst, _ = lab
    service.live()
    for bad in (with_rate("1.5"), "{", "[]", with_rate("0.04").replace('"direct"', '"alipay"', 1), "x" * 70_000):
        with pytest.raises(PricingError) as caught:
            service.save_draft(analyst, bad)
        assert caught.value.params["problems"]
    with pytest.raises(InputError):
        service.save_draft(analyst, with_rate("0.04"), "x" * 501)
    with UnitOfWork(portal.engine) as uow:
        assert [r.number for r in uow.session.exec(select(PricingVersion)).all()] == [1]
    # a note keeps to one line, without control characters, numbers masked (core.domain.notes)
    saved = service.save_draft(analyst, with_rate("0.04"), "two\nlines \x1b[31m for 13800138000")
    assert saved.note == "two lines [31m for 138****8000"


def test_only_the_author_edits_or_submits_a_draft(portal, lab):
    service, analyst, admin = lab
    service.save_draft(analyst, with_rate("0.04"))
    with pytest.raises(NotAllowed):
        service.save_draft(admin, with_rate("0.038"), number=2)
    with pytest.raises(NotAllowed):
        service.submit(admin, 2, "not mine")
    assert service.save_draft(analyst, with_rate("0.038"), number=2).status is VersionStatus.DRAFT


def test_consumers_and_operators_cannot_touch_pricing(portal, lab):
    service, _, _ = lab
    consumer = portal.consumer(1).who
    operator = portal.operator("op.one")
    for caller in (consumer, operator):
        with pytest.raises(NotAllowed):
            service.save_draft(caller, with_rate("0.04"))
        with pytest.raises(NotAllowed):
            service.versions(caller)
        with pytest.raises(NotAllowed):
            service.rollback(caller, 1, "x")


def test_a_version_that_does_not_exist_is_a_clear_error(lab):
    service, analyst, admin = lab
    for call in (lambda: service.submit(analyst, 7, "x"), lambda: service.approve(admin, 7)):
        with pytest.raises(InputError) as caught:
            call()
        assert caught.value.key == "error.pricing.no_version"


def test_the_command_line_runs_the_whole_workflow_and_refuses_bad_input_in_one_line(monkeypatch, tmp_path, capsys):
    built = cli_services(monkeypatch, tmp_path)
    for role, name in (("analyst", "ana.cli"), ("admin", "ad.cli")):
        built.identity.create_staff(role, name, PASSWORD)
    draft = tmp_path / "draft.json"
    draft.write_text(with_rate("0.04"), encoding="utf-8")
    assert run_cli(capsys, "pricing", "draft", "--as", "ana.cli", "--file", str(draft))[0] == 0
    assert run_cli(capsys, "pricing", "submit", "2", "--as", "ana.cli", "--note", "4%")[0] == 0
    code, _, err = run_cli(capsys, "--lang", "en", "pricing", "approve", "2", "--as", "ana.cli")
    assert (code, err.strip()) == (2, "error: Only an admin approves or declines a pricing version.")
    assert run_cli(capsys, "pricing", "approve", "2", "--as", "ad.cli")[0] == 0
    code, out, _ = run_cli(capsys, "pricing", "list", "--as", "ad.cli", "--json")
    assert [(v["number"], v["status"]) for v in json.loads(out)] == [(2, "live"), (1, "retired")]
    assert json.loads(run_cli(capsys, "pricing", "show", "2", "--as", "ana.cli")[1]) == json.loads(with_rate("0.04"))
    for content in (b"\xff\xfe", b"{}", with_rate("-1").encode()):
        draft.write_bytes(content)
        code, out, err = run_cli(capsys, "--lang", "en", "pricing", "draft", "--as", "ana.cli", "--file", str(draft))
        assert code == 2 and out == "" and err.startswith("error: The pricing document cannot be used:")
        assert "Traceback" not in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(capsys, "pricing", "draft", "--as", "ana.cli", "--file", str(tmp_path / "none.json"))
    assert code == 2 and "Traceback" not in err
    listed = json.loads(run_cli(capsys, "pricing", "list", "--as", "ana.cli", "--json")[1])
    assert [v["number"] for v in listed] == [2, 1]  # nothing was saved


def test_pricing_simulate_prints_the_json_contract_the_same_for_the_same_seed(monkeypatch, tmp_path, capsys):
    cli_services(monkeypatch, tmp_path)
    argv = ("pricing", "simulate", "--population", "5000", "--seed", "7", "--json")
    code, out, _ = run_cli(capsys, *argv)
    figures = json.loads(out)
    assert code == 0
    assert set(figures) == {
        "population", "win_rate", "volume_fen", "revenue_fen", "cost_fen", "margin_fen", "user_surplus_fen", "seconds"
    }  # fmt: skip
    assert figures["population"] == 5000 and 0 < figures["win_rate"] < 1
    assert figures["margin_fen"] == figures["revenue_fen"] - figures["cost_fen"]
    again = json.loads(run_cli(capsys, *argv)[1])
    assert {k: v for k, v in again.items() if k != "seconds"} == {k: v for k, v in figures.items() if k != "seconds"}
    cheaper = tmp_path / "cheaper.json"
    cheaper.write_text(with_rate("0.02").replace('"0.035"', '"0.02"').replace('"0.03"', '"0.02"'), encoding="utf-8")
    drafted = json.loads(run_cli(capsys, *argv, "--schedule", str(cheaper))[1])
    assert drafted["win_rate"] > figures["win_rate"]  # a cheaper offer wins more users
    cheaper.write_text("{", encoding="utf-8")
    code, out, err = run_cli(capsys, "--lang", "en", *argv, "--schedule", str(cheaper))
    assert code == 2 and out == "" and err.startswith("error: The pricing document cannot be used:")
    code, _, err = run_cli(capsys, "--lang", "en", "pricing", "simulate", "--population", "2000000")
    assert (code, err.strip()) == (2, "error: The population has 1 to 1,000,000 simulated users.")


def test_a_live_version_still_quotes_after_the_market_moves_but_a_draft_must_fit_the_new_market(portal):
    market = dict(portal.quotes.market_terms().catalog.by_id())
    market.pop("cmb_life")  # a channel gone from the catalog since the version was approved ...
    market["new_pay"] = dataclasses.replace(market["alipay"], id="new_pay")  # ... and one added
    moved = PricingService(
        portal.engine, AuditLog(portal.clock), lambda: market, SHIPPED, calendar=portal.quotes.calendar
    )
    assert moved.live().number == 1  # quotes go on: the gone channel's cost is left out
    assert "cmb_life" not in moved.live().schedule.costs
    assert moved.partner_fee_fen("new_pay", 50_000) == 0  # no cost known for the new channel yet
    assert moved.partner_fee_fen("alipay", 50_000) == 300  # 0.6% of 500 CNY
    analyst = staff(portal, "analyst", "ana.moved")
    with pytest.raises(PricingError) as caught:
        moved.save_draft(analyst, with_rate("0.04"))  # a new draft is checked against today's market
    assert any("new_pay" in p for p in caught.value.params["problems"])


def test_only_a_retired_version_can_be_rolled_back_to_and_each_decision_records_what_it_decided(portal, lab):
    service, analyst, admin = lab
    service.save_draft(analyst, with_rate("0.04"))
    service.submit(analyst, 2, "note")
    service.approve(admin, 2)
    with pytest.raises(VersionConflict) as caught:
        service.rollback(analyst, 2, "already live")
    assert caught.value.key == "error.pricing.rollback_target"
    with UnitOfWork(portal.engine) as uow:
        records = uow.session.exec(select(AuditRecord).where(AuditRecord.subject == "2")).all()
        details = {r.action: json.loads(r.detail) for r in records}
    digest = hashlib.sha256(with_rate("0.04").encode()).hexdigest()
    assert details["pricing_submit"]["sha256"] == details["pricing_approve"]["sha256"] == digest
