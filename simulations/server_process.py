"""Run the fedprofile server as a child process on 127.0.0.1 and stop it by PID.

The demo talks to the server over real HTTP, exactly as edges in a deployment do; running it
as a separate process also keeps the server's database engine out of the demo's process.
"""

from __future__ import annotations

import logging
import os
import secrets
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Self

import httpx

from models import API_PREFIX

from .errors import ServerStartError

logger = logging.getLogger(__name__)


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class ServerProcess:
    """A ``fedprofile serve`` child process with generated secrets.

    Parameters
    ----------
    database_url : str
        Database the server uses.
    port : int
        Port on 127.0.0.1; 0 picks a free one.
    log_path : Path
        File receiving the server's stdout and stderr.
    startup_timeout : float
        Seconds to wait for ``/health``.
    extra_env : dict[str, str]
        More ``FEDPROFILE_*`` settings for the process (e.g. the decision policy).
    """

    database_url: str
    port: int = 0
    log_path: Path = Path("server.log")
    startup_timeout: float = 60.0
    enrollment_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    admin_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    agent_token: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    extra_env: dict[str, str] = field(default_factory=dict)
    _proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Self:
        """Start the process and wait until it answers ``/health``."""
        if self.port == 0:
            self.port = free_port()
        env = dict(os.environ)
        env.update(
            FEDPROFILE_DATABASE_URL=self.database_url,
            FEDPROFILE_ENROLLMENT_TOKEN=self.enrollment_token,
            FEDPROFILE_ADMIN_TOKEN=self.admin_token,
            FEDPROFILE_AGENT_TOKEN=self.agent_token,
            FEDPROFILE_ENVIRONMENT="development",
        )
        env.update(self.extra_env)
        cmd = [
            sys.executable,
            "-m",
            "fedprofile",
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(self.port),
        ]
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self._proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        log.close()
        deadline = time.monotonic() + self.startup_timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                raise ServerStartError(
                    f"server exited with code {self._proc.returncode}; see {self.log_path}"
                )
            try:
                if httpx.get(f"{self.url}{API_PREFIX}/health", timeout=2.0).status_code == 200:
                    logger.info("server up at %s (pid %d)", self.url, self._proc.pid)
                    return self
            except httpx.TransportError:
                pass
            time.sleep(0.3)
        self.stop()
        raise ServerStartError(f"server did not answer within {self.startup_timeout:.0f}s")

    @property
    def pid(self) -> int | None:
        """PID of the running process."""
        return None if self._proc is None else self._proc.pid

    def wait(self) -> int:
        """Block until the process exits and return its code."""
        if self._proc is None:
            return 0
        return self._proc.wait()

    def stop(self, timeout: float = 15.0) -> None:
        """Terminate the process (then kill it if it lingers)."""
        if self._proc is None or self._proc.poll() is not None:
            return
        self._proc.terminate()
        try:
            self._proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
