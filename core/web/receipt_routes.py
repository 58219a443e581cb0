"""The receipt key, published: anyone holding a receipt checks it against this key set."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.services.receipts import ReceiptService

JWKS_PATH = "/receipts/jwks"


def receipt_routes(receipts: Callable[[], ReceiptService]) -> list[Route]:
    async def jwks(request: Request) -> JSONResponse:
        return JSONResponse(receipts().jwks(), headers={"Cache-Control": "public, max-age=300"})

    return [Route(JWKS_PATH, jwks)]
