"""Factories for the learning-plane tests: small edge stores with behaviour and consent."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from client.store import EdgeStore, StoredConsent, StoredEvent
from consent import ConsentEvent, ConsentStatus, Purpose

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
CATEGORIES = ("electronics", "apparel", "beauty", "home", "food")


def pseudonym(index: int, *, salt: str = "") -> str:
    return "ps_" + hashlib.sha256(f"subject-{salt}{index}".encode()).hexdigest()


def subject_events(subject: str, *, rng: random.Random, now: datetime = NOW) -> list[StoredEvent]:
    """About 20-40 events over the last 60 days; buyers and complainers cluster."""
    buyer = rng.random() < 0.5
    complainer = rng.random() < 0.3
    favourite = rng.choice(CATEGORIES)
    events: list[StoredEvent] = []
    start = (now - timedelta(days=60)).timestamp()
    for n in range(rng.randint(20, 40)):
        ts = start + rng.random() * 59 * 86_400
        roll = rng.random()
        if buyer and roll < 0.25:
            kind, amount = "purchase", round(rng.uniform(20, 900), 2)
        elif buyer and roll < 0.45:
            kind, amount = "add_to_cart", None
        elif complainer and roll < 0.6:
            kind, amount = ("complaint" if rng.random() < 0.5 else "cs_message"), None
        else:
            kind, amount = rng.choice(("page_view", "search", "login")), None
        category = favourite if rng.random() < 0.7 else rng.choice(CATEGORIES)
        events.append(
            StoredEvent(
                event_id=f"{subject[:12]}-{n}",
                subject=subject,
                type=kind,
                channel="web",
                ts=ts,
                category=None if kind == "login" else category,
                amount=amount,
                currency="CNY" if amount else None,
            )
        )
    return events


def consent(
    subject: str,
    *,
    purpose: Purpose = Purpose.MODEL_TRAINING,
    status: ConsentStatus = ConsentStatus.GRANTED,
    at: datetime = NOW - timedelta(days=90),
) -> StoredConsent:
    digest = hashlib.sha256(f"{subject}{purpose}{status}{at}".encode()).hexdigest()[:16]
    return StoredConsent(
        consent_id=f"c-{digest}",
        event=ConsentEvent(
            subject=subject,
            purpose=purpose,
            status=status,
            occurred_at=at,
            notice_version="2026-10",
            channel="web",
        ),
    )


def make_edge(
    edge_dir: Path,
    *,
    subjects: int = 20,
    consenting: Iterable[int] | None = None,
    other_purpose: Iterable[int] = (),
    seed: int = 0,
    name: str = "web-1",
    channel: str = "web",
) -> list[str]:
    """Create an edge directory with a store; returns the pseudonyms in creation order.

    ``consenting`` lists the subject indices that grant model_training (default: all);
    ``other_purpose`` lists indices that only grant personalized_service.
    """
    rng = random.Random(seed)
    chosen = set(range(subjects) if consenting is None else consenting)
    ids = [pseudonym(i, salt=name) for i in range(subjects)]
    with EdgeStore.for_edge_dir(edge_dir) as store:
        store.set_meta("edge_name", name)
        store.set_meta("edge_channel", channel)
        for index, subject in enumerate(ids):
            store.add_events(subject_events(subject, rng=rng))
            if index in chosen:
                store.add_consents([consent(subject)])
            if index in set(other_purpose):
                store.add_consents([consent(subject, purpose=Purpose.PERSONALIZED_SERVICE)])
    return ids


def add_labelled_messages(
    edge_dir: Path,
    subjects: Iterable[str],
    *,
    per_subject: int = 3,
    labelled_share: float = 1.0,
    seed: int = 0,
    now: datetime = NOW,
) -> int:
    """Add generated masked messages (agent-labelled at ``labelled_share``); returns how many."""
    from client.store import StoredMessage
    from simulations.labeled import masked_messages

    people = list(subjects)
    texts, labels = masked_messages(len(people) * per_subject, seed=seed)
    rng = random.Random(seed)
    rows = []
    for n, text in enumerate(texts):
        subject = people[n // per_subject]
        labelled = rng.random() < labelled_share
        rows.append(
            StoredMessage(
                message_id=f"m-{seed}-{n}",
                subject=subject,
                channel="desk",
                ts=(now - timedelta(days=rng.uniform(1, 50))).timestamp(),
                lang="zh",
                masked_text=text,
                entity_counts={},
                labels={h: v[n] for h, v in labels.items()} if labelled else {},
            )
        )
    with EdgeStore.for_edge_dir(edge_dir) as store:
        store.add_messages(rows)
    return len(rows)


# ------------------------------------------------------------------ Flower messages
def flower_message(content, message_type: str, *, node_id: int = 7, run_id: int = 1):  # type: ignore[no-untyped-def]
    """A Message as the SuperNode would deliver it to the ClientApp."""
    import time
    import uuid

    from flwr.app import DEFAULT_TTL, Message, Metadata

    metadata = Metadata(
        run_id=run_id,
        message_id=uuid.uuid4().hex,
        src_node_id=1,
        dst_node_id=node_id,
        reply_to_message_id="",
        group_id="1",
        created_at=time.time(),
        ttl=DEFAULT_TTL,
        message_type=message_type,
    )
    return Message(content, metadata=metadata)


def flower_context(
    *, node_config: dict | None = None, run_config: dict | None = None, run_id: int = 1
):  # type: ignore[no-untyped-def]
    from flwr.app import Context, RecordDict

    return Context(
        run_id=run_id,
        node_id=7,
        node_config=node_config or {},
        state=RecordDict(),
        run_config=run_config or {},
    )


def train_content(weights, *, server_round: int = 1, model_version: str = ""):  # type: ignore[no-untyped-def]
    import numpy as np
    from flwr.app import Array, ArrayRecord, ConfigRecord, RecordDict

    arrays = ArrayRecord({k: Array(np.ascontiguousarray(v)) for k, v in weights.items()})
    config: dict[str, int | str] = {"server-round": server_round}
    if model_version:
        config["model-version"] = model_version
    return RecordDict({"arrays": arrays, "config": ConfigRecord(config)})
