"""Sandbox partners: plain routing functions `(httpx.Request) -> httpx.Response`, mounted
in-process with `httpx.MockTransport` or served on loopback by `python -m core sandbox`."""
