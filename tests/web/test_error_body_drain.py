"""drain_request_body: an error decided mid-upload reads out the rest of the body, within bounds."""

from __future__ import annotations

import asyncio

from quart import Quart, request
from quart.wrappers.request import Body

from identix_stream.web.errors import drain_request_body


def _drain(body: bytes, max_bytes: int) -> bool:
    app = Quart(__name__)

    async def run() -> bool:
        async with app.test_request_context("/upload", method="POST", data=body):
            return await drain_request_body(max_bytes=max_bytes, max_seconds=5.0)

    return asyncio.run(run())


def test_a_body_within_the_bound_is_read_out() -> None:
    assert _drain(b"x" * 10_000, max_bytes=20_000) is True
    assert _drain(b"", max_bytes=0) is True


def test_a_body_past_the_bound_is_left_for_the_connection_to_close() -> None:
    assert _drain(b"x" * 10_000, max_bytes=9_999) is False


def test_a_client_that_stops_sending_is_not_waited_for_past_the_time_bound() -> None:
    app = Quart(__name__)

    async def run() -> bool:
        async with app.test_request_context("/upload", method="POST"):
            stalled = Body(expected_content_length=None, max_content_length=None)
            stalled.append(b"first chunk, then nothing")
            request.body = stalled
            return await drain_request_body(max_bytes=1_000_000, max_seconds=0.2)

    assert asyncio.run(run()) is False


def test_outside_a_request_there_is_nothing_to_drain() -> None:
    assert asyncio.run(drain_request_body()) is True
