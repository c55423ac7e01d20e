"""Every text the command line prints about results: predictions, model info, explanations,
training and data checks, labelling summaries and evaluation reports (text, Markdown, JSON).

Each function returns the text (lines ending in a newline); the CLI only prints it.

Example:
    >>> from bpo_classify.evaluation import score
    >>> r = {"evaluations": [{"name": "demo", **score(["back-office"], [0.2], ["payroll"], ["payroll"])}]}
    >>> "office" in format_report(r, "text")
    True
"""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from .policy import FUNCTIONS

if TYPE_CHECKING:  # pragma: no cover
    from .corpus import DataProblem
    from .corrections import AppliedSummary
    from .explain import Contribution, Explanation
    from .model import Model, Prediction
    from .training import TrainResult


def _lines(lines: Sequence[str]) -> str:
    return "".join(line + "\n" for line in lines)


def _json(value: Any) -> str:
    return json.dumps(value, indent=2, ensure_ascii=False) + "\n"


# -- predict -------------------------------------------------------------------------------
def format_predictions(predictions: Sequence["Prediction"], fmt: str = "table", top_functions: int = 1) -> str:
    """``predict``'s answers: an aligned table for people, JSON, or CSV (the text, then the added columns).

    With ``top_functions`` K > 1 the runner-up functions follow the function (``function_2``, its
    probability, ...), empty past the office's last function; JSON has them as ``runners_up``.

    Example:
        >>> from bpo_classify import load_model
        >>> print(format_predictions(load_model().predict(["process invoices"])), end="")
        office       p       function            p       review  text
        back-office  0.9999  finance_accounting  0.9992          process invoices
    """
    from .model import Predictions
    from .outputs import ADDED_COLUMNS, added_columns, cells
    from .tables import write_table

    if fmt == "json":
        return _json([p.as_dict() for p in predictions])
    labels = cells(Predictions.of(predictions, top_functions))
    names = [c.name for c in added_columns(top_functions)]
    if fmt == "csv":
        out = io.StringIO()
        write_table(out, ["text", *names], ([p.text, *c] for p, c in zip(predictions, labels)))
        return out.getvalue()
    shown = ["office", "office_confidence", "function", "function_confidence"]
    shown += names[len(ADDED_COLUMNS) :]  # the runners-up and their probabilities
    head = ["p" if name.endswith("confidence") else name for name in shown]
    rows = [[*head, "review", "text"]]
    for p, c in zip(predictions, labels):
        cell = dict(zip(names, c))
        # The reason, not a bare flag: "unfamiliar_text" and "low_confidence" call for different actions.
        rows.append([*(cell[name] or "-" for name in shown), (p.review_reason or "review") if p.needs_review else "", p.text])
    widths = [max(len(r[i]) for r in rows) for i in range(len(shown) + 1)]
    return _lines(["  ".join(c.ljust(w) for c, w in zip(r, widths)) + "  " + r[-1] for r in rows])


def predictions_payload(predictions: Sequence["Prediction"], model_version: str) -> dict[str, Any]:
    """The body of the server's ``/v1/predict`` answer: each prediction as ``predict --format json`` shows it, and the model version.

    Example:
        >>> from bpo_classify import load_model
        >>> body = predictions_payload(load_model().predict(["process invoices"], top_functions=2), "demo")
        >>> body["model_version"], body["predictions"][0]["office"], len(body["predictions"][0]["runners_up"])
        ('demo', 'back-office', 1)
    """
    return {"model_version": model_version, "predictions": [p.as_dict() for p in predictions]}


