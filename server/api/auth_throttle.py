"""Slow down token guessing: per-client counting of failed authentications, then a lockout.

A client (its address as the server sees it) that presents ``limit`` wrong tokens within
``window_s`` seconds is refused for ``lockout_s`` seconds with 429
``too_many_failed_logins`` and ``Retry-After``, before its token is even looked up. The
moment a client is locked out is written to the audit log once (``auth.throttle``), not
every failure: an attacker must not be able to grow the log, or hold its write lock, by
guessing. The client appears in the entry only as a keyed hash of its address.

State is per worker process and in memory (bounded to ``max_clients``), so with N workers a
client gets at most N x ``limit`` tries per window; a reverse proxy's own limit is the
place for a cluster-wide one (docs/deploy.md, 'Limits').
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import OrderedDict, deque
from dataclasses import dataclass

#: Failures within the window that lock a client out.
DEFAULT_LIMIT = 20
DEFAULT_WINDOW_S = 60.0
DEFAULT_LOCKOUT_S = 300.0


@dataclass
class _Client:
    failures: deque[float]
    locked_until: float = 0.0


class FailedAuthThrottle:
    """Count failed authentications per client and lock out the persistent ones.

    Parameters
    ----------
    limit : int
        Failures within ``window_s`` that trigger a lockout.
    window_s : float
        Sliding window over which failures are counted.
    lockout_s : float
        How long a locked-out client is refused.
    max_clients : int
        Clients tracked at once (least recently seen dropped first).
    """

    def __init__(
        self,
        *,
        limit: int = DEFAULT_LIMIT,
        window_s: float = DEFAULT_WINDOW_S,
        lockout_s: float = DEFAULT_LOCKOUT_S,
        max_clients: int = 10_000,
    ) -> None:
        if limit < 1 or window_s <= 0 or lockout_s <= 0 or max_clients < 1:
            raise ValueError("limit, window_s, lockout_s and max_clients must be positive")
        self.limit = limit
        self.window_s = window_s
        self.lockout_s = lockout_s
        self.max_clients = max_clients
        self._clients: OrderedDict[str, _Client] = OrderedDict()
        self._lock = threading.Lock()
        self._salt = secrets.token_bytes(16)

    def retry_after(self, client: str, now: float) -> int:
        """Seconds the client must still wait (0 when it is not locked out).

        Parameters
        ----------
        client : str
            The client's address.
        now : float
            A monotonic time in seconds.

        Returns
        -------
        int
            Whole seconds left of the lockout, at least 1 while locked.
        """
        with self._lock:
            state = self._clients.get(client)
            if state is None or state.locked_until <= now:
                return 0
            return max(1, int(state.locked_until - now + 0.999))

    def fail(self, client: str, now: float) -> bool:
        """Record one failed authentication; return True when it starts a lockout.

        Parameters
        ----------
        client : str
            The client's address.
        now : float
            A monotonic time in seconds.

        Returns
        -------
        bool
            True exactly once per lockout: on the failure that reaches the limit.
        """
        with self._lock:
            state = self._clients.get(client)
            if state is None:
                state = _Client(failures=deque())
                self._clients[client] = state
                while len(self._clients) > self.max_clients:
                    self._clients.popitem(last=False)
            self._clients.move_to_end(client)
            while state.failures and state.failures[0] <= now - self.window_s:
                state.failures.popleft()
            state.failures.append(now)
            if len(state.failures) >= self.limit and state.locked_until <= now:
                state.locked_until = now + self.lockout_s
                state.failures.clear()
                return True
            return False

    def client_ref(self, client: str) -> str:
        """Return a keyed hash of the client's address for the audit log (16 hex digits).

        The key lives only in this process, so the reference links one lockout's entries,
        not an address across restarts.
        """
        digest = hmac.new(self._salt, client.encode("utf-8"), hashlib.sha256).hexdigest()
        return digest[:16]
