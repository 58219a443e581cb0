"""Methodology: how every figure is computed and where each number comes from."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from core.domain.catalog import iter_provenance
from core.i18n import local_time
from pages._ui.session import services, translator

svc = services()
quotes = svc.quotes
t = translator()
terms = quotes.terms()

st.title(t("method.title"))
st.warning(t("method.disclaimer"), icon=":material/info:")

st.header(t("method.figures_title"))
st.markdown(t("method.figures"))

st.header(t("method.sources_title"))
source = quotes.snapshot.source  # the bundled catalog says where its figures come from
if source is not None:
    st.markdown(t("method.sources_intro", title=source.title, url=source.url, note=source.note.get(t.language, "")))
confirmed = {ct.channel.id: ct.confirmed_at for ct in terms.by_channel}
rows = [
    {
        t("method.col.channel"): channel.display_name(t.language),
        t("method.col.block"): t(f"method.block.{block}"),
        t("method.col.basis"): t(f"method.basis.{prov.basis.value}"),
        t("method.col.note"): prov.note[t.language],
        t("method.col.as_of"): channel.as_of.isoformat(),
        t("method.col.confirmed"): local_time(confirmed[channel.id]),
    }
    for channel, block, prov in iter_provenance(terms.catalog)
]
st.dataframe(pd.DataFrame(rows), hide_index=True, width="stretch")

st.header(t("method.live_title"))
st.markdown(t("method.live", refresh=int(svc.settings.terms_refresh_s), stale=int(svc.settings.terms_stale_after_h)))

st.header(t("method.calendar_title"))
years = sorted(quotes.calendar.schedules)
st.markdown(t("method.calendar", years=f"{years[0]}–{years[-1]}"))

st.header(t("method.phone_title"))
st.markdown(t("method.phone"))

st.header(t("method.risk_title"))
st.markdown(t("method.risk"))
risk = svc.settings.risk
st.table(
    pd.DataFrame(
        [
            {
                t("method.col.setting"): f"RISK_{name.upper()}",
                t("method.col.value"): str(getattr(risk, name)),
                t("method.col.meaning"): t(f"method.risk.{name}"),
            }
            for name in risk.__dataclass_fields__
        ]
    ).set_index(t("method.col.setting"))
)

st.header(t("method.regulation_title"))
st.markdown(t("method.regulation"))

st.header(t("method.market_title"))
st.markdown(t("method.market"))
