"""Admission to the database: at most as many requests hold a session as the pool has slots.

Why this exists (measured with ``benchmarks/load.py``, 100 clients, one worker): a request's
session checks a connection out in one thread-pool call (the bearer token lookup) and keeps
it while waiting for the next call (the route). With AnyIO's 40 threads all blocked in
SQLAlchemy's pool (5 + 10 connections) and the connections held by requests waiting for a
thread, nothing moved until the pool's 30 s time-out answered 503: 4 requests/s where plain
FastAPI on the same pool served 299/s.

The gate admits a request to a session only when a slot is free, and waits for the slot on
the event loop (no thread, no connection held). Admitted requests never wait on the pool,
because slots equal the pool's size plus overflow, and the thread pool is sized above the
slots so an admitted request always finds a thread. A request that waits longer than the
queue time-out, or arrives when the queue is full, gets 503 ``server_busy`` with
``Retry-After`` — the documented limit of docs/deploy.md, never a stall.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import anyio

from ..errors import ServerBusyError

#: Threads beyond the slots, for sync work that holds no session (catalogue, settings...).
SPARE_THREADS = 16


class DatabaseGate:
    """A per-process limit on requests holding a database session.

    Parameters
    ----------
    slots : int
        Requests that may hold a session at once (the pool's size plus overflow).
    wait_s : float
        Longest a request waits for a slot before 503 ``server_busy``.
    queue_limit : int
        Most requests waiting at once; one more is answered 503 at once.
    """

    def __init__(self, slots: int, *, wait_s: float, queue_limit: int) -> None:
        if slots < 1 or wait_s <= 0 or queue_limit < 0:
            raise ValueError("slots >= 1, wait_s > 0 and queue_limit >= 0 are required")
        self.slots = slots
        self.wait_s = wait_s
        self.queue_limit = queue_limit
        self._semaphore = anyio.Semaphore(slots)
        self._waiting = 0

    @property
    def waiting(self) -> int:
        """Requests waiting for a slot now."""
        return self._waiting

    @property
    def in_use(self) -> int:
        """Slots held now."""
        return self.slots - self._semaphore.value

    @asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        """Hold one slot for the body of the ``async with``.

        Raises
        ------
        ServerBusyError
            If the queue is full, or no slot freed within ``wait_s``.
        """
        if self._semaphore.value == 0 and self._waiting >= self.queue_limit:
            raise ServerBusyError(retry_after=1)
        self._waiting += 1
        try:
            with anyio.fail_after(self.wait_s):
                await self._semaphore.acquire()
        except TimeoutError:
            raise ServerBusyError(retry_after=max(1, round(self.wait_s / 10))) from None
        finally:
            self._waiting -= 1
        try:
            yield
        finally:
            self._semaphore.release()


def size_thread_pool(slots: int) -> int:
    """Raise AnyIO's default thread limit so every admitted request finds a thread.

    Parameters
    ----------
    slots : int
        The gate's slots.

    Returns
    -------
    int
        The thread limit now in force (never lowered).
    """
    limiter = anyio.to_thread.current_default_thread_limiter()
    limiter.total_tokens = max(int(limiter.total_tokens), slots + SPARE_THREADS)
    return int(limiter.total_tokens)
