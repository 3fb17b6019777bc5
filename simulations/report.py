"""The simulation report: ``metrics.json``, PNG plots, ``report.md`` and ``report.html``.

``metrics.json`` holds everything measured except wall-clock times, so it is identical for
equal seeds (in-process engine); times go to ``timings.json``. Each setting carries its final
accuracy, macro-F1 and AUC on the shared held-out set, its per-round curve and each edge's
cumulative ε (``null`` = no noise, ε = ∞). ``gaps_vs_central`` states every setting's
difference to centralized non-private training of our model, and ``gaps_vs_best_baseline``
its difference to the **best** simple reference model of the run (``baseline`` settings:
TF-IDF + LR, logistic regression, boosting, BG/NBD), per metric (positive = worse than the
reference). On synthetic data ``oracle`` holds the Bayes-optimal AUC. Plots (matplotlib,
Agg backend): utility against ε and per-round curves. The reports are bilingual in their
headings (English / 中文).
"""

from __future__ import annotations

import html
import json
import logging
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

METRICS = ("accuracy", "macro_f1", "auc")
_TITLES = {"accuracy": "accuracy 准确率", "macro_f1": "macro-F1 宏F1", "auc": "AUC"}


def setting_label(setting: dict[str, Any]) -> str:
    """Return a short label: the setting name with its ε or σ."""
    name = str(setting["setting"])
    if setting.get("target_epsilon") is not None:
        return f"{name} ε={setting['target_epsilon']:g}"
    if setting.get("noise_multiplier") is not None and name.endswith("-dp"):
        return f"{name} σ={setting['noise_multiplier']:.3g}"
    return name


def gaps(settings: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Return, per setting label, centralized non-private metric minus the setting's.

    Empty when the run had no centralized non-private baseline.
    """
    central = next((s for s in settings if s["setting"] == "central"), None)
    if central is None:
        return {}
    return {
        setting_label(s): {m: round(central["metrics"][m] - s["metrics"][m], 6) for m in METRICS}
        for s in settings
        if s is not central
    }


def best_baseline(settings: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Return, per metric, the best reference (``baseline``) setting and its value."""
    references = [s for s in settings if s.get("baseline")]
    out: dict[str, dict[str, Any]] = {}
    for metric in METRICS:
        if references:
            best = max(references, key=lambda s: s["metrics"][metric])
            out[metric] = {"setting": best["setting"], "value": best["metrics"][metric]}
    return out


def gaps_to_best(settings: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    """Return, per setting of ours, the best reference's metric minus the setting's."""
    best = best_baseline(settings)
    if not best:
        return {}
    return {
        setting_label(s): {m: round(best[m]["value"] - s["metrics"][m], 6) for m in METRICS}
        for s in settings
        if not s.get("baseline")
    }


def _split_timings(metrics: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    timings: dict[str, Any] = {"total_seconds": metrics.get("seconds")}
    stable = {k: v for k, v in metrics.items() if k != "seconds"}
    settings = []
    for s in metrics.get("settings", []):
        timings[setting_label(s)] = s.get("seconds")
        settings.append({k: v for k, v in s.items() if k != "seconds"})
    stable["settings"] = settings
    stable["gaps_vs_central"] = gaps(settings)
    stable["best_baseline"] = best_baseline(settings)
    stable["gaps_vs_best_baseline"] = gaps_to_best(settings)
    return stable, timings


def _plots(metrics: dict[str, Any], out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    settings = metrics["settings"]
    names: list[str] = []
    # 1. Utility against ε.
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("accuracy", "auc"), strict=True):
        for kind, marker in (("federated-dp", "o-"), ("central-dp", "s--")):
            points = sorted(
                (s["target_epsilon"], s["metrics"][metric])
                for s in settings
                if s["setting"] == kind and s.get("target_epsilon") is not None
            )
            if points:
                ax.plot([p[0] for p in points], [p[1] for p in points], marker, label=kind)
        for s in settings:
            if s["setting"] in ("central", "federated", "local-only") or s.get("baseline"):
                ax.axhline(s["metrics"][metric], linestyle=":", label=s["setting"], color=None)
        ax.set_xlabel("ε (per edge, whole run)")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} vs ε")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "utility_vs_epsilon.png", dpi=110)
    plt.close(fig)
    names.append("utility_vs_epsilon.png")
    # 2. Per-round curves.
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("accuracy", "auc"), strict=True):
        for s in settings:
            if s.get("curve"):
                rounds = [c["round"] for c in s["curve"]]
                ax.plot(rounds, [c[metric] for c in s["curve"]], label=setting_label(s))
        ax.set_xlabel("round")
        ax.set_ylabel(metric)
        ax.set_title(f"{metric} per round")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "rounds.png", dpi=110)
    plt.close(fig)
    names.append("rounds.png")
    return names


