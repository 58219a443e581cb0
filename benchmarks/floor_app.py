"""Floor page for `benchmarks/page.py`: the least a balance-comparison page can be in Streamlit.

One number input, a 7-row table and one plotly line chart, all depending on the balance. Nothing
is cached, styled or translated: whatever the Compare page costs above this is the portal's own.
"""

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

FEE_RATES = (0.02, 0.04, 0.05, 0.08, 0.10, 0.12, 0.15)

balance = st.number_input("Balance (yuan)", min_value=1.0, max_value=100_000.0, value=200.0, step=10.0)

st.dataframe(
    pd.DataFrame(
        {
            "channel": [f"Channel {i + 1}" for i in range(len(FEE_RATES))],
            "fee rate": FEE_RATES,
            "net (yuan)": [round(balance * (1 - rate), 2) for rate in FEE_RATES],
        }
    ),
    hide_index=True,
)

balances = [balance * step / 20 for step in range(41)]
st.plotly_chart(go.Figure(go.Scatter(x=balances, y=[b * (1 - FEE_RATES[0]) for b in balances], mode="lines")))
