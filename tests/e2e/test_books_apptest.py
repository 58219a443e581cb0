"""The books page under AppTest: an operator sees the trial balance (yuan, the total zero), the
balances day by day and the export buttons; a consumer's address for it says it needs another
role, and shows nothing of the books."""

from __future__ import annotations

from core.bootstrap import shared
from core.domain.access import Principal, Role
from tests.support.apptest import booked_recovery, open_app, open_by_address, signed_in_as

PAGE = "pages/console/books.py"


def test_an_operator_sees_the_trial_balance_adding_up_to_zero():
    booked_recovery()
    user = signed_in_as("operator")
    at = open_app(user=user)
    at.switch_page(PAGE).run()
    assert not at.exception, [e.value for e in at.exception]

    assert at.title[0].value == "账簿"
    table = at.dataframe[0].value
    assert list(table.columns) == ["科目", "借方(元)", "贷方(元)", "余额(元)"]
    rows = {row["科目"]: row for _, row in table.iterrows()}
    assert rows["合计"]["余额(元)"] == "0.00"
    assert "应收运营商款 (carrier_receivable)" in rows
    assert rows["合计"]["借方(元)"] == rows["合计"]["贷方(元)"] != "0.00"
    trial = shared().books.trial_balance(Principal(user["sub"], Role.OPERATOR))
    receivable = next(a for a in trial.accounts if a.account == "carrier_receivable")
    assert rows["应收运营商款 (carrier_receivable)"]["余额(元)"] == f"{receivable.balance_fen / 100:,.2f}"
    assert any("余额合计为零" in s.value for s in at.success)
    assert len(at.get("plotly_chart")) == 1
    assert [b.label for b in at.get("download_button")] == ["下载 beancount", "下载 CSV"]
    assert not at.error


def test_the_page_speaks_english_too():
    booked_recovery()
    at = open_app(user=signed_in_as("admin"), lang="en")
    at.switch_page(PAGE).run()
    assert not at.exception
    assert at.title[0].value == "Books"
    assert "Total" in set(at.dataframe[0].value["Account"])


def test_a_consumer_is_told_the_books_need_another_role():
    booked_recovery()
    at = open_app(user=signed_in_as("consumer"))
    open_by_address(at, "books")
    assert not at.exception

    assert at.title[0].value == "账簿"
    assert any("运营人员" in i.value for i in at.info)  # "for operators and admins"
    assert len(at.dataframe) == 0 and len(at.get("plotly_chart")) == 0 and len(at.get("download_button")) == 0
