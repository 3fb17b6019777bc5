"""The database gate: many concurrent callers, a small pool, no stall and no 5xx.

The regression this guards: a request's session held a pooled connection between its
thread-pool calls, so with the threads all waiting on the pool nothing moved until the
pool's time-out answered 503 (4 requests/s under 100 clients). Here a real uvicorn server on
loopback gets 60 concurrent authenticated requests with a pool of 2 connections and a 3 s
pool time-out: without the gate they deadlock and fail; with it every one is answered 200.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import httpx
import pytest
import uvicorn

from server.api.admission import DatabaseGate
from server.config import ServerSettings
from server.db import upgrade_database
from server.errors import ServerBusyError
from server.main import create_app

from ..factories import ADMIN_TOKEN, AGENT_TOKEN, CONTROLLER, ENROLLMENT_TOKEN


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture()
def live_server(tmp_path: Path) -> Iterator[str]:
    """The app under uvicorn in a thread on 127.0.0.1, pool 2 + 0, stopped afterwards."""
    url = f"sqlite:///{tmp_path / 'server.sqlite'}"
    upgrade_database(url)
    settings = ServerSettings(
        database_url=url, enrollment_token=ENROLLMENT_TOKEN, admin_token=ADMIN_TOKEN,
        agent_token=AGENT_TOKEN, master_key_path=tmp_path / "master.key",
        signing_key_path=tmp_path / "signing.pem", db_pool_size=2, db_max_overflow=0,
        db_pool_timeout=3.0, db_queue_wait=60.0, **CONTROLLER,
    )  # fmt: skip
    port = _free_port()
    config = uvicorn.Config(create_app(settings), host="127.0.0.1", port=port,
                            log_level="warning", access_log=False)  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline:
            pytest.fail("the server did not start within 30 s")
        time.sleep(0.05)
    try:
        yield base
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def test_sixty_concurrent_callers_on_two_connections_are_all_answered(live_server: str) -> None:
    async def main() -> list[int]:
        limits = httpx.Limits(max_connections=60)
        async with httpx.AsyncClient(base_url=live_server, timeout=60, limits=limits) as http:
            calls = [http.get("/api/v1/ledgers", headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
                     for _ in range(40)]  # fmt: skip
            calls += [http.get("/api/v1/health") for _ in range(20)]
            return [r.status_code for r in await asyncio.gather(*calls)]

    started = time.monotonic()
    statuses = asyncio.run(main())

    assert statuses == [200] * 60
    assert time.monotonic() - started < 30


def test_the_gate_admits_up_to_its_slots_then_queues_in_order() -> None:
    order: list[int] = []

    async def main() -> None:
        gate = DatabaseGate(2, wait_s=5, queue_limit=10)

        async def hold(i: int) -> None:
            async with gate.slot():
                order.append(i)
                assert gate.in_use <= 2
                await anyio.sleep(0.05)

        async with anyio.create_task_group() as tasks:
            for i in range(6):
                tasks.start_soon(hold, i)
                await anyio.sleep(0)

    anyio.run(main)
    assert order == list(range(6))


def test_a_full_queue_or_a_long_wait_is_a_503_with_retry_after() -> None:
    async def main() -> tuple[int, int]:
        gate = DatabaseGate(1, wait_s=0.2, queue_limit=1)
        seen: list[int] = []

        async def waiter() -> None:
            try:
                async with gate.slot():
                    pass
            except ServerBusyError as exc:
                seen.append(exc.retry_after)

        async with gate.slot():
            async with anyio.create_task_group() as tasks:
                tasks.start_soon(waiter)  # queued, then times out after 0.2 s
                await anyio.sleep(0.01)
                with pytest.raises(ServerBusyError) as full:  # the queue (1) is full
                    async with gate.slot():
                        pass
        return full.value.retry_after, seen[0]

    full_retry, timeout_retry = anyio.run(main)
    assert full_retry >= 1 and timeout_retry >= 1


def test_the_gate_refuses_nonsense_limits() -> None:
    with pytest.raises(ValueError, match="slots"):
        DatabaseGate(0, wait_s=1, queue_limit=1)
