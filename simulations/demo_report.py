"""Human-readable rendering of a demo summary (rich tables, Chinese and English labels)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from .demo import LABEL_WINDOW_DAYS, DemoSummary
from .demo_decisions import render_decisions


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.0f}" if value.is_integer() and abs(value) >= 10 else f"{value:.3f}"
    return "-" if value is None else str(value)


def render_demo_summary(summary: DemoSummary, console: Console) -> None:
    """Print the per-round metrics, ε per edge, upload outcome and PII masked."""
    console.print()
    console.rule("[bold]fedprofile demo summary / 演示摘要")
    rounds = Table(title="Federated rounds / 联邦训练轮次 (the server's training-run record)")
    columns = (
        ("round", None, None),
        ("train loss", "train", "train-loss"),
        ("max ε", "train", "epsilon"),
        ("subjects in", "train", "subjects-included"),
        ("excluded (no consent)", "train", "subjects-excluded"),
        ("eval loss", "evaluate", "eval-loss"),
        ("eval AUC", "evaluate", "eval-auc"),
    )
    for title, _, _ in columns:
        rounds.add_column(title, justify="right")
    by_round: dict[int, dict[str, dict[str, Any]]] = {}
    for r in summary.rounds:
        by_round.setdefault(int(r["server_round"]), {})[str(r["phase"])] = r.get("metrics", {})
    for number in sorted(by_round):
        phases = by_round[number]
        cells = [str(number)]
        for _, phase, key in columns[1:]:
            value = phases.get(str(phase), {}).get(str(key))
            cells.append("" if value is None else _fmt(value))
        rounds.add_row(*cells)
    console.print(rounds)

    eps = Table(title="Privacy spent per edge / 各边缘节点隐私预算 (behaviour model, cumulative)")
    for col in ("edge", "ε", "δ", "accountant", "releases", "budget"):
        eps.add_column(col, justify="right" if col != "edge" else "left")
    for channel, row in summary.epsilon.items():
        eps.add_row(
            channel,
            f"{row['epsilon']:.3f}",
            f"{row['delta']:g}",
            row["accountant"],
            str(row["releases"]),
            "none" if row["budget"] is None else f"{row['budget']:g}",
        )
    console.print(eps)
    console.print(f"    ledgers reported to the server: {summary.server_ledgers}")

    scored = sorted({str(row.get("round")) for row in summary.models.values()})
    quality = Table(
        title="Global model on each edge's held-out subjects / 全局模型本地评估 "
        f"(round {', '.join(scored)}; purchase in the next {LABEL_WINDOW_DAYS:g} days; scores are "
        "published only "
        "from heads with AUC >= 0.60)"
    )
    for col in ("edge", "purchase AUC", "oracle", "baseline", "escal. AUC", "held out (buyers)"):
        quality.add_column(col, justify="left" if col == "edge" else "right")
    quality.add_column("published", min_width=11)  # "escalation," on one line
    for channel, row in summary.models.items():
        baseline = (
            f"{_fmt(row['baseline_auc'])} {row['baseline']}" if "baseline_auc" in row else "-"
        )
        quality.add_row(
            channel,
            _fmt(row.get("purchase_auc")),
            _fmt(row.get("oracle_auc", "-")),
            baseline,
            _fmt(row.get("escalation_auc")),
            f"{row.get('held_out', 0)} ({row.get('positives', '-')})",
            # purchase_propensity -> purchase, escalation_risk -> escalation (the head)
            ", ".join(n.split("_")[0] for n in row.get("scores_published", []))
            or "none (below the quality gate)",
        )
    console.print(quality)
    console.print(
        "    purchase AUC: the federated DP model; oracle: the best any model can do (the "
        "generator's latent purchase rates); baseline: the best of logistic regression, "
        "boosting and BG/NBD trained centrally without noise"
    )

    _render_text(summary, console)

    totals = summary.totals()
    up = Table(title="Profile fields / 画像字段 (only catalogued, consented fields leave an edge)")
    up.add_column("edge")
    up.add_column("uploaded", justify="right")
    up.add_column("withheld by consent (edge)", justify="right")
    up.add_column("refused by server", justify="right")
    for channel, report in summary.uploads.items():
        up.add_row(
            channel,
            str(report.get("fields_uploaded", 0)),
            str(sum(report.get("fields_withheld", {}).values())),
            str(sum(report.get("refused_by_server", {}).values())),
        )
    up.add_row(
        "[bold]total",
        str(totals["fields_uploaded"]),
        str(sum(totals["fields_withheld_by_consent"].values())),
        str(sum(totals["fields_refused_by_server"].values())),
    )
    console.print(up)
    if totals["fields_withheld_by_consent"]:
        reasons = ", ".join(
            f"{k}: {v}" for k, v in sorted(totals["fields_withheld_by_consent"].items())
        )
        console.print(f"    withheld by reason: {reasons}")
    if totals["fields_refused_by_server"]:
        reasons = ", ".join(
            f"{k}: {v}" for k, v in sorted(totals["fields_refused_by_server"].items())
        )
        console.print(
            f"    refused by reason: {reasons} (the server's consent across channels, e.g. a "
            "withdrawal at another channel, is stricter than the edge's own record)"
        )

    if summary.identity:
        ident = summary.identity
        linked = Table(
            title="Persons across channels / 跨渠道身份关联 (keyed identity tokens and "
            "encodings; scored against the generator's cross-device truth)"
        )
        for col in ("persons", "pseudonyms linked", "precision", "recall", "true pairs", "hubs"):
            linked.add_column(col, justify="right")
        linked.add_row(
            str(ident.get("persons", 0)),
            f"{ident.get('pseudonyms_linked', 0)} of {ident.get('pseudonyms_held', 0)}",
            _fmt(ident.get("precision")),
            _fmt(ident.get("recall")),
            str(ident.get("true_pairs", 0)),
            str(ident.get("hubs", 0)),
        )
        console.print(linked)
        console.print(
            "    precision / recall over pairs of pseudonyms the server may link (consented, "
            "with tokens or encodings); a device whose lines never carry a shared identifier, "
            "name or birth date stays apart"
        )

    for line in render_decisions(summary.decisions):
        console.print(line if line.startswith(" ") else f"[bold]{line}[/]", soft_wrap=True)

    pii = Table(title="PII masked on the edges / 边缘端脱敏的个人信息")
    pii.add_column("entity type")
    pii.add_column("count", justify="right")
    for kind, n in summary.pii_masked.items():
        pii.add_row(kind, str(n))
    console.print(pii)
    timings = ", ".join(f"{k} {v:.1f}s" for k, v in summary.timings.items())
    console.print(f"    timings: {timings}")


def _render_text(summary: DemoSummary, console: Console) -> None:
    """Print the text model's rounds and, per edge, its quality and the text fields."""
    if not summary.text:
        return
    rounds = Table(title="Text model rounds / 文本模型训练轮次 (intent, emotion, urgency heads)")
    for col in ("round", "train loss", "max ε", "examples", "eval loss", "eval AUC (intent)"):
        rounds.add_column(col, justify="right")
    by_round: dict[int, dict[str, dict[str, Any]]] = {}
    for r in summary.text_rounds:
        by_round.setdefault(int(r["server_round"]), {})[str(r["phase"])] = r.get("metrics", {})
    for number in sorted(by_round):
        train, evaluate = by_round[number].get("train", {}), by_round[number].get("evaluate", {})
        rounds.add_row(
            str(number),
            _fmt(train.get("train-loss", "")),
            _fmt(train.get("epsilon", "")),
            _fmt(train.get("examples-trained", "")),
            _fmt(evaluate.get("eval-loss", "")),
            _fmt(evaluate.get("eval-auc", "")),
        )
    console.print(rounds)
    edges = Table(
        title="Text signals per edge / 文本信号 (AUC on the edge's held-out labelled messages; "
        "a head's answers are used only at AUC >= 0.60; agents' labels always)"
    )
    for col in ("edge", "intent", "emotion", "urgency", "held out", "ε", "subjects", "allowed",
                "withheld"):  # fmt: skip
        edges.add_column(col, justify="left" if col == "edge" else "right")
    for channel, row in summary.text.items():
        edges.add_row(
            channel,
            _fmt(row.get("intent_auc")),
            _fmt(row.get("emotion_auc")),
            _fmt(row.get("urgency_auc")),
            str(row.get("held_out_messages", 0)),
            _fmt(row.get("epsilon")),
            str(row.get("subjects_with_text_fields", 0)),
            str(row.get("allowed_by_consent", 0)),
            str(row.get("withheld_by_consent", 0)),
        )
    console.print(edges)
    versions = ", ".join(
        f"{channel} {row.get('model_version') or 'none'}" for channel, row in summary.text.items()
    )
    console.print(f"    scored with: {versions}")
    console.print(
        "    subjects: with text.* fields (last intent, negative-emotion share and urgent "
        "contacts over 30 days); allowed: consented to a purpose of those fields, so they are "
        "uploaded; withheld: no such consent, so they never leave the edge"
    )