def model_version(model: "Model") -> str:
    """A short name for this model: its creation date and the start of a SHA-256 of its weights and metadata.

    Two models differ in it when any weight, IDF value or metadata field differs (the
    weights are hashed as they are, in milliseconds; the model file's bytes would take seconds).

    Example:
        >>> from bpo_classify import load_model
        >>> model_version(load_model()).startswith("2026-01-01-")
        True
    """
    import hashlib

    import numpy as np

    digest = hashlib.sha256(json.dumps(model.metadata, sort_keys=True, default=str).encode("utf-8"))
    arrays = [model.office_coef, model.office_intercept, model.function_coef, model.function_intercept,
              model.mixed_coef, model.mixed_intercept, model.not_a_task_coef, model.not_a_task_intercept]
    for array in [*arrays, *(b.idf for b in model.blocks)]:
        if array is not None:
            digest.update(np.ascontiguousarray(array, dtype="<f8").tobytes())
    created = str(model.metadata.get("created_at", "unknown"))[:10]
    return f"{created}-{digest.hexdigest()[:12]}"


# -- info ----------------------------------------------------------------------------------
def format_info(model: "Model", name: str, terms: dict[str, Any] | None = None, fmt: str = "text") -> str:
    """``info``: the model's metadata (``name`` says which model), and its strongest ``terms`` if given."""
    meta = model.metadata
    if fmt == "json":
        return _json({**meta, **({"top_terms": terms} if terms else {})})
    data = meta.get("training_data", {})
    rows: list[tuple[str, Any]] = [
        ("model", name),
        ("made by", f"bpo-classify {meta.get('package_version')}, scikit-learn {meta.get('sklearn_version')}"),
        ("created", meta.get("created_at")),
        ("training data", f"{data.get('source')} ({data.get('rows')} rows, sha256 {data.get('sha256')})"),
        ("seed", meta.get("seed")),
        ("offices", ", ".join(meta.get("offices", []))),
        ("functions", ", ".join(meta.get("functions", []))),
        ("review threshold", model.threshold),
        ("features", f"{sum(len(b.vocabulary) for b in model.blocks)} terms ({', '.join(b.description for b in model.blocks)})"),
        ("office reads", ", ".join(model.office_blocks)),
        ("mixed detector", f"trained on {data.get('ambiguous_rows')} mixed tasks" if model.mixed_coef is not None else "none"),
        ("not-a-task", f"detector trained on {data.get('not_task_rows')} posting lines, flags at {model.review_settings['not_a_task']:.2f}"
         if model.not_a_task_coef is not None else "none"),
        ("unfamiliar", f"flagged when the model knows under {model.review_settings['familiar_share']:.0%} of its words (longer words weigh more)"),
    ]
    cv = meta.get("metrics", {}).get("cross_validation")
    for label in ("office", "function") if cv else ():
        rows.append((f"cv {label}", f"accuracy {cv[label]['accuracy']:.3f}, macro-F1 {cv[label]['macro_f1']:.3f} ({cv['folds']}-fold)"))
    lines = [f"{key:<16} {value}" for key, value in rows]
    for group in [g for g in ("office", "mixed", "function") if g in (terms or {})]:
        lines += ["", f"strongest terms by {group if group != 'mixed' else 'mixed-task detector'} (coefficient):"]
        lines += [f"  {label:<20} " + ", ".join(f"{t} ({w:+.2f})" for t, w in pairs) for label, pairs in terms[group].items()]  # type: ignore[index]
    return _lines(lines)


# -- explain -------------------------------------------------------------------------------
#: How explain marks terms that are not plain words or phrases.
_KIND_NOTE = {"characters": " (characters)", "opening": " (opening words)"}


