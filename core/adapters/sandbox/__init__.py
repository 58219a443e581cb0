"""Sandbox partners: plain routing functions `(httpx.Request) -> httpx.Response`, mounted
in-process with `httpx.MockTransport` or served on loopback by `python -m core sandbox`."""

from __future__ import annotations

import json
from typing import Any

import httpx


def posted_object(request: httpx.Request) -> dict[str, Any] | None:
    """The JSON object a POST carries (an empty body is an empty object; any other request has
    none): None when the body is not JSON, or JSON but not an object, as a partner answers 400."""
    if request.method != "POST":
        return {}
    try:
        body = json.loads(request.content or b"{}")
    except ValueError:  # not JSON, or not UTF-8
        return None
    return body if isinstance(body, dict) else None


def bad_request(error: str, detail: str = "") -> httpx.Response:
    """A 400 answer with the partner's error code (and what was wrong, for a knob)."""
    return httpx.Response(400, json={"error": error, **({"detail": detail} if detail else {})})
