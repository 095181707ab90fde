"""What `leadscore train` and `leadscore score` show: the summary line, the targets, the top.

Kept apart from ``pipelines.cli`` (the commands) so each stays small; the JSON summary of
a training run is also what the end-to-end tests read.
"""

from __future__ import annotations

from typing import Any


def target_lines(targets: list[dict[str, Any]]) -> list[str]:
    """One line per quality target for people (stderr); the JSON line has the same."""
    return [
        f"target {t['target']} {t['rule']}: {t['value']:.4f} "
        f"({t['confidence']:.0%} interval {t['interval'][0]:.4f} to {t['interval'][1]:.4f}) "
        + ("[green]met[/green]" if t["met"] else "[red]missed[/red]")
        for t in targets
    ]


def train_summary(result: dict[str, Any]) -> dict[str, Any]:
    keys = ("roc_auc", "pr_auc", "brier", "lift_top10", "ece")
    summary: dict[str, Any] = {
        side: {k: round(result[side][k], 4) for k in keys if k in result[side]}
        for side in ("model", "rules", "oracle")
        if side in result
    }
    summary.update({k: result[k] for k in ("split", "n_train", "n_valid", "run_id")})
    summary.update({"model_version": result["version"], "promoted": result["promoted"]})
    if result.get("model_family"):  # model.kind auto: the family it chose
        summary["model_family"] = result["model_family"]
    quality = {"model_minus_rules_roc_auc": result["model"]["roc_auc"] - result["rules"]["roc_auc"]}
    if "oracle" in result:
        quality["oracle_minus_model_roc_auc"] = (
            result["oracle"]["roc_auc"] - result["model"]["roc_auc"]
        )
    summary["quality"] = {k: round(v, 4) for k, v in quality.items()}
    summary["targets"] = result.get("targets", [])
    if result.get("report"):
        summary["report"] = result["report"]
    return summary


def print_top(rows: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    from leadscore.models.reasons import decode

    table = Table(title="Highest open leads", show_lines=True)
    for column in ("rank", "lead", "grade", "probability", "rule score", "reasons"):
        table.add_column(column)
    for row in rows:
        reasons = "\n".join(f"{r['direction']} {r['text']}" for r in decode(row["reasons"]))
        table.add_row(
            str(row["rank"]),
            str(row["lead_id"]),
            row["grade"],
            f"{row['probability']:.1%}",
            f"{row['rule_score']:.0f} ({row['rule_grade']})",
            reasons,
        )
    Console().print(table)
