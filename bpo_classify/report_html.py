"""The HTML report of a labelled file's summary (``summarize --html``): one self-contained page.

Inline CSS and inline SVG only: no script, no font, no image or style sheet fetched from
anywhere (a Content-Security-Policy of ``default-src 'none'`` says so to the browser too), so
the file can be mailed or opened offline and shows the same. Every text from the file (roles,
duties, file names) is HTML-escaped, in the tables and inside the SVG: a duty reading
``<script>`` is shown, never run.

The page holds: a stacked bar of the front- and back-office share per group, the hours (with
``--weight``) or rows per service tower (function), a table per group, the rows that need
review with their reason, and where it came from (the labelled file's name and SHA-256, the
model version, the date).

Example:
    >>> summary = {"source": {"name": "l.csv", "sha256": "ab" * 32, "rows": 1}, "by": ["role"], "weight": None,
    ...            "groups": [{"group": {"role": "<Clerk>"}, "rows": 1, "labelled_rows": 1, "weight": 1.0,
    ...                        "front_share": 0.0, "back_share": 1.0, "functions": {"payroll": 1.0},
    ...                        "needs_review": 0, "review_reasons": {}}]}
    >>> summary["total"] = dict(summary["groups"][0], group={})
    >>> page = render(summary, [], 0, {"model_version": "v1", "generated": "2026-01-01T00:00:00Z"})
    >>> "&lt;Clerk&gt;" in page and "<Clerk>" not in page
    True
"""

from __future__ import annotations

from datetime import datetime, timezone
from html import escape
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from .policy import FRONT, FUNCTION_OFFICE

if TYPE_CHECKING:  # pragma: no cover
    from .model import Model
    from .summary import ReviewRow

#: The two offices' colours (front: blue, back: orange; told apart in grey scale too).
COLOURS = {FRONT: "#2b6cb0", "back-office": "#dd6b20"}
#: Bar chart geometry, in SVG user units (pixels at 100%).
LABEL_WIDTH, BAR_WIDTH, VALUE_WIDTH, ROW_HEIGHT = 230, 440, 150, 26

_CSS = """
body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1a202c; margin: 24px auto; max-width: 1100px; padding: 0 16px; }
h1 { font-size: 22px; margin: 0 0 4px; } h2 { font-size: 17px; margin: 28px 0 8px; border-bottom: 1px solid #e2e8f0; padding-bottom: 4px; }
.sub { color: #4a5568; margin: 0 0 16px; }
dl.provenance { display: grid; grid-template-columns: max-content 1fr; gap: 2px 16px; margin: 0; }
dl.provenance dt { color: #4a5568; } dl.provenance dd { margin: 0; font-family: ui-monospace, Menlo, Consolas, monospace; word-break: break-all; }
table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #edf2f7; vertical-align: top; }
th { background: #f7fafc; font-weight: 600; } td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; } td.label { white-space: nowrap; }
tr.total td { font-weight: 600; border-top: 2px solid #cbd5e0; }
.legend span { display: inline-block; margin-right: 16px; } .swatch { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -1px; }
.reason { display: inline-block; padding: 0 6px; border-radius: 3px; background: #fefcbf; color: #744210; font-size: 12px; }
.note { color: #4a5568; font-size: 13px; } svg { display: block; max-width: 100%; height: auto; } svg text { font: 12px system-ui, sans-serif; fill: #1a202c; }
"""


def render(summary: dict[str, Any], review: Sequence["ReviewRow"], review_total: int, provenance: dict[str, Any]) -> str:
    """The page for ``summary`` (as :func:`~bpo_classify.summary.summarize` returns it), the rows to
    review (``review_total`` of them in the file, the first ``len(review)`` listed) and ``provenance``
    (``model_version``, ``model``, ``model_note``, ``generated``, ``made_by``; absent keys are left out)."""
    source = summary["source"]
    by = summary["by"]
    weighted = summary["weight"] is not None
    unit = "hours" if weighted else "rows"
    title = f"Duty inventory: {source['name']}"
    groups = summary["groups"] or [summary["total"]]
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        # No fetch of any kind and no script, whatever the page holds.
        "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'; img-src data:\">",
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{escape(title)}</h1>",
        f'<p class="sub">{source["rows"]:,} rows{_grouping(by)}; shares of {escape(_measure(summary))}.</p>',
        '<p class="legend">' + "".join(
            f'<span><span class="swatch" style="background:{COLOURS[o]}"></span>{o}</span>' for o in (FRONT, "back-office")
        ) + "</p>",
        f"<h2>Front- and back-office share{' per ' + escape(' / '.join(by)) if by else ''}</h2>",
        _office_bars(groups, summary["total"] if by else None, weighted),
        f"<h2>{unit.capitalize()} per service tower</h2>",
        _tower_bars(summary["total"], weighted),
        f"<h2>{'Per ' + escape(' / '.join(by)) if by else 'Total'}</h2>",
        _group_table(summary, weighted),
        f"<h2>Rows that need review ({review_total:,})</h2>",
        _review_table(review, review_total, by),
        "<h2>Where this came from</h2>",
        _provenance(source, summary, provenance),
        "</body></html>",
    ]
    return "\n".join(parts) + "\n"


