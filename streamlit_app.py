"""Router and frame: page config, language switch, navigation by role, footer.

pandas and plotly are imported here, once, before any page runs: two pages importing them at
the same moment on a cold start race into a "partially initialized module" error.
"""

import pandas  # noqa: F401
import plotly.graph_objects  # noqa: F401
import streamlit as st

from core.domain.access import OPERATORS, STAFF, Role
from pages._ui.auth import PRINCIPAL_KEY, current_principal
from pages._ui.footer import footer
from pages._ui.navigation import MENU_KEY, access_notice
from pages._ui.session import language_switch, services, translator

st.set_page_config(page_title="话费余额回收比价 · Balance recovery", page_icon="📱", layout="wide")

with st.sidebar:
    language_switch()
t = translator()
who = st.session_state[PRINCIPAL_KEY] = current_principal()

# Every page a visitor may open is in the menu. A page they may not open is still registered,
# hidden, under its own address: opening it says in the reader's language what it needs (to sign
# in, or another role) instead of Streamlit's English "Page not found" — and shows nothing else.
RECOVER = ("pages/recover.py", "nav.recover", ":material/currency_exchange:", "recover")
MINE = ("pages/my_recoveries.py", "nav.my_recoveries", ":material/timeline:", "my-recoveries")
ACCOUNT = ("pages/account.py", "nav.account", ":material/person:", "account")
SIGN_IN = ("pages/sign_in.py", "nav.sign_in", ":material/login:", "sign-in")
PRICING = frozenset({Role.ANALYST, Role.ADMIN})  # analysts design prices; an admin approves them
# The staff's console: each page with the roles that may open it (one line per page).
CONSOLE: list[tuple[tuple[str, str, str, str], frozenset[Role]]] = [
    (("pages/console/queue.py", "nav.queue", ":material/fact_check:", "queue"), OPERATORS),
    (("pages/console/recoveries.py", "nav.recoveries", ":material/manage_search:", "recoveries"), OPERATORS),
    (("pages/console/stuck.py", "nav.stuck", ":material/hourglass_disabled:", "stuck"), OPERATORS),
    (("pages/console/metrics.py", "nav.metrics", ":material/monitoring:", "metrics"), STAFF),
    (("pages/console/deny_list.py", "nav.deny_list", ":material/block:", "deny-list"), OPERATORS),
    (("pages/console/reconciliation.py", "nav.reconciliation", ":material/rule:", "reconciliation"), OPERATORS),
    (("pages/console/audit.py", "nav.audit", ":material/receipt_long:", "audit"), OPERATORS),
    (("pages/console/books.py", "nav.books", ":material/account_balance:", "books"), OPERATORS),
    (("pages/console/staff.py", "nav.staff", ":material/badge:", "staff"), frozenset({Role.ADMIN})),
    (("pages/console/pricing.py", "nav.pricing", ":material/price_change:", "pricing-lab"), PRICING),
]


def page(spec: tuple[str, str, str, str]) -> st.Page:
    path, title, icon, url_path = spec
    return st.Page(path, title=t(title), icon=icon, url_path=url_path)


def needs(spec: tuple[str, str, str, str], what: str) -> st.Page:
    """The page's address, hidden from the menu, answering with what it needs."""
    _, title, icon, url_path = spec

    def notice() -> None:
        access_notice(t, what, t(title))

    notice.__name__ = f"needs_{what}_{url_path.replace('-', '_')}"
    hidden.append(url_path)
    return st.Page(notice, title=t(title), icon=icon, url_path=url_path, visibility="hidden")


hidden: list[str] = []

pages = [
    st.Page("pages/compare.py", title=t("nav.compare"), icon=":material/compare_arrows:", default=True),
    st.Page("pages/methodology.py", title=t("nav.methodology"), icon=":material/menu_book:", url_path="methodology"),
]


def console_page(spec: tuple[str, str, str, str], roles: frozenset[Role]) -> st.Page:
    """A console page for the roles it is for; for anyone else its address says who it is for."""
    if who is not None and who.role in roles:
        return page(spec)
    if who is None:
        return needs(spec, "sign_in")
    what = {frozenset({Role.ADMIN}): "admin", OPERATORS: "operator", PRICING: "analyst"}.get(roles, "staff")
    return needs(spec, what)


if who is None:
    pages += [page(SIGN_IN), needs(RECOVER, "sign_in"), needs(MINE, "sign_in"), needs(ACCOUNT, "sign_in")]
elif who.role is Role.CONSUMER:
    pages += [page(RECOVER), page(MINE), page(ACCOUNT)]
else:
    pages += [needs(RECOVER, "consumer"), needs(MINE, "consumer")]
pages[2:2] = [console_page(spec, roles) for spec, roles in CONSOLE]  # after Compare and Methodology
if who is not None and who.role is not Role.CONSUMER:
    pages.append(page(ACCOUNT))
if services().sandbox_sms is not None:
    pages.append(
        st.Page("pages/sandbox_sms.py", title=t("nav.sandbox_sms"), icon=":material/sms:", url_path="sandbox-sms")
    )
# A new staff member's one-time link to set their password: anyone holding it may open it.
pages.append(st.Page("pages/staff_setup.py", title=t("nav.staff_setup"), url_path="staff-setup", visibility="hidden"))
hidden.append("staff-setup")
st.session_state[MENU_KEY] = [p.title for p in pages if p.url_path not in hidden]  # what the menu shows

# expanded: an admin's menu is long enough that Streamlit would fold its last entries (the account
# among them) under "view more"; every entry a role has stays in sight
page = st.navigation(pages, expanded=True)
page.run()
footer(t)
