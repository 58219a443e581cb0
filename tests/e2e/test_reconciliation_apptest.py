"""The Reconciliation page under AppTest: an operator sees the breaks of a statement imported
today and resolves one with a reason; a consumer and an analyst who open its address get the
"needs another role" notice and no data."""

from __future__ import annotations

import datetime as dt
import secrets

import pytest

from core.bootstrap import shared
from core.domain.access import Principal, Role
from core.domain.calendar import SHANGHAI
from core.domain.statements import StatementRow, write_statement
from core.statement_dialect_files import dialect_for
from tests.support.apptest import open_app, open_page, run_alone, shown, signed_in_as

PAGE = "pages/console/reconciliation.py"


def foreign_statement() -> tuple[bytes, str]:
    """An Alipay statement of today with one row that is not ours."""
    reference = f"OTHER-MERCHANT-{secrets.token_hex(6)}"
    now = dt.datetime.now(SHANGHAI).replace(microsecond=0)
    row = StatementRow(now, "2088" + secrets.token_hex(8), reference, "payout", "success", 12_300)
    return write_statement([row], dialect_for("alipay")), reference


def test_an_operator_sees_the_breaks_and_resolves_one_with_a_reason():
    user = signed_in_as("operator")
    data, reference = foreign_statement()
    report = shared().reconciliation.reconcile(Principal(user["sub"], Role.OPERATOR), "alipay", data)
    assert [b.kind for b in report.breaks] == ["missing_in_ledger"]

    at = open_page(PAGE, user)
    assert "对账" in at.title[0].value
    partners = next(s for s in at.selectbox if s.label == "合作方").options
    assert "支付宝" in partners and not [p for p in partners if "recon.partner" in p]  # a name each, never a key
    assert reference in shown(at) and "账簿缺失" in shown(at)
    picker = next(s for s in at.selectbox if s.label == "差异")
    picker.set_value(next(i for i, label in enumerate(picker.options) if reference in label))
    next(s for s in at.selectbox if s.label == "原因").set_value("not_ours")
    next(t for t in at.text_input if t.label == "备注").input("another merchant's order")
    next(b for b in at.button if b.label == "提交").click().run()
    assert not at.exception
    assert any("差异已处理" in s.value for s in at.success), [e.value for e in at.error]
    assert all(
        b.reference != reference for b in shared().reconciliation.open_breaks(Principal(user["sub"], Role.OPERATOR))
    )


@pytest.mark.parametrize("role", [None, "consumer", "analyst"])
def test_the_page_is_not_in_the_menu_of_a_role_it_is_not_for(role):
    at = open_app(user=signed_in_as(role) if role else None)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(PAGE)


def test_the_page_run_without_its_role_shows_nothing_but_its_title():
    at = run_alone(PAGE)
    assert not at.exception
    assert not at.dataframe and not at.button and not at.selectbox