def format_explanation(e: "Explanation", top: int = 10, fmt: str = "text") -> str:
    """``explain``: the answer, then each linear part's ``top`` strongest terms, and how the parts combine."""
    if fmt == "json":
        return _json(e.as_dict())
    if e.office is None:
        return "no text to explain (empty input): needs review\n"
    lines = [
        f"{e.office} ({e.office_confidence:.4f}), {e.function} ({e.function_confidence:.4f}); "
        + (f"runner-up function: {e.runner_up_function} ({e.runner_up_confidence:.4f})" if e.runner_up_function else "no runner-up function")
    ]
    front = f"{e.front_probability:.4f}"
    if e.mixed_probability is None:
        lines += ["log-odds towards front-office (+) or back-office (-):"]
        lines += _terms(e.terms, e.intercept, top, f"P(front-office) = {front}")
        return _lines(lines)
    lines += ["office, if the task is clear: log-odds towards front-office (+) or back-office (-):"]
    lines += _terms(e.terms, e.intercept, top, f"P(front-office | clear) = {e.clear_front_probability:.4f}")
    lines += ["mixed-task detector: log-odds towards mixed (+) or clear (-):"]
    lines += _terms(e.mixed_terms, e.mixed_intercept or 0.0, top, f"P(mixed) = {e.mixed_probability:.4f}")
    lines += [
        f"P(front-office) = 0.5 x {e.mixed_probability:.4f} + {1 - e.mixed_probability:.4f} x "
        f"{e.clear_front_probability:.4f} = {front}"
    ]
    return _lines(lines)


def _terms(terms: Sequence["Contribution"], intercept: float, top: int, result: str) -> list[str]:
    """The ``top`` strongest contributions, the rest summed, the intercept and the total."""
    lines = [f"  {c.contribution:+7.3f}  {c.term}" + _KIND_NOTE.get(c.kind, "") for c in terms[:top]]
    if len(terms) > top:
        more = len(terms) - top
        lines.append(f"  {sum(c.contribution for c in terms[top:]):+7.3f}  ({more} more term{'s' if more > 1 else ''})")
    lines.append(f"  {intercept:+7.3f}  (intercept)")
    lines.append(f"  {sum(c.contribution for c in terms) + intercept:+7.3f}  total -> {result}")
    return lines


# -- training data and training ------------------------------------------------------------
def problem_line(problem: "DataProblem") -> str:
    """One training-data problem as ``check-data`` and ``train`` print it, rows included."""
    return f"{'error' if problem.fatal else 'warning'}: {problem}"


def format_problems(problems: Sequence["DataProblem"]) -> str:
    """Every problem, one line each."""
    return _lines([problem_line(p) for p in problems])


def check_summary(rows: int, problems: Sequence["DataProblem"]) -> str:
    """``check-data``'s last line, e.g. ``11728 rows checked: 0 errors, 0 warnings``."""
    fatal = sum(p.fatal for p in problems)
    return f"{rows} rows checked: {fatal} errors, {len(problems) - fatal} warnings\n"


def training_started(data: Path | None, cv: int) -> str:
    """What ``train`` says once the data is checked and training starts."""
    return f"training on {data or 'the bundled corpus'}" + (f" with {cv}-fold cross-validation" if cv else "") + " ...\n"


def format_training(result: "TrainResult", out: Path) -> str:
    """``train``'s result: the rows and data hash, the cross-validated scores, where the model went."""
    data = result.model.metadata["training_data"]
    distinct = f", {data['distinct_rows']} distinct, each fitted once" if "distinct_rows" in data else ""
    lines = [f"trained on {data['rows']} rows{distinct} (sha256 {data['sha256'][:12]})"]
    added = data.get("added")
    if added:
        for f in added["files"]:
            lines.append(f"  of them {f['rows']} corrections from {f['source']} (sha256 {f['sha256'][:12]}), weight {f['weight']:g}")
        if added["replaced_rows"]:
            lines.append(f"  the corrections replaced {added['replaced_rows']} corpus row(s) with the same text")
    cv = result.metrics.get("cross_validation")
    if cv:
        lines.append(f"{cv['folds']}-fold cross-validation (seed {cv['seed']}):")
        for label in ("office", "function"):
            lines.append(f"  {label:<9} accuracy {cv[label]['accuracy']:.3f}  macro-F1 {cv[label]['macro_f1']:.3f}")
    lines.append(f"model written to {out}")
    return _lines(lines)


