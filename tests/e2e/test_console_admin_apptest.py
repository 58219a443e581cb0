"""The deny list, audit trail and staff pages under AppTest, each as the role it is for: an operator
adds a number (shown masked, never in full) and asks for its removal, a second operator agrees;
the audit page verifies the chain, searches and exports (audited); an admin creates an account
whose holder sets their password through the one-time link, which then works no more. And each
page refuses the roles it is not for."""

from __future__ import annotations

import secrets

import pytest
from sqlmodel import select
from streamlit.testing.v1 import AppTest

from core.bootstrap import shared
from core.domain.access import Principal, Role
from core.persistence.tables import AuditRecord, DenyEntry, User
from core.persistence.uow import UnitOfWork
from tests.support.apptest import open_app, open_page, run_alone, shown, signed_in_as

PASSWORD = "violet tractor under seven moons"


def widget(widgets, label: str):
    return next(w for w in widgets if w.label == label)


def button(at: AppTest, label: str):
    return next(b for b in at.button if b.label == label)


def test_adding_what_is_listed_says_so_and_a_refused_value_stays_to_be_put_right():
    """The Add button acts in its callback (a double click cannot cut it short, nor send emptied
    fields); a second add of the same number says it was listed, and a bad device index keeps
    what was typed and names the problem."""
    phone = f"136{secrets.randbelow(10**8):08d}"
    at = open_page("pages/console/deny_list.py", signed_in_as("operator"))
    for said in ("已加入", "已在黑名单中"):
        widget(at.selectbox, "类型").set_value("number")
        widget(at.text_input, "值").input(phone)
        widget(at.text_input, "原因").input("reported as stolen")
        button(at, "加入").click().run()
        assert any(said in s.value for s in at.success), [e.value for e in at.error]
        assert widget(at.text_input, "值").value == ""  # emptied once it is on the list
    widget(at.selectbox, "类型").set_value("device")
    widget(at.text_input, "值").input("not-an-index")
    widget(at.text_input, "原因").input("a bad device")
    button(at, "加入").click().run()
    assert any("64 位索引" in e.value for e in at.error)
    assert widget(at.text_input, "值").value == "not-an-index"


def test_an_operator_adds_a_number_masked_and_a_second_operator_agrees_to_its_removal():
    phone = f"136{secrets.randbelow(10**8):08d}"
    masked = f"{phone[:3]}****{phone[-4:]}"
    maker, checker = signed_in_as("operator"), signed_in_as("operator")

    at = open_page("pages/console/deny_list.py", maker)
    assert "黑名单" in at.title[0].value
    widget(at.selectbox, "类型").set_value("number")
    widget(at.text_input, "值").input(phone)
    widget(at.text_input, "原因").input("reported as stolen")
    button(at, "加入").click().run()
    assert not at.exception
    assert any("已加入" in s.value for s in at.success), [e.value for e in at.error]
    assert masked in shown(at) and phone not in shown(at)

    entry = widget(at.selectbox, "条目")
    listed = shared().deny_list.entries(Principal(maker["sub"], Role.OPERATOR))
    entry.set_value(next(e.key for e in listed if e.display == masked))  # the list's entry, by its key
    widget(at.text_input, "移除原因").input("owner proved it")
    button(at, "申请移除").click().run()
    assert any("等待第二位运营人员" in s.value for s in at.success), [e.value for e in at.error]

    other = open_page("pages/console/deny_list.py", checker)
    assert masked in shown(other) and phone not in shown(other) and "owner proved it" in shown(other)
    request = next(
        r for r in shared().deny_list.pending(Principal(checker["sub"], Role.OPERATOR)) if r.detail["display"] == masked
    )
    next(b for b in other.button if b.key == f"agree_{request.id}").click().run()
    assert any("已同意" in s.value for s in other.success), [e.value for e in other.error]
    with UnitOfWork(shared().engine) as uow:
        assert uow.session.exec(select(DenyEntry).where(DenyEntry.masked == masked)).first() is None
        records = uow.session.exec(select(AuditRecord).where(AuditRecord.action.in_(["deny.add", "deny.remove"]))).all()
    assert records and not any(phone in r.detail or phone in r.subject for r in records)


