"""Routes partners call on the portal's own server: payout notifications."""

from __future__ import annotations

from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.adapters.payouts import NOTIFY_PATH, SIGNATURE_HEADER
from core.services.payout_notices import PayoutNotices

MAX_NOTICE_BYTES = 16_384


def partner_routes(notices: Callable[[], PayoutNotices | None]) -> list[Route]:
    async def payout_notice(request: Request) -> JSONResponse:
        service = notices()
        if service is None:
            return JSONResponse({"error": "recoveries are not enabled"}, status_code=404)
        body = await request.body()
        if len(body) > MAX_NOTICE_BYTES:
            return JSONResponse({"error": "too_large"}, status_code=413)
        answer = await run_in_threadpool(
            service.receive, request.path_params["channel"], body, request.headers.get(SIGNATURE_HEADER)
        )
        return JSONResponse(answer.body, status_code=answer.status_code)

    return [Route(NOTIFY_PATH, payout_notice, methods=["POST"])]
