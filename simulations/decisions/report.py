"""The decision simulation's report: ``metrics.json``, PNG plots and ``report.md``.

``metrics.json`` holds everything measured except wall-clock time (``timings.json``), so equal
seeds give identical files. Plots (matplotlib, Agg backend): each KPI per policy with its 95%
interval as whiskers, where each policy sends contacts, and the calibration curve of the
human fallback. The markdown report has the table, the fallback and a short reading written
from the numbers (it never claims a difference the intervals do not show).
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

KPIS: tuple[tuple[str, str], ...] = (
    ("transfer_rate", "transfer rate"),
    ("resolution_rate", "first-contact resolution rate"),
    ("first_response_s", "mean first response (s)"),
)
PLOTS: tuple[str, ...] = ("kpis.png", "routing.png", "calibration.png")


def _plots(metrics: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    policies = metrics["policies"]
    names = [p["policy"] for p in policies]
    # 1. KPIs with 95% intervals.
    fig, axes = plt.subplots(1, len(KPIS), figsize=(5.2 * len(KPIS), 4.2))
    for ax, (kpi, title) in zip(axes, KPIS, strict=True):
        values = [p[kpi] for p in policies]
        low = [p[kpi] - p[f"{kpi}_ci"][0] for p in policies]
        high = [p[f"{kpi}_ci"][1] - p[kpi] for p in policies]
        ax.bar(range(len(names)), values, color="#4c78a8", yerr=[low, high], capsize=4)
        ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        ax.set_title(title)
        ax.grid(axis="y", alpha=0.3)
    fig.suptitle("KPIs per policy, 95% intervals (same contacts)")
    fig.tight_layout()
    fig.savefig(out / "kpis.png", dpi=110)
    plt.close(fig)
    # 2. Where each policy sends contacts.
    desks = sorted({d for p in policies for d in p["routed"]})
    fig, ax = plt.subplots(figsize=(8, 0.6 * len(names) + 1.6))
    left = [0.0] * len(names)
    for desk in desks:
        shares = [p["routed"].get(desk, 0.0) for p in policies]
        ax.barh(names, shares, left=left, label=desk)
        left = [a + b for a, b in zip(left, shares, strict=True)]
    ax.set_xlabel("share of contacts")
    ax.legend(ncol=3, fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.25))
    ax.invert_yaxis()
    fig.tight_layout()
    fig.savefig(out / "routing.png", dpi=110)
    plt.close(fig)
    # 3. The fallback's calibration curve.
    cal = metrics["calibration"]
    curve = cal["curve"]
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.plot([c["threshold"] for c in curve], [c["coverage"] for c in curve], label="coverage")
    ax.plot([c["threshold"] for c in curve], [c["error_rate"] for c in curve], label="error")
    ax.axhline(cal["target_error"], color="grey", linestyle=":", label="target error")
    ax.axvline(cal["min_confidence"], color="black", linestyle="--", label="fitted threshold")
    ax.set_xlabel("confidence threshold")
    ax.set_title(f"human fallback, fitted on {cal['gated_decisions']} held-out decisions")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out / "calibration.png", dpi=110)
    plt.close(fig)
    return list(PLOTS)


def _ci(values: list[float], digits: int, scale: float = 1.0) -> str:
    return f"[{values[0] * scale:.{digits}f}, {values[1] * scale:.{digits}f}]"


def _table(policies: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| policy | n | transfer rate % | FCR % | first response s | Δ transfer vs fifo (pp) "
        "| Δ FCR vs fifo (pp) | to a human for low confidence % |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for p in policies:
        vs = p["vs_fifo"]
        if p["policy"] == "fifo":
            delta = "| — | — "
        else:
            delta = (
                f"| {vs['transfer_rate']['difference'] * 100:+.1f} "
                f"{_ci(vs['transfer_rate']['ci'], 1, 100)} "
                f"| {vs['resolution_rate']['difference'] * 100:+.1f} "
                f"{_ci(vs['resolution_rate']['ci'], 1, 100)} "
            )
        lines.append(
            f"| {p['policy']} | {p['n']} "
            f"| {p['transfer_rate'] * 100:.1f} {_ci(p['transfer_rate_ci'], 1, 100)} "
            f"| {p['resolution_rate'] * 100:.1f} {_ci(p['resolution_rate_ci'], 1, 100)} "
            f"| {p['first_response_s']:.0f} {_ci(p['first_response_s_ci'], 0)} "
            f"{delta}| {p['fallback_rate'] * 100:.1f} |"
        )
    return lines


def _separated(a: dict[str, Any], b: dict[str, Any], kpi: str) -> bool:
    """Whether the two policies' 95% intervals of ``kpi`` do not overlap."""
    return bool(a[f"{kpi}_ci"][1] < b[f"{kpi}_ci"][0] or b[f"{kpi}_ci"][1] < a[f"{kpi}_ci"][0])


