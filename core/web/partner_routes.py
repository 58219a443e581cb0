"""Routes partners call on the portal's own server: payout notifications."""

from __future__ import annotations

from collections.abc import Callable

from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from core.adapters.payouts import NOTIFY_PATH, SIGNATURE_HEADER
from core.services.payout_notices import PayoutNoticeService

MAX_NOTICE_BYTES = 16_384


class _TooLarge(Exception):
    pass


def _stated_length_refusal(request: Request) -> JSONResponse | None:
    """Refuse by the Content-Length header alone, before a byte of the body is read."""
    stated = request.headers.get("content-length")
    if stated is None:  # chunked: the stream is cut off once past the limit instead
        return None
    if not (stated.isascii() and stated.isdigit()):
        return JSONResponse({"error": "bad_content_length"}, status_code=400)
    significant = stated.lstrip("0")
    if len(significant) > len(str(MAX_NOTICE_BYTES)) or int(significant or "0") > MAX_NOTICE_BYTES:
        return JSONResponse({"error": "too_large"}, status_code=413)
    return None


async def _read_at_most(request: Request, limit: int) -> bytes:
    """The body as it arrives, stopping (with `_TooLarge`) as soon as more than `limit` bytes
    came: a body that lies about its length, or has none, is never buffered whole."""
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise _TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def partner_routes(notices: Callable[[], PayoutNoticeService]) -> list[Route]:
    async def payout_notice(request: Request) -> JSONResponse:
        service = notices()
        refusal = _stated_length_refusal(request)
        if refusal is not None:
            return refusal
        try:
            body = await _read_at_most(request, MAX_NOTICE_BYTES)
        except _TooLarge:
            return JSONResponse({"error": "too_large"}, status_code=413)
        except ClientDisconnect:  # the partner gave up half-way: it will send the notice again
            return JSONResponse({"error": "incomplete"}, status_code=400)
        answer = await run_in_threadpool(
            service.receive, request.path_params["channel"], body, request.headers.get(SIGNATURE_HEADER)
        )
        return JSONResponse(answer.body, status_code=answer.status_code)

    return [Route(NOTIFY_PATH, payout_notice, methods=["POST"])]
