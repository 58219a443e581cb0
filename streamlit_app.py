"""Router and frame: page config, language switch, navigation by role, footer.

pandas and plotly are imported here, once, before any page runs: two pages importing them at
the same moment on a cold start race into a "partially initialized module" error.
"""

import pandas  # noqa: F401
import plotly.graph_objects  # noqa: F401
import streamlit as st

from pages._ui import frame
from pages._ui.auth import PRINCIPAL_KEY, current_principal
from pages._ui.state import language_switch, services, translator

st.set_page_config(page_title="话费余额回收比价 · Balance recovery", page_icon="📱", layout="wide")

with st.sidebar:
    language_switch()
t = translator()
who = st.session_state[PRINCIPAL_KEY] = current_principal()

pages = [
    st.Page("pages/compare.py", title=t("nav.compare"), icon=":material/compare_arrows:", default=True),
    st.Page("pages/methodology.py", title=t("nav.methodology"), icon=":material/menu_book:", url_path="methodology"),
]
if who is None:
    pages.append(st.Page("pages/sign_in.py", title=t("nav.sign_in"), icon=":material/login:", url_path="sign-in"))
else:
    if who.role == "consumer":
        pages += [
            st.Page(
                "pages/recover.py", title=t("nav.recover"), icon=":material/currency_exchange:", url_path="recover"
            ),
            st.Page(
                "pages/my_recoveries.py",
                title=t("nav.my_recoveries"),
                icon=":material/timeline:",
                url_path="my-recoveries",
            ),
        ]
    pages.append(st.Page("pages/account.py", title=t("nav.account"), icon=":material/person:", url_path="account"))
if services().sandbox_sms is not None:
    pages.append(
        st.Page("pages/sandbox_sms.py", title=t("nav.sandbox_sms"), icon=":material/sms:", url_path="sandbox-sms")
    )

page = st.navigation(pages)
page.run()
frame.footer(t)