# -- the review loop -----------------------------------------------------------------------
def review_started(url: str, progress: dict[str, int], corrections: Path) -> str:
    """What ``review`` says when its page is up."""
    return (
        f"review page: {url} (127.0.0.1 only; Ctrl-C stops it)\n"
        f"{progress['done']} of {progress['total']} flagged texts decided ({progress['done_rows']} of {progress['total_rows']} rows); "
        f"decisions go to {corrections}\n"
    )


def review_stopped(progress: dict[str, int], corrections: Path) -> str:
    """What ``review`` says when Ctrl-C stops it."""
    return f"review stopped: {progress['done']} of {progress['total']} flagged texts decided, saved in {corrections}\n"


def corrections_applied(summary: "AppliedSummary", output: Path) -> str:
    """``apply-corrections``'s summary line."""
    unused = f"; {summary.unused} decision(s) matched no row" if summary.unused else ""
    return f"{summary.rows} rows written, {summary.reviewed} reviewed ({summary.changed} relabelled){unused} -> {output}\n"


# -- labelling -----------------------------------------------------------------------------
def labelled(summary: "LabelSummary", output: str, parts: int | None = None, fmt: str = "csv") -> str:
    """``label``'s summary line, with where the output went (and, on Dask, how many part files)."""
    where = "" if output == "-" else f" -> {output}"
    if parts is not None:
        where += f" ({parts} {fmt} part file{'' if parts == 1 else 's'})"
    return summary.line() + where + "\n"


def dask_started(partitions: int, workers: int, address: str) -> str:
    """What ``label --engine dask`` says when the cluster starts working."""
    return f"labelling {partitions} partition(s) on {workers} Dask worker(s) at {address} ...\n"


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


#: The figures ``evaluate --compare`` puts side by side: label, how to read it from a ``score_model`` result.
COMPARED = (
    ("office accuracy", lambda s: s["office"]["accuracy"]),
    ("office macro-F1", lambda s: s["office"]["macro_f1"]),
    ("function accuracy", lambda s: s["function"]["accuracy"]),
    ("function macro-F1", lambda s: s["function"]["macro_f1"]),
    ("flagged for review", lambda s: s["review"]["flagged"]),
    ("office right when not flagged", lambda s: s["review"]["accuracy_unflagged"]),
    ("function right when not flagged", lambda s: s["review"]["function_accuracy_unflagged"]),
)


def format_comparison(report: dict[str, Any], fmt: str = "text") -> str:
    """``evaluate --compare``: each file's figures for both models side by side, with the difference.

    Example:
        >>> s = {"office": {"accuracy": 0.9, "macro_f1": 0.8}, "function": {"accuracy": 0.7, "macro_f1": 0.6},
        ...      "review": {"flagged": 0.1, "accuracy_unflagged": 0.95, "function_accuracy_unflagged": None}}
        >>> r = {"models": [{"name": "a.bpoc"}, {"name": "b.bpoc"}], "files": [{"name": "f.csv", "rows": 3, "scores": [s, s]}]}
        >>> print(format_comparison(r).splitlines()[2])
          figure                           a.bpoc  b.bpoc  difference
    """
    if fmt == "json":
        return json.dumps(report, indent=2, allow_nan=False) + "\n"
    markdown = fmt == "markdown"
    a, b = (m["name"] for m in report["models"])
    lines: list[str] = []
    for f in report["files"]:
        lines += [f"{'### ' if markdown else '== '}{f['name']} ({f['rows']} rows): {a} against {b}", ""]
        rows = [["figure", a, b, "difference"]]
        for label, get in COMPARED:
            x, y = (get(s) for s in f["scores"])
            diff = "-" if x is None or y is None else f"{y - x:+.3f}"
            rows.append([label, "-" if x is None else f"{x:.3f}", "-" if y is None else f"{y:.3f}", diff])
        lines += _table(rows, markdown) + [""]
    return "\n".join(lines).rstrip() + "\n"


def format_report(report: dict[str, Any], fmt: str = "text") -> str:
    """The whole report as ``text``, ``markdown`` or ``json``."""
    if fmt == "json":
        return json.dumps(report, indent=2, allow_nan=False) + "\n"
    lines: list[str] = []
    for ev in report["evaluations"]:
        lines += format_evaluation(ev, markdown=fmt == "markdown")
    return "\n".join(lines).rstrip() + "\n"