def test_the_audit_page_verifies_searches_and_exports_as_an_audited_act():
    user = signed_in_as("operator")
    who = Principal(user["sub"], Role.OPERATOR)
    phone = f"136{secrets.randbelow(10**8):08d}"
    shared().deny_list.add(who, "number", phone, "reported as stolen")  # a record of this operator's
    at = open_page("pages/console/audit.py", user)

    button(at, "校验哈希链").click().run()
    assert any("哈希链完整" in s.value for s in at.success), [e.value for e in at.error]

    widget(at.text_input, "操作人").input(user["sub"])
    button(at, "搜索").click().run()
    assert not at.exception
    (table,) = at.dataframe
    assert list(table.value["操作"]) == ["deny.add"] and phone not in shown(at) and phone[-4:] in shown(at)

    button(at, "准备 CSV 导出(仅含脱敏内容,会记入审计)").click().run()
    assert not at.exception
    with UnitOfWork(shared().engine) as uow:
        exports = uow.session.exec(
            select(AuditRecord).where(AuditRecord.action == "audit.export", AuditRecord.actor == user["sub"])
        ).all()
    assert len(exports) == 1 and exports[0].detail.count(user["sub"]) == 1


def test_an_admin_creates_an_account_whose_holder_sets_a_password_through_the_link_once():
    admin = signed_in_as("admin")
    username = f"new.op{secrets.randbelow(10**6)}"
    at = open_page("pages/console/staff.py", admin)
    assert "员工账户" in at.title[0].value and at.dataframe

    widget(at.selectbox, "角色").set_value("operator")
    widget(at.text_input, "用户名").input(username)
    button(at, "创建并生成设置链接").click().run()
    assert any("账户已创建" in s.value for s in at.success), [e.value for e in at.error]
    (code,) = [c.value for c in at.code if "staff-setup?token=" in c.value]
    token = code.split("token=")[1]
    at.run()
    assert not [c for c in at.code if token in c.value]  # shown once

    setup = open_page("pages/staff_setup.py", token=token)
    assert username in shown(setup)
    widget(setup.text_input, "新密码").input(PASSWORD)
    widget(setup.text_input, "再次输入新密码").input(PASSWORD)
    button(setup, "设置密码").click().run()
    assert any(username in s.value for s in setup.success), [e.value for e in setup.error]
    who = shared().identity.sign_in_with_password(username, PASSWORD, "10.9.9.9")
    assert who.role is Role.OPERATOR

    again = open_page("pages/staff_setup.py", token=token)
    assert any("链接无效" in e.value for e in again.error) and not again.text_input


def test_an_admin_disables_an_account_from_the_staff_page():
    admin = signed_in_as("admin")
    target = signed_in_as("analyst")
    at = open_page("pages/console/staff.py", admin)
    accounts = widget(at.selectbox, "账户")
    (index,) = [i for i, label in enumerate(accounts.options) if label.startswith(f"{target_name(target)} ·")]
    accounts.set_value(index).run()
    next(b for b in at.button if b.key == f"disable_{target['sub']}").click().run()
    assert any("已停用" in s.value for s in at.success), [e.value for e in at.error]
    assert shared().identity.check_session(target["sub"], target["auth_time"]) is None


def target_name(user: dict) -> str:
    with UnitOfWork(shared().engine) as uow:
        return uow.session.get(User, user["sub"]).username


@pytest.mark.parametrize(
    ("role", "page"),
    [
        *((role, page) for role in (None, "consumer", "analyst") for page in ("deny_list", "audit", "staff")),
        ("operator", "staff"),
    ],
)
def test_a_page_is_not_registered_for_a_role_it_is_not_for(role, page):
    at = open_app(user=signed_in_as(role) if role else None)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page(f"pages/console/{page}.py")


@pytest.mark.parametrize("page", ["deny_list", "audit", "staff"])
def test_a_page_run_without_its_role_shows_nothing_but_its_title(page):
    at = run_alone(f"pages/console/{page}.py")
    assert not at.exception
    assert not at.dataframe and not at.button and not at.text_input


def test_the_setup_page_without_a_token_says_the_link_does_not_work():
    at = open_page("pages/staff_setup.py")
    assert any("链接无效" in e.value for e in at.error) and not at.text_input
