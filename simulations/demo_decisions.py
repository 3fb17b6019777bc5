"""The demo's decision stage: route desk contacts through the API, serve them, report per arm.

1. The server runs the shipped policy with its routing experiment switched on (arms by a
   keyed hash of the person: first-in-first-out, rules on the profile, rules with the edge's
   live text signals). Its human-fallback threshold is fitted on the desk edge's held-out
   labelled messages (``decide calibrate``) and the server restarts with it, as a deployment
   would after changing its policy.
2. Each desk customer's newest message becomes a contact. The desk edge sends the text
   model's signals for it (never the text) to ``POST /decisions`` and gets the action back.
3. The contact-outcome model of ``simulate --task decisions`` serves every contact in one
   contact centre, whatever its arm; the true labels are the agents' labels on the desk.
4. The desk edge reports the outcomes as per-arm daily totals (``edge outcomes``) and the
   server's experiment report gives the KPIs per arm with 95% intervals.
5. A batch run of proactive-service triggers (``decide run``) goes to a JSONL queue.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import yaml
from sqlmodel import Session

from client.config import ClientSettings
from client.credentials import load_credentials
from client.decisions.calibrate import calibrate_on_edge, write_calibrated_policy
from client.decisions.outcomes import ContactOutcome, summarize, upload_outcomes
from client.store import EdgeStore
from consent import load_default_catalogue, load_default_purposes
from models import API_PREFIX
from models.decisions import DEFAULT_POLICY_PATH, Action, DecisionPolicy
from server.config import ServerSettings
from server.db import create_db_engine
from server.decisions.batch import run_batch
from server.decisions.batch_cli import file_sink
from server.decisions.source import decision_setup
from server.principal import Principal
from server.tables.token import Role

from .decisions import Contact, OutcomeParams, Routing, simulate_centre
from .decisions.contacts import NORMAL_DRAWS, UNIFORM_DRAWS
from .server_process import ServerProcess

EXPERIMENT = "routing_arms"
#: Desk contacts routed in the demo (the newest message of up to this many customers).
MAX_CONTACTS = 1500
#: Working days the contacts spread over (one contact centre serves every arm).
DAYS = 5
HIGH_VALUE_CNY = 3000.0
OPEN_SECONDS = 12 * 3600.0


def demo_policy(workdir: Path) -> Path:
    """Write the shipped policy with the routing experiment switched on; return its path."""
    data = yaml.safe_load(DEFAULT_POLICY_PATH.read_text(encoding="utf-8"))
    for experiment in data.get("experiments", []):
        if experiment["name"] == EXPERIMENT:
            experiment["active"] = True
    path = workdir / "decision_policy.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _contacts(store: EdgeStore, now: datetime, seed: int) -> list[tuple[Contact, dict[str, Any]]]:
    """Turn the newest scored, agent-labelled message of each desk customer, as a contact."""
    since = (now - timedelta(days=30)).timestamp()
    newest: dict[str, Any] = {}
    for score in store.message_scores(since=since, until=now.timestamp()):
        newest[score.subject] = score  # ordered by subject, then time: the last one wins
    truth = {}
    for subject, score in newest.items():
        for message in store.iter_messages(subject=subject):
            if message.message_id == score.message_id:
                truth[subject] = message
    monetary = {
        f.subject: float(f.value) for f in store.profile_fields()
        if f.field == "feature.monetary_90d" and isinstance(f.value, int | float)
    }  # fmt: skip
    rng = random.Random(seed)
    subjects = sorted(s for s in newest if s in truth and {"intent", "emotion", "urgency"}
                      <= set(truth[s].labels))[:MAX_CONTACTS]  # fmt: skip
    out = []
    for i, subject in enumerate(subjects):
        score, message = newest[subject], truth[subject]
        contact = Contact(
            contact_id=f"demo-{i}", day=i % DAYS, arrival_s=rng.uniform(0, OPEN_SECONDS),
            customer=i, channel="desk", text="", lang=message.lang,
            intent=message.labels["intent"], emotion=message.labels["emotion"],
            urgency=message.labels["urgency"],
            high_value=monetary.get(subject, 0.0) >= HIGH_VALUE_CNY,
            uniforms=tuple(rng.random() for _ in range(UNIFORM_DRAWS)),
            normals=tuple(rng.gauss(0.0, 1.0) for _ in range(NORMAL_DRAWS)),
        )  # fmt: skip
        signals = {h: {"label": score.labels[h], "probability": score.probabilities[h]}
                   for h in ("intent", "emotion", "urgency") if h in score.labels}  # fmt: skip
        out.append((contact, {"subject": subject, "channel": "desk", "signals": signals}))
    return out


def _load(path: Path) -> DecisionPolicy:
    catalogue = load_default_catalogue()
    return DecisionPolicy.load(
        path, field_purposes={f.name: [p.value for p in f.purposes] for f in catalogue},
        purposes=[p.name.value for p in load_default_purposes()],
    )  # fmt: skip


def _routing(answer: dict[str, Any]) -> Routing:
    action = Action.model_validate(answer["action"] or {"kind": "queue", "queue": "general"})
    return Routing(action=action, automated=bool(answer["automated"]),
                   fallback=answer["fallback"] == "low_confidence",
                   confidence=float(answer["confidence"]), rule=answer["decided_by"])  # fmt: skip


def _kpis(arm: dict[str, Any]) -> dict[str, Any]:
    keys = ("resolution_rate", "transfer_rate", "first_response_s")
    out: dict[str, Any] = {"contacts": arm["contacts"], "suppressed": arm["suppressed"]}
    for key in keys:
        value, ci = arm.get(key), arm.get(f"{key}_ci")
        out[key] = None if value is None else round(value, 4)
        out[f"{key}_ci"] = None if ci is None else [round(ci[0], 4), round(ci[1], 4)]
    return out


def run_decision_stage(
    workdir: Path, server: ServerProcess, *, db_url: str, now: datetime, seed: int
) -> dict[str, Any]:
    """Run steps 2-5 of the module docstring; return the summary the demo prints."""
    desk_dir = workdir / "edges" / "desk"
    settings = ClientSettings(edge_dir=desk_dir, server_url=server.url)
    credential = load_credentials(settings.credentials_path)
    if credential is None:
        raise RuntimeError("the desk edge is not registered; the upload step must run first")
    policy_path = workdir / "decision_policy.yaml"
    with EdgeStore.for_edge_dir(desk_dir) as store:
        calibration = calibrate_on_edge(store, _load(policy_path), target_error=0.1, at=now)
        contacts = _contacts(store, now, seed)
    write_calibrated_policy(policy_path, calibration.fallback, policy_path)
    server.stop()
    server.start()  # the same database and tokens, the calibrated policy
    answers: dict[str, dict[str, Any]] = {}
    headers = {"Authorization": f"Bearer {credential.token}"}
    with httpx.Client(base_url=server.url + API_PREFIX, headers=headers, timeout=30.0) as http:
        for contact, body in contacts:
            answer = http.post("/decisions", json=body).raise_for_status()
            answers[contact.contact_id] = answer.json()
    run = simulate_centre([c for c, _ in contacts], lambda c: _routing(answers[c.contact_id]),
                          OutcomeParams(), open_seconds=OPEN_SECONDS)  # fmt: skip
    opening = now.astimezone(UTC).replace(hour=1, minute=0, second=0, microsecond=0)
    lines = [
        (i, ContactOutcome(
            experiment=EXPERIMENT, arm=answers[o.contact_id]["arm"] or "none",
            at=opening - timedelta(days=DAYS - c.day) + timedelta(seconds=c.arrival_s),
            first_response_s=o.first_response_s,
            resolved=o.resolved_first_contact, transferred=o.transferred))
        for i, (o, (c, _)) in enumerate(zip(run.outcomes, contacts, strict=True))
    ]  # fmt: skip
    stored = upload_outcomes(summarize(lines, min_cell=10), settings=settings)
    admin = {"Authorization": f"Bearer {server.admin_token}"}
    with httpx.Client(base_url=server.url + API_PREFIX, headers=admin, timeout=30.0) as http:
        report = http.get(f"/experiments/{EXPERIMENT}").raise_for_status().json()
    tally: Counter[tuple[str, str]] = Counter(
        (a["arm"] or "none", a["action"]["kind"] if a["action"] else "none")
        for a in answers.values()
    )
    sample = next((a for a in answers.values() if a["decided_by"] and a["automated"]
                   and a["rules"] and a["rules"][0]["inputs"]), None)  # fmt: skip
    triggers = _batch(workdir, db_url, now)
    return {
        "contacts": len(contacts), "cells_stored": stored,
        "actions": {f"{arm}/{kind}": n for (arm, kind), n in sorted(tally.items())},
        "to_human": sum(1 for a in answers.values() if a["fallback"]),
        "calibration": {**calibration.fallback.model_dump(), "gated_error": round(
            calibration.gated_error, 4)},
        "example": None if sample is None else {
            "arm": sample["arm"], "explanation_zh": sample["explanation_zh"],
            "explanation_en": sample["explanation_en"]},
        "arms": {arm["arm"]: _kpis(arm) for arm in report["arms"]},
        "proactive_triggers": triggers,
    }  # fmt: skip


def _batch(workdir: Path, db_url: str, now: datetime) -> dict[str, Any]:
    """Run proactive-service triggers on the server's database, into a JSONL queue."""
    catalogue, purposes = load_default_catalogue(), load_default_purposes()
    settings = ServerSettings(database_url=db_url,
                              decision_policy_path=workdir / "decision_policy.yaml")  # fmt: skip
    setup = decision_setup(settings, catalogue, purposes)
    engine = create_db_engine(db_url)
    queue = workdir / "triggers.jsonl"
    try:
        report = run_batch(
            session_factory=lambda: Session(engine, expire_on_commit=False), setup=setup,
            catalogue=catalogue, purposes=purposes, purpose="proactive_service",
            period=now.date().isoformat(), sink=file_sink(queue),
            principal=Principal(role=Role.ADMIN, name="demo"), at=now,
        )  # fmt: skip
    finally:
        engine.dispose()
    return {**report.to_dict(), "queue": str(queue), "lines": len(queue.read_text().splitlines())}


