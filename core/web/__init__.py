"""HTTP routes the portal's own server carries beside Streamlit (Starlette; no streamlit here)."""
