"""The receipt key, published: anyone holding a receipt checks it against this key set."""

from __future__ import annotations

from collections.abc import Callable

from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.services.receipts import ReceiptService

JWKS_PATH = "/receipts/jwks"


def receipt_routes(receipts: Callable[[], ReceiptService | None]) -> list[Route]:
    async def jwks(request: Request) -> JSONResponse:
        service = receipts()
        if service is None:
            return JSONResponse({"error": "receipts are not enabled"}, status_code=404)
        return JSONResponse(service.jwks(), headers={"Cache-Control": "public, max-age=300"})

    return [Route(JWKS_PATH, jwks)]