def reading(metrics: dict[str, Any]) -> list[str]:
    """Sentences that read the results, written from the numbers."""
    by = {p["policy"]: p for p in metrics["policies"]}
    fifo = by["fifo"]
    out: list[str] = []
    for name in ("rules+models", "rules"):
        p = by.get(name)
        if p is None:
            continue
        if p.get("same_routing_as_fifo"):
            out.append(
                f"- `{name}` routes every contact exactly as `fifo`, so its figures are the "
                "same: in the default policy every routing rule reads a live signal or "
                "`score.escalation_risk` (a model output), and the arm's `models: false` drops "
                "them all."
            )
            continue
        for kpi, better in (("transfer_rate", "lower"), ("resolution_rate", "higher")):
            diff = p[kpi] - fifo[kpi]
            wins = (diff < 0) if better == "lower" else (diff > 0)
            sep = _separated(p, fifo, kpi)
            verdict = (
                "better, and the 95% intervals do not overlap"
                if wins and sep
                else "better, but the 95% intervals overlap"
                if wins
                else "not better"
            )
            out.append(
                f"- `{name}` against `fifo`, {kpi.replace('_', ' ')}: "
                f"{p[kpi] * 100:.1f}% vs {fifo[kpi] * 100:.1f}% ({diff * 100:+.1f} pp): {verdict}."
            )
        out.append(_response_sentence(name, p, fifo))
    truth, model = by.get("rules+true-signals"), by.get("rules+models")
    if truth and model:
        same = not any(_separated(truth, model, k) for k in ("transfer_rate", "resolution_rate"))
        out.append(
            f"- Perfect signals (`rules+true-signals`) give FCR "
            f"{truth['resolution_rate'] * 100:.1f}% and transfers "
            f"{truth['transfer_rate'] * 100:.1f}%: "
            + (
                "within the intervals of `rules+models`, so the text model's errors cost "
                "nothing measurable here."
                if same
                else "outside the intervals of `rules+models`: the text model's errors cost that "
                "much."
            )
        )
    return out


def _response_sentence(name: str, p: dict[str, Any], fifo: dict[str, Any]) -> str:
    """Say how first response compares and where the waiting happens."""
    slower = p["first_response_s_ci"][0] > fifo["first_response_s_ci"][1]
    by_route = p.get("first_response_s_by_route", {})
    worst = max(by_route, key=lambda k: by_route[k]) if by_route else None
    where = (
        f" The longest waits are in the `{worst}` queue ({by_route[worst]:.0f} s on average, "
        f"{p['routed'].get(worst, 0.0) * 100:.0f}% of contacts are sent there)."
        if worst and slower
        else ""
    )
    return (
        f"- `{name}` first response: {p['first_response_s']:.0f} s against "
        f"{fifo['first_response_s']:.0f} s for `fifo` (agents {p['occupancy'] * 100:.0f}% busy "
        f"against {fifo['occupancy'] * 100:.0f}%)"
        + (
            ": slower, as splitting the agents into desks gives up the pooling of one queue."
            if slower
            else "."
        )
        + where
    )


def _fallback_sentences(cal: dict[str, Any]) -> list[str]:
    """Say what the fitted threshold does and what other targets would cost."""
    out = []
    if cal["coverage"] is not None and cal["coverage"] >= 1.0:
        out.append(
            "Every held-out model-driven decision can stay automated within the target, so "
            "the threshold sits at the lowest confidence seen and the fallback rarely fires."
        )
    others = [
        f"target {o['target_error']:g}: threshold {o['min_confidence']:.3f}, coverage "
        f"{o['coverage']:.3f}"
        for o in cal.get("other_targets", [])
    ]
    if others:
        out.append("On the same decisions, other targets would give " + "; ".join(others) + ".")
    return out


