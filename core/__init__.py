"""The portal's core: domain rules, services and adapters. Nothing here imports streamlit."""