def _grouping(by: Sequence[str]) -> str:
    return f" grouped by {escape(' / '.join(by))}" if by else ""


def _measure(summary: dict[str, Any]) -> str:
    return f"the {summary['weight']} column" if summary["weight"] is not None else "rows"


def _label(group: dict[str, str]) -> str:
    return " / ".join(group.values()) if group else "total"


def _amount(value: float) -> str:
    """A weight or row count as people read it: 12, 37.5, 1,234.

    Tower hours are a share times a total, so 58 may arrive as 57.99999999999999: rounded
    to a tenth first, it reads as 58, not "58.0".

    Example:
        >>> _amount(57.99999999999999), _amount(37.5), _amount(1234)
        ('58', '37.5', '1,234')
    """
    value = round(float(value), 1)
    return f"{value:,.0f}" if value.is_integer() else f"{value:,.1f}"


def _percent(share: float | None) -> str:
    return "-" if share is None else f"{share:.0%}" if share in (0, 1) else f"{share:.1%}"


def _clip(text: str, width: int) -> str:
    """``text`` cut to about ``width`` pixels of 12 px type (the full text stays in the row's title)."""
    limit = max(width // 7, 4)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _svg(rows: int, description: str, body: list[str]) -> str:
    height = rows * ROW_HEIGHT + 8
    width = LABEL_WIDTH + BAR_WIDTH + VALUE_WIDTH
    return (
        f'<svg role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}">'
        f"<title>{escape(description)}</title>" + "".join(body) + "</svg>"
    )


def _office_bars(groups: Sequence[dict[str, Any]], total: dict[str, Any] | None, weighted: bool) -> str:
    """One stacked bar per group (and the total): the front share, then the back share."""
    body = []
    for i, g in enumerate([*groups, *([total] if total else [])]):
        y = i * ROW_HEIGHT + 4
        name = _label(g["group"])
        front, back = g["front_share"], g["back_share"]
        count = f"{_amount(g['weight'])} h" if weighted else f"{g['labelled_rows']:,} rows"
        tip = f"{name}: front-office {_percent(front)}, back-office {_percent(back)} of {count}"
        body.append(f'<g class="bar" data-group="{escape(name)}"><title>{escape(tip)}</title>')
        weight = "bold" if g is total else "normal"
        body.append(f'<text x="{LABEL_WIDTH - 8}" y="{y + 16}" text-anchor="end" font-weight="{weight}">{escape(_clip(name, LABEL_WIDTH - 12))}</text>')
        if front is None:
            body.append(f'<rect x="{LABEL_WIDTH}" y="{y}" width="{BAR_WIDTH}" height="{ROW_HEIGHT - 6}" fill="#e2e8f0"/>')
            body.append(f'<text x="{LABEL_WIDTH + 6}" y="{y + 16}">no labelled rows</text>')
        else:
            x = LABEL_WIDTH
            for office, share in ((FRONT, front), ("back-office", back)):
                w = round(share * BAR_WIDTH, 1)
                if w > 0:
                    body.append(f'<rect class="{office}" x="{x}" y="{y}" width="{w}" height="{ROW_HEIGHT - 6}" fill="{COLOURS[office]}"/>')
                    if w >= 40:
                        body.append(f'<text x="{x + w / 2}" y="{y + 15}" text-anchor="middle" style="fill:#fff">{_percent(share)}</text>')
                x += w
        body.append(f'<text x="{LABEL_WIDTH + BAR_WIDTH + 8}" y="{y + 16}">{count}</text></g>')
    return _svg(len(groups) + bool(total), "Front- and back-office share per group", body)


def _tower_bars(total: dict[str, Any], weighted: bool) -> str:
    """One bar per function of the whole file, largest first, in its office's colour."""
    amount = total["weight"]
    towers = sorted(total["functions"].items(), key=lambda kv: -kv[1])
    if not towers:
        return '<p class="note">No labelled rows.</p>'
    body = []
    for i, (function, share) in enumerate(towers):
        y = i * ROW_HEIGHT + 4
        value = share * amount
        shown = f"{_amount(value)} {'h' if weighted else 'rows'} ({_percent(share)})"
        w = max(round(share / towers[0][1] * BAR_WIDTH, 1), 1)
        office = FUNCTION_OFFICE.get(function, "back-office")
        body.append(f'<g class="tower" data-function="{escape(function)}"><title>{escape(f"{function} ({office}): {shown}")}</title>')
        body.append(f'<text x="{LABEL_WIDTH - 8}" y="{y + 16}" text-anchor="end">{escape(function)}</text>')
        body.append(f'<rect x="{LABEL_WIDTH}" y="{y}" width="{w}" height="{ROW_HEIGHT - 6}" fill="{COLOURS[office]}"/>')
        body.append(f'<text x="{LABEL_WIDTH + w + 6}" y="{y + 16}">{shown}</text></g>')
    return _svg(len(towers), "Hours or rows per service tower", body)


def _group_table(summary: dict[str, Any], weighted: bool) -> str:
    by = summary["by"]
    head = [*(escape(b) for b in by), "rows", *(["hours"] if weighted else []), "front", "back", "review", "service towers"]
    numeric = set(range(len(by), len(head) - 1))
    lines = ["<table><thead><tr>" + "".join(f'<th class="num">{h}</th>' if i in numeric else f"<th>{h}</th>" for i, h in enumerate(head)) + "</tr></thead><tbody>"]
    rows = [*summary["groups"], summary["total"]]
    for g in rows:
        total = g is summary["total"]
        keys = [escape(g["group"].get(b, "")) for b in by] if not total else (["total"] + [""] * (len(by) - 1) if by else [])
        towers = ", ".join(f"{escape(f)} {_percent(s)}" for f, s in sorted(g["functions"].items(), key=lambda kv: -kv[1]))
        cells = [*keys, f"{g['rows']:,}", *([_amount(g["weight"])] if weighted else []), _percent(g["front_share"]),
                 _percent(g["back_share"]), f"{g['needs_review']:,}", towers]
        lines.append(('<tr class="total">' if total else "<tr>") + "".join(
            f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>" for i, c in enumerate(cells)) + "</tr>")
    lines.append("</tbody></table>")
    reasons = summary["total"]["review_reasons"]
    if reasons:
        lines.append('<p class="note">Review reasons: ' + ", ".join(f"{escape(r)} {n:,}" for r, n in reasons.items()) + "</p>")
    return "\n".join(lines)


def _review_table(review: Sequence["ReviewRow"], total: int, by: Sequence[str]) -> str:
    if not total:
        return '<p class="note">No row needs review.</p>'
    head = ["row", *(escape(b) for b in by), "text", "office", "function", "p(office)", "reason"]
    lines = ['<table class="review"><thead><tr>' + "".join(f"<th>{h}</th>" for h in head) + "</tr></thead><tbody>"]
    for r in review:
        cells = [f'<td class="num">{r.row}</td>', *(f"<td>{escape(v)}</td>" for v in r.group), f"<td>{escape(r.text)}</td>",
                 f'<td class="label">{escape(r.office) or "-"}</td>', f'<td class="label">{escape(r.function) or "-"}</td>',
                 f'<td class="num">{escape(r.office_confidence) or "-"}</td>', f'<td><span class="reason">{escape(r.reason)}</span></td>']
        lines.append("<tr>" + "".join(cells) + "</tr>")
    lines.append("</tbody></table>")
    if total > len(review):
        lines.append(f'<p class="note">The first {len(review):,} of {total:,} are listed; the labelled file has them all (needs_review true).</p>')
    return "\n".join(lines)


def _provenance(source: dict[str, Any], summary: dict[str, Any], provenance: dict[str, Any]) -> str:
    items = [
        ("labelled file", source["name"]),
        ("SHA-256", source.get("sha256") or "not computed (read from standard input)"),
        ("rows", f"{source['rows']:,}"),
        ("grouped by", " / ".join(summary["by"]) or "-"),
        ("shares of", _measure(summary)),
        ("model", " ".join(str(provenance[k]) for k in ("model_version", "model_note") if provenance.get(k))),
        ("model file", provenance.get("model")),
        ("generated", provenance.get("generated")),
        ("made by", provenance.get("made_by")),
    ]
    return '<dl class="provenance">' + "".join(
        f"<dt>{escape(k)}</dt><dd>{escape(str(v))}</dd>" for k, v in items if v) + "</dl>"


def page(
    summary: dict[str, Any], labelled: str | Path, model: "Model", *, model_name: str, text_column: str | None = None,
    prefix: str | None = None, encoding: str = "utf-8", generated: datetime | None = None,
) -> str:
    """The report of ``summary``, the summary of the labelled file ``labelled``: its rows to review are
    read from the file, the model version is ``model``'s (a labelled file does not name the model that
    labelled it, so give the one that did), ``generated`` defaults to now (UTC).

    Example:
        >>> import tempfile, pathlib
        >>> from bpo_classify import load_model
        >>> from bpo_classify.summary import summarize
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "l.csv").write_text(
        ...     "role,duty,office,office_confidence,function,function_confidence,needs_review,review_reason\\n"
        ...     "Agent,<b>refunds</b>,front-office,0.55,customer_service,0.5,true,mixed_task\\n")
        >>> html = page(summarize(d / "l.csv", ["role"]), d / "l.csv", load_model(), model_name="default")
        >>> "&lt;b&gt;refunds&lt;/b&gt;" in html, "mixed_task" in html
        (True, True)
    """
    from . import __version__
    from .reporting import model_version
    from .summary import review_rows

    review, total = review_rows(labelled, summary["by"], prefix, encoding, text_column)
    moment = generated or datetime.now(timezone.utc)
    provenance = {
        "model_version": model_version(model),
        "model_note": "(the model given to summarize: a labelled file does not record the model that labelled it)",
        "model": model_name,
        "generated": moment.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "made_by": f"bpo-classify {__version__}",
    }
    return render(summary, review, total, provenance)
