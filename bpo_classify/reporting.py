"""Turning an evaluation report (see ``evaluation.py``) into text or Markdown for people.

Example:
    >>> from bpo_classify.evaluation import score
    >>> r = {"evaluations": [{"name": "demo", **score(["back-office"], [0.2], ["payroll"], ["payroll"])}]}
    >>> "office" in format_report(r, "text")
    True
"""

from __future__ import annotations

import json
from typing import Any


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}%"


def _table(rows: list[list[str]], markdown: bool) -> list[str]:
    if markdown:
        head, *body = rows
        return ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)] + ["| " + " | ".join(r) + " |" for r in body]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  " + "  ".join(c.rjust(w) if j else c.ljust(w) for j, (c, w) in enumerate(zip(r, widths))) for r in rows]


def _intervals(office: dict[str, Any], function: dict[str, Any]) -> list[str]:
    """The bootstrap intervals of accuracy and macro-F1 (see ``evaluation.bootstrap_interval``)."""
    def spans(block: dict[str, Any]) -> str:
        (a, b), (c, d) = block["accuracy"], block["macro_f1"]
        return f"accuracy {a:.3f}-{b:.3f}  macro-F1 {c:.3f}-{d:.3f}"

    return [
        f"{100 * office['level']:.0f}% intervals, bootstrap over these rows:",
        f"  office:   {spans(office)}",
        f"  function: {spans(function)}",
    ]


def _review_lines(review: dict[str, Any]) -> list[str]:
    """The review flags: share flagged, by reason, and how often the rest are right."""
    reasons = ", ".join(f"{reason} {_pct(share)}" for reason, share in review["by_reason"].items() if share)
    return [
        f"needs review (every reason, at the model's thresholds): {_pct(review['flagged'])} flagged"
        + (f" ({reasons})" if reasons else "")
        + f"; office right on {_pct(review['accuracy_unflagged'])} of the rest, function on "
        f"{_pct(review['function_accuracy_unflagged'])}",
    ]


def format_evaluation(ev: dict[str, Any], markdown: bool = False) -> list[str]:
    """Lines describing one evaluation (one data set)."""
    office, function = ev["office"], ev["function"]
    h = "### " if markdown else "== "
    lines = [f"{h}{ev['name']} ({office['rows']} rows; function scored on {function['rows']})", ""]
    summary = [
        f"office:   accuracy {office['accuracy']:.3f}  macro-F1 {office['macro_f1']:.3f}  "
        f"Brier {office['brier']:.3f}  ECE {office['calibration']['ece']:.3f}",
        f"function: accuracy {function['accuracy']:.3f}  macro-F1 {function['macro_f1']:.3f}",
    ]
    if "interval" in office:
        summary += _intervals(office["interval"], function["interval"])
    if markdown:
        # A list, or Markdown would run the lines together into one paragraph.
        summary = [("  - " if line.startswith(" ") else "- ") + line.strip() for line in summary]
    lines += summary + [""]
    for name, block in (("office", office), ("function", function)):
        rows = [[name, "precision", "recall", "F1", "support"]]
        for label, s in block["per_class"].items():
            rows.append([label, f"{s['precision']:.3f}", f"{s['recall']:.3f}", f"{s['f1']:.3f}", str(s["support"])])
        lines += _table(rows, markdown) + [""]
    labels = office["confusion"]["labels"]
    rows = [["true \\ predicted", *labels]] + [[a, *map(str, r)] for a, r in zip(labels, office["confusion"]["matrix"])]
    lines += ["office confusion matrix:", ""] + _table(rows, markdown) + [""]
    rows = [["needs-review threshold", "flagged", "accuracy on the rest"]]
    for t in office["threshold_tradeoff"]:
        rows.append([f"{t['threshold']:.2f}", _pct(t["flagged"]), _pct(t["accuracy_unflagged"])])
    lines += ["review threshold trade-off (office):", ""] + _table(rows, markdown) + [""]
    at = office.get("at_threshold")
    if at:
        lines += [
            f"at the model's review threshold, {at['threshold']:.2f}: {_pct(at['flagged'])} flagged, "
            f"{_pct(at['accuracy_unflagged'])} right on the rest",
            "",
        ]
    rows = [["confidence bin", "rows", "mean confidence", "accuracy"]]
    for b in office["calibration"]["bins"]:
        rows.append([f"{b['low']:.1f}-{b['high']:.1f}", str(b["rows"]), f"{b['confidence']:.3f}", f"{b['accuracy']:.3f}"])
    lines += ["reliability (office):", ""] + _table(rows, markdown) + [""]
    if "review" in ev:
        lines += _review_lines(ev["review"]) + [""]
    if "not_a_task" in ev:
        nt = ev["not_a_task"]
        lines += [
            f"not-a-task detector, scored out of fold (threshold {nt['threshold']:.2f}): {_pct(nt['tasks_flagged'])} of the "
            f"corpus's tasks flagged, {_pct(nt['lines_flagged'])} of {nt['lines']} not-task lines flagged",
            "",
        ]
    for column, groups in ev.get("groups", {}).items():
        rows = [[column, "rows", "office acc", "office F1", "function acc", "flagged", "right when not flagged"]]
        for value, g in groups.items():
            rows.append([
                value or "(none)", str(g["rows"]), f"{g['office']['accuracy']:.3f}", f"{g['office']['macro_f1']:.3f}",
                f"{g['function']['accuracy']:.3f}" if g["function"]["rows"] else "-", _pct(g["review"]["flagged"]),
                _pct(g["review"]["accuracy_unflagged"]),
            ])
        lines += [f"by {column}:", ""] + _table(rows, markdown) + [""]
    if "mixed" in ev:
        m = ev["mixed"]
        lines += [
            f"mixed tasks, each scored by a fold's model that did not see it ({m['rows']} rows): "
            f"{_pct(m['flagged'])} flagged for review, {_pct(m['near_half'])} with P(front-office) "
            f"within 0.3-0.7, median |P - 0.5| {m['median_distance']:.2f}",
            "",
        ]
    return lines


def format_report(report: dict[str, Any], fmt: str = "text") -> str:
    """The whole report as ``text``, ``markdown`` or ``json``."""
    if fmt == "json":
        return json.dumps(report, indent=2, allow_nan=False) + "\n"
    lines: list[str] = []
    for ev in report["evaluations"]:
        lines += format_evaluation(ev, markdown=fmt == "markdown")
    return "\n".join(lines).rstrip() + "\n"