def _eps_text(setting: dict[str, Any]) -> str:
    values = setting.get("epsilon_per_edge") or {}
    if not values:
        return "—"
    finite = [v for v in values.values() if v is not None]
    if not finite:
        return "∞ (no noise)"
    return f"{min(finite):.3f}–{max(finite):.3f}" if len(finite) > 1 else f"{finite[0]:.3f}"


def _markdown(metrics: dict[str, Any], plots: list[str]) -> str:
    settings = metrics["settings"]
    gap = metrics.get("gaps_vs_central", {})
    data = metrics["data"]
    lines = [
        f"# Simulation report 仿真报告 — {metrics['task']} task",
        "",
        f"- edges 边缘节点: {metrics['edges']}; rounds 轮次: {metrics['rounds']}; "
        f"engine: {metrics['engine']}; seed: {metrics['seed']}; partition: "
        f"{metrics['partition']}",
        f"- examples 样本: {data['examples']} (train per edge {data['train_examples']}, "
        f"held-out 留出 {data['test_examples']}); classes 类别: {', '.join(data['classes'])}",
        f"- plan: {json.dumps(metrics['plan'], ensure_ascii=False)}",
        "",
        "## Results 结果 (held-out set, same for every setting)",
        "",
        "| setting 设置 | accuracy | macro-F1 | AUC | σ | ε per edge (δ="
        f"{metrics['plan']['target_delta']:g}) | Δacc vs central | ΔAUC vs central |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in settings:
        label = setting_label(s)
        g = gap.get(label)
        sigma = "—" if s.get("noise_multiplier") is None else f"{s['noise_multiplier']:.3f}"
        lines.append(
            f"| {label} | {s['metrics']['accuracy']:.4f} | {s['metrics']['macro_f1']:.4f} | "
            f"{s['metrics']['auc']:.4f} | {sigma} | {_eps_text(s)} | "
            + (f"{100 * g['accuracy']:+.2f} pts | {g['auc']:+.4f} |" if g else "— | — |")
        )
    lines += _reference_lines(metrics)
    lines += _robustness_lines(metrics)
    lines += ["", "## Gaps to centralized non-private 与集中式非隐私训练的差距", ""]
    if gap:
        for label, g in gap.items():
            lines.append(
                f"- **{label}**: {100 * g['accuracy']:.2f} accuracy points and "
                f"{g['auc']:.4f} AUC below centralized non-private (negative = better)."
            )
    else:
        lines.append("- No centralized baseline in this run (add `--baselines`).")
    lines += ["", "## Plots 图表", ""] + [f"![{p}]({p})" for p in plots]
    return "\n".join(lines) + "\n"


def _rule_text(agg: dict[str, Any] | None) -> str:
    if not agg:
        return "—"
    return (
        f"{agg.get('rule')} (norm ≤ {agg.get('update_norm_bound'):g}× median, weight ≤ "
        f"{agg.get('weight_cap'):g}× median, quality {agg.get('quality_policy', 'off')})"
    )


def _robustness_lines(metrics: dict[str, Any]) -> list[str]:
    """Return the report's sections on malicious and broken edges (empty when none)."""
    rows = metrics.get("robustness") or []
    attacked = [r for r in rows if "attack" in r]
    broken = [r for r in rows if "fault" in r]
    lines: list[str] = []
    if attacked:
        lines += [
            "",
            "## Malicious edges 恶意边缘节点",
            "",
            "Utility of each attacked run minus its clean run (same seed); negative = damage. "
            "被攻击运行与同种子干净运行的效用差，负值表示受损。",
            "",
            "| setting 设置 | attack 攻击 | malicious edges | aggregation 聚合 | Δaccuracy | ΔAUC "
            "| guard actions 更新检查 |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in attacked:
            actions = ", ".join(f"{k} {v}" for k, v in row["robust_actions"].items()) or "none"
            lines.append(
                f"| {row['setting']} | {row['attack']} | {row['malicious_edges']} | "
                f"{_rule_text(row.get('aggregation'))} | {row['delta']['accuracy']:+.4f} | "
                f"{row['delta']['auc']:+.4f} | {actions} |"
            )
    if broken:
        lines += [
            "",
            "## Broken edges 故障边缘节点",
            "",
            "Each broken edge's export breaks in the rounds shown and is repaired (re-ingested) "
            "after them; what the server saw of it per round. "
            "故障节点在所示轮次数据损坏，之后修复重新导入。",
            "",
            "| setting 设置 | fault 故障 | broken edges | broken rounds | Δaccuracy | ΔAUC | "
            "per round 每轮 |",
            "|---|---|---|---|---|---|---|",
        ]
        for row in broken:
            lines.append(
                f"| {row['setting']} | {row['fault']} | {row['broken_edges']} | "
                f"{row['broken_rounds'][0]}–{row['broken_rounds'][1]} | "
                f"{row['delta']['accuracy']:+.4f} | {row['delta']['auc']:+.4f} | "
                f"{_round_text(row['quality_rounds'])} |"
            )
    return lines


def _round_text(rounds: list[dict[str, Any]]) -> str:
    """One short mark per round: ok, flagged, excluded, down-weighted or refused."""
    marks = []
    for r in rounds:
        notes = [n for v in r["edges"].values() for n in v]
        if r["refused_no_examples"]:
            mark = "no data"
        elif any(n.startswith(("excluded", "zeroed")) for n in notes):
            mark = "excluded"
        elif any(n.startswith("down-weighted") for n in notes):
            mark = "down-weighted"
        elif any(n.startswith("flagged") for n in notes):
            mark = "flagged"
        else:
            mark = "ok"
        marks.append(f"r{r['round']} {mark}")
    return ", ".join(marks)


def _reference_lines(metrics: dict[str, Any]) -> list[str]:
    """Return the report's section on the best simple baseline and the oracle."""
    lines = ["", "## Against the best simple baseline 与最强简单基线的差距", ""]
    best = metrics.get("best_baseline") or {}
    if not best:
        lines.append("- No simple baselines in this run (add `--baselines`).")
    else:
        names = ", ".join(f"{m} {b['setting']} {b['value']:.4f}" for m, b in best.items())
        lines.append(f"- Best simple baseline per metric: {names}.")
        for label, g in (metrics.get("gaps_vs_best_baseline") or {}).items():
            if label.startswith("federated-dp"):
                lines.append(
                    f"- **{label}**: {100 * g['accuracy']:.2f} accuracy points, "
                    f"{100 * g['macro_f1']:.2f} macro-F1 points and {g['auc']:.4f} AUC below "
                    "the best simple baseline (negative = better)."
                )
    oracle = metrics.get("oracle")
    if oracle:
        lines.append(
            f"- Oracle AUC (Bayes-optimal, from the generator's latent rates, "
            f"{oracle['held_out']} held-out subjects): {oracle['auc']:.4f}."
        )
    return lines


def _html(markdown: str) -> str:
    """Render the report's markdown subset as HTML (no dependencies)."""
    body: list[str] = []
    in_table = False
    for line in markdown.splitlines():
        if line.startswith("|"):
            cells = [c.strip() for c in line.strip("|").split("|")]
            if set("".join(cells)) <= {"-"}:
                continue
            tag = "th" if not in_table else "td"
            if not in_table:
                body.append("<table>")
                in_table = True
            body.append(
                "<tr>" + "".join(f"<{tag}>{html.escape(c)}</{tag}>" for c in cells) + "</tr>"
            )
            continue
        if in_table:
            body.append("</table>")
            in_table = False
        if line.startswith("# "):
            body.append(f"<h1>{html.escape(line[2:])}</h1>")
        elif line.startswith("## "):
            body.append(f"<h2>{html.escape(line[3:])}</h2>")
        elif line.startswith("![") and "](" in line:
            src = line[line.index("](") + 2 : -1]
            body.append(f'<img src="{html.escape(src)}" alt="{html.escape(src)}">')
        elif line.startswith("- "):
            text = html.escape(line[2:]).replace("**", "")
            body.append(f"<p>• {text}</p>")
        elif line.strip():
            body.append(f"<p>{html.escape(line)}</p>")
    if in_table:
        body.append("</table>")
    style = (
        "body{font-family:sans-serif;max-width:1000px;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:4px 8px}"
        "img{max-width:100%}"
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>fedprofile simulation</title><style>{style}</style></head><body>"
        + "\n".join(body)
        + "</body></html>\n"
    )


def write_report(metrics: dict[str, Any], out: Path) -> dict[str, Any]:
    """Write ``metrics.json``, ``timings.json``, plots, ``report.md`` and ``report.html``.

    Parameters
    ----------
    metrics : dict[str, Any]
        What ``run_simulation_task`` measured.
    out : Path
        Output directory (created).

    Returns
    -------
    dict[str, Any]
        The stable metrics written to ``metrics.json`` (with ``gaps_vs_central``).
    """
    out.mkdir(parents=True, exist_ok=True)
    stable, timings = _split_timings(metrics)
    (out / "metrics.json").write_text(
        json.dumps(stable, ensure_ascii=False, indent=2, sort_keys=True), encoding="utf-8"
    )
    (out / "timings.json").write_text(json.dumps(timings, indent=2), encoding="utf-8")
    plots = _plots(stable, out)
    markdown = _markdown(stable, plots)
    (out / "report.md").write_text(markdown, encoding="utf-8")
    (out / "report.html").write_text(_html(markdown), encoding="utf-8")
    logger.info("report written to %s", out)
    return stable
