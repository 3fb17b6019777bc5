"""A live console for browser tests and screenshots: uvicorn in a thread on a temp SQLite DB.

:class:`LiveConsole` starts the whole app (API and console) on 127.0.0.1 and a free port, seeds
it through the public API (an edge, consents, ledgers, requests) and issues named tokens for
two officers and an agent directly in the database (as an admin would).
"""

from __future__ import annotations

import shutil
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import uvicorn
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

import server.tables  # noqa: F401  (registers the tables)
from server.config import ServerSettings
from server.db import create_db_engine
from server.main import create_app
from server.tables.token import Role
from tests.server.factories import ADMIN_TOKEN, AGENT_TOKEN, ENROLLMENT_TOKEN, T0, as_json

from .factories import issue_named, ledger_report

#: Where Debian's chromium lives; browser tests skip when it is missing.
CHROMIUM = Path("/usr/bin/chromium")
#: Flags that let chromium run headless as root in a container.
CHROMIUM_ARGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"]


def browser_missing_reason() -> str | None:
    """Return why browser tests cannot run here, or ``None`` when they can."""
    if not CHROMIUM.exists() or shutil.which(str(CHROMIUM)) is None:
        return f"{CHROMIUM} is not installed (apt-get install chromium; .ci/run does it)"
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        return "the playwright package is not installed (pip install -e '.[test]')"
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class LiveConsole:
    """A running server and the credentials of its seeded users."""

    base_url: str
    engine: Engine
    officer_a: str
    officer_b: str
    agent: str
    edge_token: str = ""
    subjects: list[str] = field(default_factory=list)
    requests: dict[str, str] = field(default_factory=dict)

    def api(self, method: str, path: str, token: str, body: Any = None) -> Any:
        """Call the public API with a bearer token; return the decoded JSON."""
        response = httpx.request(
            method,
            f"{self.base_url}{path}",
            json=body,
            headers={"Authorization": f"Bearer {token}"},
            timeout=30,
        )
        response.raise_for_status()
        return response.json()

    def seed(self, subjects: int = 40) -> None:
        """Register two edges and post consents, ledgers and four requests through the API."""
        from consent import ConsentStatus, Purpose
        from tests.server.factories import make_consent_event, make_pseudonym

        for name, channel, epsilons in (
            ("web-1", "web", [0.4, 0.9, 1.5, 2.2, 2.8]),
            ("app-1", "app", [0.6, 1.4, 2.5, 3.9, 5.1]),
        ):
            credential = httpx.post(
                f"{self.base_url}/api/v1/edges",
                json={"name": name, "channel": channel},
                headers={"X-Enrollment-Token": ENROLLMENT_TOKEN},
                timeout=30,
            ).json()
            self.api(
                "PUT",
                "/api/v1/edges/me/ledger",
                credential["token"],
                ledger_report("behaviour", epsilons),
            )
            if not self.edge_token:
                self.edge_token = credential["token"]
        self.subjects = [make_pseudonym(f"live-{i}") for i in range(subjects)]
        events = []
        for i, subject in enumerate(self.subjects):
            events.append(make_consent_event(subject, Purpose.PERSONALIZED_SERVICE))
            events.append(make_consent_event(subject, Purpose.MARKETING, notice_version="2026-10"))
            if i % 4 == 0:
                events.append(
                    make_consent_event(
                        subject,
                        Purpose.MARKETING,
                        status=ConsentStatus.WITHDRAWN,
                        occurred_at=T0 - timedelta(hours=2),
                        notice_version="2026-10",
                    )
                )
        self.api("POST", "/api/v1/consents", self.edge_token, as_json(events))
        for kind, subject in (("erase", 1), ("access", 2), ("restrict", 3)):
            body = {"subject": self.subjects[subject], "request_type": kind, "channel": "desk"}
            self.requests[kind] = self.api("POST", "/api/v1/dsr", self.officer_a, body)["id"]


@contextmanager
def live_console(tmp: Path) -> Iterator[LiveConsole]:
    """Run the app under uvicorn in a thread on a SQLite file under ``tmp``; stop it after.

    Parameters
    ----------
    tmp : Path
        A temporary folder for the database and keys.

    Yields
    ------
    LiveConsole
        The running server with two officers' and an agent's tokens.
    """
    url = f"sqlite:///{tmp / 'console.sqlite'}"
    settings = ServerSettings(
        database_url=url,
        enrollment_token=ENROLLMENT_TOKEN,
        admin_token=ADMIN_TOKEN,
        agent_token=AGENT_TOKEN,
        master_key_path=tmp / "master.key",
        signing_key_path=tmp / "signing.pem",
    )
    engine = create_db_engine(url)
    SQLModel.metadata.create_all(engine)
    app = create_app(settings, engine=engine)
    port = _free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", ws="none")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the console server did not start")
        time.sleep(0.05)
    try:
        yield LiveConsole(
            base_url=f"http://127.0.0.1:{port}",
            engine=engine,
            officer_a=issue_named(engine, "li.wei"),
            officer_b=issue_named(engine, "zhang.min"),
            agent=issue_named(engine, "desk-7", Role.AGENT),
        )
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        engine.dispose()
