"""Factories for the edge-runtime tests: input lines, a fake scrubber, a fake server."""

from __future__ import annotations

import functools
import json
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from consent import ConsentEvent, ConsentState, Purpose, evaluate, load_default_catalogue

KEY = bytes(range(32))
NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
ENROLLMENT_TOKEN = "enroll-" + "x" * 24

# Synthetic, checksum-valid test identifiers (not real people).
PHONE = "13812345678"
PHONE_2 = "13987654321"
ID_NUMBER = "11010519491231002X"
EMAIL = "li.lei@example.com"


# ------------------------------------------------------------------ input lines
def iso(moment: datetime) -> str:
    return moment.isoformat()


def event_line(
    event_id: str = "e1",
    *,
    phone: str = PHONE,
    type: str = "page_view",
    ts: datetime = NOW - timedelta(days=1),
    **extra: Any,
) -> dict[str, Any]:
    line: dict[str, Any] = {
        "kind": "event",
        "event_id": event_id,
        "type": type,
        "channel": "web",
        "ts": iso(ts),
        "customer": {"phone": phone},
    }
    line.update(extra)
    return line


def message_line(
    message_id: str = "m1",
    *,
    phone: str = PHONE,
    text: str = "你好",
    ts: datetime = NOW - timedelta(days=1),
    lang: str = "zh",
) -> dict[str, Any]:
    return {
        "kind": "message",
        "message_id": message_id,
        "channel": "app",
        "ts": iso(ts),
        "customer": {"phone": phone},
        "text": text,
        "lang": lang,
    }


def consent_line(
    consent_id: str = "c1",
    *,
    phone: str = PHONE,
    purpose: str = "personalized_service",
    status: str = "granted",
    ts: datetime = NOW - timedelta(days=30),
    **extra: Any,
) -> dict[str, Any]:
    line: dict[str, Any] = {
        "kind": "consent",
        "consent_id": consent_id,
        "channel": "app",
        "ts": iso(ts),
        "customer": {"phone": phone},
        "purpose": purpose,
        "status": status,
        "notice_version": "2026-10",
    }
    line.update(extra)
    return line


def write_jsonl(path: Path, rows: Iterable[dict[str, Any] | str]) -> Path:
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(
                (row if isinstance(row, str) else json.dumps(row, ensure_ascii=False)) + "\n"
            )
    return path


def active_customer_lines(phone: str = PHONE, *, prefix: str = "a") -> list[dict[str, Any]]:
    """A customer with a few weeks of varied behaviour (not provisional)."""
    rows: list[dict[str, Any]] = []
    for day in range(1, 40, 3):
        ts = NOW - timedelta(days=day)
        rows.append(
            event_line(f"{prefix}v{day}", phone=phone, ts=ts, category="数码", session_id=f"s{day}")
        )
        if day % 9 == 1:
            rows.append(
                event_line(
                    f"{prefix}p{day}",
                    phone=phone,
                    ts=ts,
                    type="purchase",
                    amount=899.0,
                    category="electronics",
                )
            )
    return rows


# ------------------------------------------------------------------ fake scrubber
_PATTERNS = {
    "CN_MOBILE": re.compile(r"(?<![0-9])1[3-9]\d{9}(?![0-9])"),
    "CN_ID_CARD": re.compile(r"(?<![0-9])\d{17}[0-9Xx](?![0-9A-Za-z])"),
    "EMAIL_ADDRESS": re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}"),
}


@dataclass(frozen=True)
class FakeScrubResult:
    text: str
    entity_counts: dict[str, int]

    def counts(self) -> dict[str, int]:
        return dict(self.entity_counts)


@dataclass
class FakeScrubber:
    """Regex masking with the ``scrub_many`` shape of ``privacy.PIIDetector``."""

    calls: list[tuple[int, str]] = field(default_factory=list)

    def scrub_many(self, texts: Sequence[str], *, lang: str) -> list[FakeScrubResult]:
        self.calls.append((len(texts), lang))
        out = []
        for text in texts:
            counts: dict[str, int] = {}
            for name, pattern in _PATTERNS.items():
                text, n = pattern.subn(f"<{name}>", text)
                if n:
                    counts[name] = n
            out.append(FakeScrubResult(text, counts))
        return out


# ------------------------------------------------------------------ fake server
@functools.cache
def _catalogue() -> Any:
    return load_default_catalogue()


