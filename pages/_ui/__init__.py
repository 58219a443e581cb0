"""Shared UI pieces: the services handle, the translator, charts and table views."""