# -- summarize -----------------------------------------------------------------------------
def _summary_rows(summary: dict[str, Any]) -> list[dict[str, Any]]:
    """The groups, then the total (its group columns say "total")."""
    total = dict(summary["total"], group={c: "total" for c in summary["by"]} or {"group": "total"})
    return [*summary["groups"], total]


def _mix(functions: dict[str, float | None], most: int = 3) -> str:
    top = sorted(functions.items(), key=lambda kv: (-(kv[1] or 0), kv[0]))
    shown = ", ".join(f"{f} {_pct(s)}" for f, s in top[:most])
    return shown + (f", {len(top) - most} more" if len(top) > most else "")


def _reasons(reasons: dict[str, int]) -> str:
    return ", ".join(f"{r} {n}" for r, n in reasons.items())


def format_summary(summary: dict[str, Any], fmt: str = "text") -> str:
    """``summarize``'s answer: an aligned table (default), ``markdown``, ``csv`` (one column per
    function) or ``json`` (schema ``bpo-classify/summary/1``).

    Example:
        >>> s = {"by": ["role"], "weight": None, "groups": [], "total": {"group": {}, "rows": 2, "labelled_rows": 2,
        ...      "weight": 2.0, "front_office": 1.0, "back_office": 1.0, "front_share": 0.5, "back_share": 0.5,
        ...      "functions": {"payroll": 0.5, "sales": 0.5}, "needs_review": 0, "review_reasons": {}}}
        >>> print(format_summary(s), end="")
          role   rows  front   back  review  functions
          total     2  50.0%  50.0%       0  payroll 50.0%, sales 50.0%
    """
    if fmt == "json":
        return _json(summary)
    rows = _summary_rows(summary)
    keys = summary["by"] or ["group"]
    weight = summary["weight"]
    if fmt == "csv":
        import csv

        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow([*keys, "rows", "labelled_rows", *([weight] if weight else []), "front_share", "back_share",
                         *(f"share_{f}" for f in FUNCTIONS), "needs_review", "review_reasons"])
        for r in rows:
            writer.writerow([*(r["group"].get(k, "") for k in keys), r["rows"], r["labelled_rows"],
                             *([r["weight"]] if weight else []), r["front_share"], r["back_share"],
                             *(r["functions"].get(f, "") for f in FUNCTIONS), r["needs_review"], _reasons(r["review_reasons"])])
        return out.getvalue()
    head = [*keys, "rows", *([weight] if weight else []), "front", "back", "review"]
    table = [head + (["why", "functions"] if fmt == "markdown" else ["functions"])]
    for r in rows:
        table.append([*(r["group"].get(k, "") for k in keys), str(r["rows"]), *([f"{r['weight']:g}"] if weight else []),
                      _pct(r["front_share"]), _pct(r["back_share"]), str(r["needs_review"]),
                      *([_reasons(r["review_reasons"])] if fmt == "markdown" else []), _mix(r["functions"])])
    if fmt == "markdown":
        lines = _table(table, markdown=True)
    else:
        # Names and the function mix read left to right; counts and shares line up on the right.
        left = {*range(len(keys)), len(head)}
        widths = [max(len(t[i]) for t in table) for i in range(len(head) + 1)]
        lines = ["  " + "  ".join(c.ljust(w) if i in left else c.rjust(w) for i, (c, w) in enumerate(zip(t, widths))).rstrip()
                 for t in table]
        reasons = summary["total"]["review_reasons"]
        if reasons:
            lines.append(f"needs review: {_reasons(reasons)}")
    if weight:  # said once below the table: a header "front of hours_per_week" pushed every column apart
        lines.extend([*([""] if fmt == "markdown" else []), f"front, back and functions are shares of {weight}, not of rows"])
    return _lines(lines)
