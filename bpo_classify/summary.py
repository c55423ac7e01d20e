"""Per-group summaries of a labelled file: front/back share, service towers, rows to review.

What a solution architect asks of a labelled duty inventory: for each role, site or
department (or several columns at once), how much of the work is customer-facing, how
it splits over the service towers (the functions), and how many rows a person must look
at and why; with ``weight`` (hours per week, FTE) the shares are of that weight, not of
rows. It reads what ``label`` wrote (any ``--prefix``): CSV, TSV (``.gz`` too), Parquet or an
Excel workbook, by the file's name (see :func:`~bpo_classify.readers.open_table`).

Example:
    >>> import tempfile, pathlib
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> _ = (d / "l.csv").write_text(
    ...     "role,hours,office,office_confidence,function,function_confidence,needs_review,review_reason\\n"
    ...     "Clerk,30,back-office,0.99,finance_accounting,0.98,false,\\n"
    ...     "Clerk,10,front-office,0.70,customer_service,0.69,true,low_confidence\\n")
    >>> s = summarize(d / "l.csv", by=["role"], weight="hours")
    >>> g = s["groups"][0]
    >>> g["group"], g["rows"], g["front_share"], g["functions"]["finance_accounting"], g["review_reasons"]
    ({'role': 'Clerk'}, 2, 0.25, 0.75, {'low_confidence': 1})
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from .errors import InputFileError, MissingColumnError
from .policy import BACK, FRONT, FUNCTIONS
from .readers import open_table
from .tables import name_list

#: The JSON schema's name; keys are only added within a version (pinned by tests/test_summary.py).
SCHEMA = "bpo-classify/summary/1"
#: How many rows to review the HTML report lists (it says how many more the file has).
REVIEW_LIMIT = 1000


@dataclass
class _Tally:
    """Running counts of one group."""

    rows: int = 0
    labelled: int = 0
    weight: float = 0.0
    office: Counter = field(default_factory=Counter)  # office -> weight (or rows)
    function: Counter = field(default_factory=Counter)  # function -> weight (or rows)
    review: int = 0
    reasons: Counter = field(default_factory=Counter)

    def add(self, office: str, function: str, needs_review: bool, reason: str, weight: float) -> None:
        self.rows += 1
        if needs_review:
            self.review += 1
            self.reasons[reason or "low_confidence"] += 1
        if office not in (FRONT, BACK):
            return  # an empty text: counted as a row to review, not in the shares
        self.labelled += 1
        self.weight += weight
        self.office[office] += weight
        if function:
            self.function[function] += weight

    def as_dict(self, group: dict[str, str]) -> dict[str, Any]:
        total = self.weight

        def share(x: float) -> float | None:
            return round(x / total, 4) if total else None

        return {
            "group": group,
            "rows": self.rows,
            "labelled_rows": self.labelled,
            "weight": round(total, 4),
            "front_office": round(float(self.office[FRONT]), 4),
            "back_office": round(float(self.office[BACK]), 4),
            "front_share": share(self.office[FRONT]),
            "back_share": share(self.office[BACK]),
            "functions": {f: share(self.function[f]) for f in FUNCTIONS if self.function[f]},
            "needs_review": self.review,
            "review_reasons": dict(sorted(self.reasons.items())),
        }


def _columns(header: Sequence[str], prefix: str | None, source: str) -> dict[str, int]:
    """Where the labels are: ``prefix`` + office, function, needs_review, review_reason."""
    if prefix is None:  # find the prefix label used: the column ending in "office" beside a "function"
        found = [h[: -len("office")] for h in header if h.endswith("office") and h[: -len("office")] + "function" in header]
        prefix = found[-1] if found else ""
    wanted = {name: prefix + name for name in ("office", "function", "needs_review", "review_reason")}
    missing = [w for w in wanted.values() if w not in header]
    if missing:
        raise MissingColumnError(
            f"{source} has no {', '.join(missing)} column: summarize reads what `bpo-classify label` wrote "
            f"(columns: {name_list(header)}); label it first, or give --prefix"
        )
    return {name: header.index(column) for name, column in wanted.items()}


def _number(cell: str, column: str, row: int, source: str) -> float:
    text = cell.strip().replace(",", "")
    if not text:
        return 0.0
    try:
        value = float(text)
    except ValueError:
        raise InputFileError(f"{source}: --weight column {column!r} holds {cell!r} on data row {row}, not a number") from None
    if value != value or value < 0 or value == float("inf"):
        raise InputFileError(f"{source}: --weight column {column!r} holds {cell!r} on data row {row}; weights are numbers >= 0")
    return value


def summarize(
    path: str | Path, by: Sequence[str] = (), weight: str | None = None, prefix: str | None = None, encoding: str = "utf-8"
) -> dict[str, Any]:
    """Summarise the labelled file at ``path`` per value of the ``by`` columns (see the module docstring).

    Returns a JSON-ready dict: ``schema``, ``source`` (name, sha256, rows), ``by``, ``weight``,
    ``groups`` (in first-seen order) and ``total``.
    """
    with open_table(path, encoding) as table:
        header, source = table.header, table.name
        labels = _columns(header, prefix, source)
        missing = [c for c in (*by, *([weight] if weight else [])) if c not in header]
        if missing:
            raise MissingColumnError(f"column {missing[0]!r} not found in {source}; available: {name_list(header)}")
        keys = [header.index(c) for c in by]
        at_weight = header.index(weight) if weight else None
        groups: dict[tuple[str, ...], _Tally] = {}
        total = _Tally()
        for n, row in enumerate(_rows(table, len(header)), 1):
            cell = lambda name: row[labels[name]]  # noqa: E731
            w = 1.0 if at_weight is None else _number(row[at_weight], weight or "", n, source)
            args = (cell("office"), cell("function"), cell("needs_review").lower() == "true", cell("review_reason"), w)
            groups.setdefault(tuple(row[k] for k in keys), _Tally()).add(*args)
            total.add(*args)
    return {
        "schema": SCHEMA,
        "source": {"name": Path(str(path)).name, "sha256": _sha256(path), "rows": total.rows},
        "by": list(by),
        "weight": weight,
        "groups": [t.as_dict(dict(zip(by, k))) for k, t in groups.items()] if by else [],
        "total": total.as_dict({}),
    }


@dataclass(frozen=True)
class ReviewRow:
    """A labelled row that needs review, as the report lists it (``row``: its data-row number in the file)."""

    row: int
    group: tuple[str, ...]
    text: str
    office: str
    function: str
    office_confidence: str
    reason: str


def review_rows(
    path: str | Path, by: Sequence[str] = (), prefix: str | None = None, encoding: str = "utf-8",
    text_column: str | None = None, limit: int = REVIEW_LIMIT,
) -> tuple[list[ReviewRow], int]:
    """The first ``limit`` rows of the labelled file that need review (in file order), and how many there are.

    The file is any format :func:`summarize` reads; the text column is found as ``review``
    finds it (give ``text_column`` when it is not clear).

    Example:
        >>> import tempfile, pathlib
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "l.csv").write_text(
        ...     "role,duty,office,office_confidence,function,function_confidence,needs_review,review_reason\\n"
        ...     "Agent,handle refunds,front-office,0.55,customer_service,0.5,true,mixed_task\\n")
        >>> rows, total = review_rows(d / "l.csv", by=["role"])
        >>> total, rows[0].row, rows[0].group, rows[0].reason
        (1, 1, ('Agent',), 'mixed_task')
    """
    from .corrections import labelled_layout

    listed: list[ReviewRow] = []
    total = 0
    with open_table(path, encoding) as table:
        layout = labelled_layout(table.header, text_column, prefix, table.name)
        added = layout.added
        keys = [table.header.index(c) for c in by]
        for n, row in enumerate(_rows(table, len(table.header)), 1):
            if row[added["needs_review"]].strip().lower() != "true":
                continue
            total += 1
            if len(listed) < limit:
                cell = lambda name: row[added[name]] if name in added else ""  # noqa: E731
                listed.append(ReviewRow(
                    n, tuple(row[k] for k in keys), row[layout.text], cell("office"), cell("function"),
                    cell("office_confidence"), cell("review_reason") or "low_confidence",
                ))
    return listed, total


def _rows(table: Iterable[list[str]], width: int) -> Iterable[list[str]]:
    for row in table:
        yield (row + [""] * width)[:width]


def _sha256(path: str | Path) -> str | None:
    if str(path) == "-":
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