@dataclass
class FakeServer:
    """An in-memory stand-in for the fedprofile API (consent-checked, idempotent)."""

    token: str = "edge-token-" + "y" * 20
    down: bool = False
    fail_next: list[int] = field(default_factory=list)
    consents: list[ConsentEvent] = field(default_factory=list)
    stored: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    keys: dict[str, str] = field(default_factory=dict)
    deliveries: dict[str, int] = field(default_factory=dict)
    ledgers: list[dict[str, Any]] = field(default_factory=list)
    requests: list[tuple[str, str]] = field(default_factory=list)
    #: Profile uploads the server was asked to take (single PUTs and batch items alike).
    upload_attempts: int = 0
    now: datetime = NOW
    #: Called first; a response (or exception) it returns replaces the normal answer.
    intercept: Callable[[httpx.Request], httpx.Response | None] | None = None

    def transport(self) -> httpx.MockTransport:
        return httpx.MockTransport(self.handle)

    def handle(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        path = request.url.path
        self.requests.append((request.method, path))
        if self.intercept is not None:
            answer = self.intercept(request)
            if answer is not None:
                return answer
        if self.fail_next:
            return httpx.Response(self.fail_next.pop(0), json={"error": "injected"})
        if request.method == "POST" and path == "/api/v1/edges":
            if request.headers.get("X-Enrollment-Token") != ENROLLMENT_TOKEN:
                return httpx.Response(401, json={"error": "invalid_enrollment_token"})
            body = json.loads(request.content)
            return httpx.Response(
                201,
                json={
                    "edge_id": "edge_1",
                    "name": body["name"],
                    "channel": body["channel"],
                    "token": self.token,
                },
            )
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return httpx.Response(401, json={"error": "unauthorized"})
        if request.method == "POST" and path == "/api/v1/consents":
            events = [ConsentEvent.model_validate(e) for e in json.loads(request.content)]
            new = [e for e in events if e not in self.consents]
            self.consents.extend(new)
            return httpx.Response(
                200, json={"recorded": len(new), "duplicates": len(events) - len(new)}
            )
        if request.method == "PUT" and path.startswith("/api/v1/subjects/"):
            status, answer = self._profile_item(
                path.split("/")[4], request.headers["Idempotency-Key"], json.loads(request.content)
            )
            return httpx.Response(status, json=answer)
        if request.method == "POST" and path == "/api/v1/profile-uploads":
            results = []
            for item in json.loads(request.content)["items"]:
                status, answer = self._profile_item(
                    item["subject"], item["idempotency_key"], item["upload"]
                )
                ok = status == 200
                results.append(
                    {
                        "subject": item["subject"],
                        "idempotency_key": item["idempotency_key"],
                        "status": status,
                        "result": answer if ok else None,
                        "error": None if ok else {"message": "refused", **answer},
                    }
                )
            return httpx.Response(200, json={"results": results})
        if request.method == "PUT" and path == "/api/v1/edges/me/ledger":
            self.ledgers.append(json.loads(request.content))
            return httpx.Response(200, json={"ok": True})
        return httpx.Response(404, json={"error": "not_found"})

    def _profile_item(
        self, subject: str, key: str, upload: dict[str, Any]
    ) -> tuple[int, dict[str, Any]]:
        """Answer one upload as the real server would: (status, body)."""
        self.upload_attempts += 1
        body = json.dumps(upload, sort_keys=True)
        if key in self.keys:
            if self.keys[key] != body:
                return 409, {"error": "idempotency_key_reused"}
            names = [f["name"] for f in upload["fields"]]
            return 200, {
                "subject": subject,
                "purpose": upload["purpose"],
                "stored": names,
                "replayed": True,
            }
        state = ConsentState([e for e in self.consents if e.subject == subject])
        catalogue = _catalogue()
        refused = []
        for f in upload["fields"]:
            decision = evaluate(
                catalogue=catalogue,
                consent=state,
                field=f["name"],
                purpose=Purpose(upload["purpose"]),
                at=self.now,
            )
            if not decision.allowed:
                refused.append(
                    {
                        "field": f["name"],
                        "reason": decision.reason.value,
                        "message": decision.message,
                    }
                )
        if refused:
            return 403, {"error": "consent_refused", "refused": refused}
        self.keys[key] = body
        self.deliveries[key] = self.deliveries.get(key, 0) + 1
        self.stored[(subject, upload["purpose"])] = upload
        return 200, {
            "subject": subject,
            "purpose": upload["purpose"],
            "stored": [f["name"] for f in upload["fields"]],
        }


def asgi_app(server: FakeServer) -> Any:
    """Wrap ``FakeServer`` as an ASGI app (for uvicorn-based tests)."""
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response
    from starlette.routing import Route

    async def endpoint(request: Request) -> Response:
        body = await request.body()
        answer = server.handle(
            httpx.Request(
                request.method, str(request.url), headers=request.headers.raw, content=body
            )
        )
        return Response(
            answer.content, status_code=answer.status_code, media_type="application/json"
        )

    return Starlette(routes=[Route("/{path:path}", endpoint, methods=["GET", "POST", "PUT"])])


@contextmanager
def uvicorn_server(app: Any, port: int) -> Iterator[str]:
    """Run ``app`` under uvicorn on 127.0.0.1:port in a thread; stop it on exit."""
    import time

    import uvicorn

    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_level="warning", lifespan="auto", ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, name=f"uvicorn-{uuid.uuid4().hex[:6]}", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])