def _shares(mix: dict[str, float]) -> str:
    return ", ".join(f"{k} {v * 100:.0f}%" for k, v in mix.items())


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def _markdown(metrics: dict[str, Any], plots: list[str]) -> str:
    cal = metrics["calibration"]
    pop, con, text = metrics["population"], metrics["contacts"], metrics["text_model"]
    error = "none met the target" if cal["error_rate"] is None else f"{cal['error_rate']:.3f}"
    lines = [
        "# Decision policies, offline — 决策策略离线评估",
        "",
        f"{con['evaluation']} evaluation contacts over {metrics['settings']['days']} working "
        f"days from {pop['customers']} synthetic customers (seed {metrics['seed']}); every "
        "policy routes the same contacts, served by the same contact-outcome model with the "
        "same staffing and the same random draws per contact. Intervals are 95% (Wilson for "
        "rates, bootstrap for the mean); Δ columns are paired differences over the same "
        "contacts.",
        "",
        *_table(metrics["policies"]),
        "",
        "## Reading 解读",
        "",
        *reading(metrics),
        "",
        "## Human fallback 人工兜底",
        "",
        f"Fitted on {cal['gated_decisions']} model-driven decisions of {cal['contacts']} "
        f"held-out calibration contacts (target error {cal['target_error']}, one-sided 95% "
        f"Clopper–Pearson bound): threshold **{cal['min_confidence']:.3f}**, measured error "
        f"{error}, coverage {cal['coverage']:.3f} (share kept automated). Without a fallback "
        f"those decisions were wrong {cal['gated_error_without_fallback'] * 100:.1f}% of the "
        f"time; {cal['agreement_with_true_labels'] * 100:.1f}% of all calibration contacts "
        "were routed as the same rules route them on the true labels. "
        + " ".join(_fallback_sentences(cal)),
        "",
        "## Inputs 输入",
        "",
        f"- Text model: {text['kind']}, trained on {text['trained_on']} generated messages; "
        "accuracy on the evaluation contacts "
        + ", ".join(f"{h} {v:.3f}" for h, v in text["accuracy_on_evaluation_contacts"].items())
        + ". The messages come from templates, so this is easier than real text.",
        f"- Contacts: intent {_shares(con['intent'])}; urgency {_shares(con['urgency'])}; "
        f"{con['needs_senior'] * 100:.1f}% need senior authority, "
        f"{con['simple_inquiry'] * 100:.1f}% are simple calm inquiries.",
        f"- Population: routing consent {pop['routing_consent'] * 100:.1f}%, "
        f"`tag.escalation_need` {pop['tag_escalation_need'] * 100:.1f}%, no complaint in 90 "
        f"days {pop['complaints_90d_zero'] * 100:.1f}%, `feature.monetary_90d` ≥ 3000 CNY "
        f"{pop['monetary_90d_at_least_3000'] * 100:.1f}% (of consenting customers); "
        f"escalation-risk stand-in held-out AUC {_number(pop['escalation_risk_holdout_auc'])}.",
        "",
        "Caveats: the outcome model's parameters are argued, not fitted to real contact "
        "centres (`simulations/decisions/params.py`); intervals treat contacts as independent, "
        "while waits within a day are correlated.",
        "",
        *[f"![{name}]({name})" for name in plots],
        "",
    ]
    return "\n".join(lines)


def write_decision_report(
    metrics: dict[str, Any], out: Path, *, seconds: float, steps: dict[str, float] | None = None
) -> None:
    """Write ``metrics.json``, ``timings.json``, the plots and ``report.md`` into ``out``.

    Parameters
    ----------
    metrics : dict[str, Any]
        Everything measured (no wall-clock times: equal seeds give equal files).
    out : Path
        Output directory (created).
    seconds : float
        Wall-clock time of the run so far, for ``timings.json``.
    steps : dict[str, float] or None
        Seconds per step, for ``timings.json``.
    """
    out.mkdir(parents=True, exist_ok=True)
    (out / "metrics.json").write_text(
        json.dumps(metrics, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    timings = {"total_seconds": round(seconds, 2), "steps": steps or {}}
    (out / "timings.json").write_text(json.dumps(timings, indent=2) + "\n")
    plots = _plots(metrics, out)
    (out / "report.md").write_text(_markdown(metrics, plots), encoding="utf-8")
    logger.info("decision report written to %s", out)
