"""A page that shows hostile text through `plain` in each kind of Markdown element the console
uses (the browser test reads what Chromium rendered)."""

import sys
from pathlib import Path

import streamlit as st

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # the project, however it is started
from pages._ui.plain_text import plain

HOSTILE = st.query_params.get("text", "")
st.markdown("MARKDOWN " + plain(HOSTILE))
st.caption("CAPTION " + plain(HOSTILE))
st.info("INFO " + plain(HOSTILE))
st.markdown("DONE")