def render_decisions(decisions: dict[str, Any]) -> list[str]:
    """Lines the demo prints for its decision stage."""
    if not decisions:
        return []
    fb = decisions["calibration"]
    measured = "no threshold met the target" if fb["error_rate"] is None else (
        f"error {fb['error_rate']:.1%} at coverage {fb['coverage']:.0%}")
    lines = [
        f"decisions: {decisions['contacts']} desk contacts routed through the API, "
        f"{decisions['to_human']} to a human for low confidence",
        f"  human fallback fitted on the desk's held-out messages: min confidence "
        f"{fb['min_confidence']:.3f}, {measured} ({fb['fitted_on']} decisions, target "
        f"{fb['target_error']:.0%})",
    ]  # fmt: skip
    if decisions.get("example"):
        example = decisions["example"]
        lines.append(f"  e.g. ({example['arm']}) {example['explanation_en']}")
        lines.append(f"       {example['explanation_zh']}")
    lines.append("  KPIs per arm (edge totals, 95% intervals):")
    for arm, k in decisions["arms"].items():
        if k["suppressed"]:
            lines.append(f"    {arm:<13} n={k['contacts']:>4}  suppressed (small cell)")
            continue
        lines.append(
            f"    {arm:<13} n={k['contacts']:>4}  FCR {k['resolution_rate']:.1%} "
            f"[{k['resolution_rate_ci'][0]:.1%}, {k['resolution_rate_ci'][1]:.1%}]  "
            f"transfer {k['transfer_rate']:.1%} [{k['transfer_rate_ci'][0]:.1%}, "
            f"{k['transfer_rate_ci'][1]:.1%}]  first response {k['first_response_s']:.0f} s"
        )
    t = decisions["proactive_triggers"]
    lines.append(f"  proactive service: {t['created']} trigger(s) for {t['evaluated']} consenting "
                 f"person(s) -> {t['queue']}")  # fmt: skip
    return lines

