"""The review loop: which flagged rows a person should look at first, their decisions, and what they change.

- :func:`queue` reads a labelled file (the output of ``bpo-classify label``) and returns the
  rows flagged ``needs_review`` as :class:`Group` s: identical texts together (one decision
  labels them all), least certain first, each with the runner-up functions of the office shown.
- :class:`CorrectionsFile` holds the decisions: every :meth:`~CorrectionsFile.record` and
  :meth:`~CorrectionsFile.undo` rewrites the corrections CSV atomically, so killing the
  process loses nothing and reopening the file resumes where the reviewer stopped.
- :func:`apply_corrections` writes the labelled file with the reviewed rows' labels replaced;
  :func:`load_additions` checks corrections files for ``train --add``.

Example:
    >>> import pathlib, tempfile
    >>> d = pathlib.Path(tempfile.mkdtemp())
    >>> store = CorrectionsFile(d / "corrections.csv")
    >>> store.record("answer the phones", "front-office", "reception", rows=2).function
    'reception'
    >>> CorrectionsFile(d / "corrections.csv").decided("answer the phones").rows
    2
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from .atomic import atomic_output
from .corpus import DataProblem, LabelledData, check_labelled, load_labelled, normalise_text
from .errors import CorpusError, InputFileError, MissingColumnError
from .model import Model, joint_function_probability
from .outputs import ADDED_COLUMNS
from .policy import BACK, FRONT, FUNCTION_OFFICE, FUNCTIONS, OFFICES
from .tables import TableReader, write_table

#: The corrections file's columns: what was decided, when, and what the model had said.
CORRECTION_COLUMNS = ("text", "office", "function", "decided_at", "rows", "model_office", "model_function", "review_reason")
#: The column ``apply-corrections`` adds.
REVIEWED_COLUMN = "reviewed"
#: How many runner-up functions a group shows.
RUNNERS_UP = 3


# -- the labelled file ----------------------------------------------------------------------
@dataclass(frozen=True)
class LabelledLayout:
    """Where a labelled file keeps the text and the columns ``label`` added (with their ``prefix``)."""

    header: list[str]
    text: int
    prefix: str
    added: dict[str, int]  # unprefixed added-column name -> index

    @property
    def other_columns(self) -> list[int]:
        """The input's own columns besides the text (role, site, ...)."""
        return [i for i in range(len(self.header)) if i != self.text and i not in self.added.values()]


def labelled_layout(header: Sequence[str], text_column: str | None = None, prefix: str | None = None, source: str = "input") -> LabelledLayout:
    """Find the text column and the added columns of a labelled file.

    The prefix is the one in front of ``needs_review`` (``label --prefix``); pass it when there are several.

    Example:
        >>> layout = labelled_layout(["role", "duty", *ADDED_COLUMNS])
        >>> layout.text, layout.prefix, layout.added["needs_review"]
        (1, '', 6)
    """
    from .labeling import choose_text_column

    header = list(header)
    required = ("office", "function", "needs_review")
    if prefix is None:
        found = [name[: -len("needs_review")] for name in header if name.endswith("needs_review")]
        found = [p for p in found if all(p + n in header for n in required)]
        if not found:
            raise MissingColumnError(
                f"{source} is not a labelled file: it has no office, function and needs_review columns; "
                "label it first with `bpo-classify label`"
            )
        if len(found) > 1:
            raise MissingColumnError(f"{source} has several sets of labels (prefixes {', '.join(map(repr, found))}); choose one with --prefix")
        prefix = found[0]
    missing = [prefix + n for n in required if prefix + n not in header]
    if missing:
        raise MissingColumnError(f"column(s) {', '.join(missing)} not found in {source}; available: {', '.join(header)}; check --prefix")
    added = {n: header.index(prefix + n) for n in ADDED_COLUMNS if prefix + n in header}
    own = [name for i, name in enumerate(header) if i not in added.values()]
    text = header.index(own[choose_text_column(own, text_column, source)])
    return LabelledLayout(header, text, prefix, added)


def _cell(row: Sequence[str], i: int | None) -> str:
    return row[i] if i is not None and i < len(row) else ""


# -- the queue ------------------------------------------------------------------------------
@dataclass
class Group:
    """The flagged rows that share one text: what the model said of it and what a person is asked.

    ``certainty`` is the probability of the office and function shown together (the file's
    ``function_confidence``); the queue shows the least certain first.
    """

    id: int
    text: str
    rows: list[int]  # 1-based data-row numbers in the labelled file
    columns: dict[str, str]  # the first row's other columns
    office: str
    office_confidence: float | None
    function: str
    function_confidence: float | None
    review_reason: str
    runners_up: list[tuple[str, float]] = field(default_factory=list)

    @property
    def certainty(self) -> float:
        return self.function_confidence if self.function_confidence is not None else 0.0

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["count"] = len(self.rows)
        d["runners_up"] = [{"function": f, "confidence": c} for f, c in self.runners_up]
        return d


def _number(cell: str) -> float | None:
    try:
        value = float(cell) if cell.strip() else None
    except ValueError:
        return None
    return value if value is not None and value == value else None  # NaN: no number


def queue(labelled: str | Path, model: Model, *, text_column: str | None = None, prefix: str | None = None, encoding: str = "utf-8") -> list[Group]:
    """The rows of ``labelled`` flagged ``needs_review``, one :class:`Group` per distinct text, least certain first.

    Rows without text are left out (there is nothing to decide). Ties go to the group
    covering more rows, then to the earlier one. The runner-up functions are the model's,
    within the office the file shows.
    """
    groups: dict[str, Group] = {}
    with TableReader(labelled, encoding) as table:
        layout = labelled_layout(table.header, text_column, prefix, table.name)
        a = layout.added
        names = [layout.header[i] for i in layout.other_columns]
        for row in table:
            if _cell(row, a["needs_review"]).strip().lower() != "true":
                continue
            text = _cell(row, layout.text)
            if not text.strip():
                continue
            group = groups.get(text)
            if group is None:
                office, function = _cell(row, a["office"]), _cell(row, a["function"])
                groups[text] = Group(
                    len(groups), text, [], dict(zip(names, (_cell(row, i) for i in layout.other_columns))),
                    office, _number(_cell(row, a.get("office_confidence"))), function,
                    _number(_cell(row, a.get("function_confidence"))), _cell(row, a.get("review_reason")),
                )
                group = groups[text]
            group.rows.append(table.line)
    found = list(groups.values())
    ranked = runners_up(
        model, [g.text for g in found], [g.office for g in found], [g.function for g in found],
        office_confidence=[g.office_confidence for g in found],
    )
    for group, runners in zip(found, ranked):
        group.runners_up = runners
    found.sort(key=lambda g: (g.certainty, -len(g.rows), g.rows[0]))
    for k, group in enumerate(found):
        group.id = k
    return found


def runners_up(
    model: Model, texts: Sequence[str], offices: Sequence[str], shown: Sequence[str], k: int = RUNNERS_UP,
    office_confidence: Sequence[float | None] | None = None,
) -> list[list[tuple[str, float]]]:
    """For each text, the ``k`` likeliest functions of its office other than the one ``shown``.

    Probabilities are P(function | office) from the model's function probabilities, renormalised
    over the office's functions (an office the policy does not know gives no runners-up), times
    ``office_confidence`` when given: the scale of ``label``'s ``function_confidence``.

    Example:
        >>> from bpo_classify import load_model
        >>> [f for f, _ in runners_up(load_model(), ["reconcile vendor invoices"], ["back-office"], ["finance_accounting"], 2)[0]]
        ['supply_chain', 'data_processing']
    """
    if not texts:
        return []
    classes = model.function_classes
    sure = [1.0 if c is None else c for c in office_confidence] if office_confidence is not None else [1.0] * len(texts)
    front = np.array([c if office == FRONT else 1.0 - c for office, c in zip(offices, sure)])
    joint = joint_function_probability(model.function_proba(list(texts)), classes, front)
    out = []
    for p, office, current in zip(joint, offices, shown):
        mine = [i for i, c in enumerate(classes) if FUNCTION_OFFICE[c] == office and c != current]
        out.append([(classes[i], float(p[i])) for i in sorted(mine, key=lambda i: -p[i])[:k]])
    return out


def explain_group(model: Model, text: str, top: int = 6) -> dict[str, Any]:
    """The words that pushed ``text`` towards front-office and towards back-office (from ``explain``), strongest first,
    and the mixed-task detector's probability."""
    from .explain import explain

    e = explain(model, text)
    front = [{"term": t.term, "kind": t.kind, "contribution": t.contribution} for t in e.terms if t.contribution > 0][:top]
    back = [{"term": t.term, "kind": t.kind, "contribution": t.contribution} for t in e.terms if t.contribution < 0][:top]
    return {"front": front, "back": back, "mixed_probability": e.mixed_probability, "clear_front_probability": e.clear_front_probability}


# -- decisions ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Decision:
    """One reviewed text: the labels a person chose, when, and what the model had said."""

    text: str
    office: str
    function: str
    decided_at: str
    rows: int = 1
    model_office: str = ""
    model_function: str = ""
    review_reason: str = ""

    def cells(self) -> list[str]:
        return [str(getattr(self, c)) for c in CORRECTION_COLUMNS]


def check_labels(office: str, function: str) -> None:
    """:class:`CorpusError` unless ``office`` and ``function`` are policy labels that belong together.

    Example:
        >>> check_labels("front-office", "payroll")
        Traceback (most recent call last):
        ...
        bpo_classify.errors.CorpusError: function 'payroll' belongs to back-office, not front-office
    """
    if office not in OFFICES:
        raise CorpusError(f"office {office!r} is not one of {', '.join(OFFICES)}")
    if function not in FUNCTION_OFFICE:
        raise CorpusError(f"function {function!r} is not one of the fifteen policy functions")
    if FUNCTION_OFFICE[function] != office:
        raise CorpusError(f"function {function!r} belongs to {FUNCTION_OFFICE[function]}, not {office}")


class CorrectionsFile:
    """The decisions of a review, kept in a CSV that is rewritten atomically after each change.

    One decision per text: deciding a text again replaces the earlier decision (and moves it
    last, so :meth:`undo` takes back the latest one). Safe to share between threads.
    """

    def __init__(self, path: str | Path, encoding: str = "utf-8"):
        self.path = Path(path)
        self.encoding = encoding
        self._lock = threading.Lock()
        self._decisions: dict[str, Decision] = {}
        if self.path.exists():
            for decision in read_decisions(self.path, encoding):
                self._decisions.pop(decision.text, None)
                self._decisions[decision.text] = decision

    def __len__(self) -> int:
        return len(self._decisions)

    def decisions(self) -> list[Decision]:
        """Every decision, oldest first."""
        with self._lock:
            return list(self._decisions.values())

    def decided(self, text: str) -> Decision | None:
        return self._decisions.get(text)

    def record(self, text: str, office: str, function: str, *, rows: int = 1, model_office: str = "", model_function: str = "", review_reason: str = "") -> Decision:
        """Decide ``text`` (checked against the policy) and write the file before returning."""
        check_labels(office, function)
        if not text.strip():
            raise CorpusError("a decision needs a text")
        decision = Decision(text, office, function, _now(), rows, model_office, model_function, review_reason)
        with self._lock:
            previous = self._decisions.pop(text, None)
            self._decisions[text] = decision
            try:
                self._write()
            except BaseException:
                self._decisions.pop(text)
                if previous is not None:
                    self._decisions[text] = previous
                raise
        return decision

    def undo(self) -> Decision | None:
        """Take back the latest decision (None when there is none) and write the file."""
        with self._lock:
            if not self._decisions:
                return None
            text, decision = self._decisions.popitem()
            try:
                self._write()
            except BaseException:
                self._decisions[text] = decision
                raise
        return decision

    def _write(self) -> None:
        with atomic_output(self.path, encoding=self.encoding) as out:
            write_table(out, list(CORRECTION_COLUMNS), (d.cells() for d in self._decisions.values()))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="milliseconds")


def read_decisions(path: str | Path, encoding: str = "utf-8") -> list[Decision]:
    """The decisions in a corrections file, in order; :class:`InputFileError` naming the row of a bad one."""
    out = []
    with TableReader(path, encoding) as table:
        ti, oi, fi = (table.column(c, f"a corrections file with columns {', '.join(CORRECTION_COLUMNS[:3])}") for c in ("text", "office", "function"))
        extra = {c: table.header.index(c) for c in CORRECTION_COLUMNS[3:] if c in table.header}
        for row in table:
            if not any(cell.strip() for cell in row):
                continue
            text, office, function = _cell(row, ti), _cell(row, oi).strip(), _cell(row, fi).strip()
            try:
                check_labels(office, function)
            except CorpusError as exc:
                raise InputFileError(f"{table.name}: row {table.line}: {exc}") from None
            rows = _cell(row, extra.get("rows"))
            out.append(Decision(
                text, office, function, _cell(row, extra.get("decided_at")), int(rows) if rows.isdigit() else 1,
                _cell(row, extra.get("model_office")), _cell(row, extra.get("model_function")), _cell(row, extra.get("review_reason")),
            ))
    return out


# -- a review session ---------------------------------------------------------------------
#: What each review reason means, as the review page says it.
REASON_TEXT = {
    "unfamiliar_text": "the model knows too few of its words (another language, a code, gibberish)",
    "not_a_task": "it reads like a posting line that is not a task (a requirement, perk, schedule, heading)",
    "mixed_task": "it is worded like a task the policy calls mixed (talking to customers and processing)",
    "low_confidence": "the office probability is below the model's review threshold",
    "empty": "it has no text",
    "truncated": "it is longer than a task description; only its start was read",
}


class ReviewSession:
    """One labelled file under review: its queue, the model that explains it, and the corrections file.

    What the review page's routes call; every method returns JSON-ready values.

    Example:
        >>> import pathlib, tempfile
        >>> from bpo_classify import load_model
        >>> d = pathlib.Path(tempfile.mkdtemp())
        >>> _ = (d / "l.csv").write_text("text,office,function,needs_review\\nhandle refunds,front-office,customer_service,true\\n")
        >>> session = ReviewSession(d / "l.csv", d / "c.csv", load_model())
        >>> session.decide(0, "back-office", "finance_accounting")["progress"]["done"]
        1
    """

    def __init__(self, labelled: str | Path, corrections: str | Path, model: Model, *, text_column: str | None = None,
                 prefix: str | None = None, encoding: str = "utf-8"):
        self.labelled = Path(labelled)
        self.model = model
        self.groups = queue(labelled, model, text_column=text_column, prefix=prefix, encoding=encoding)
        self.store = CorrectionsFile(corrections)
        self._by_text = {g.text: g for g in self.groups}
        self._explained: dict[int, dict[str, Any]] = {}
        self._lock = threading.Lock()

    def group(self, id: int) -> Group:
        """The group with this id; :class:`KeyError` when there is none."""
        if not 0 <= id < len(self.groups):
            raise KeyError(f"no item {id}: the queue has items 0 to {len(self.groups) - 1}")
        return self.groups[id]

    def progress(self) -> dict[str, int]:
        """Texts and rows decided and still to do (decisions about texts not in this queue are not counted)."""
        done = [g for g in self.groups if self.store.decided(g.text) is not None]
        rows = sum(len(g.rows) for g in self.groups)
        done_rows = sum(len(g.rows) for g in done)
        return {"done": len(done), "todo": len(self.groups) - len(done), "total": len(self.groups),
                "done_rows": done_rows, "todo_rows": rows - done_rows, "total_rows": rows}

    def _decision(self, group: Group) -> dict[str, Any] | None:
        d = self.store.decided(group.text)
        return None if d is None else {"office": d.office, "function": d.function, "decided_at": d.decided_at}

    def state(self) -> dict[str, Any]:
        """The whole queue in order (without the explanations), the policy's functions and the progress."""
        items = []
        for g in self.groups:
            item = g.as_dict()
            item["decision"] = self._decision(g)
            items.append(item)
        return {
            "source": self.labelled.name, "corrections": str(self.store.path), "threshold": self.model.threshold,
            "functions": functions_by_office(), "reasons": REASON_TEXT, "progress": self.progress(), "items": items,
        }

    def details(self, id: int) -> dict[str, Any]:
        """One item with the words that pushed it each way (computed once, then remembered)."""
        group = self.group(id)
        with self._lock:
            words = self._explained.get(id)
            if words is None:
                words = self._explained[id] = explain_group(self.model, group.text)
        return {**group.as_dict(), "decision": self._decision(group), "words": words}

    def decide(self, id: int, office: str, function: str) -> dict[str, Any]:
        """Record the reviewer's labels for item ``id`` (written to the corrections file before returning)."""
        group = self.group(id)
        d = self.store.record(group.text, office, function, rows=len(group.rows), model_office=group.office,
                              model_function=group.function, review_reason=group.review_reason)
        return {"id": id, "decision": {"office": d.office, "function": d.function, "decided_at": d.decided_at}, "progress": self.progress()}

    def undo(self) -> dict[str, Any]:
        """Take back the latest decision; ``id`` is its item (None when it is not in this queue, or there was none)."""
        d = self.store.undo()
        group = None if d is None else self._by_text.get(d.text)
        return {"id": None if group is None else group.id, "text": None if d is None else d.text, "progress": self.progress()}


# -- applying them --------------------------------------------------------------------------
@dataclass(frozen=True)
class AppliedSummary:
    """What ``apply-corrections`` did: rows written, rows reviewed, of those how many changed label, decisions unused."""

    rows: int
    reviewed: int
    changed: int
    unused: int


def apply_corrections(
    labelled: str | Path, corrections: str | Path, output: str | Path, *, text_column: str | None = None,
    prefix: str | None = None, encoding: str = "utf-8",
) -> AppliedSummary:
    """Write ``labelled`` to ``output`` (atomically) with every reviewed row's office and function replaced.

    A row is reviewed when its text has a decision. Reviewed rows get ``needs_review`` false
    and a ``reviewed`` column true (false elsewhere); the confidences and ``review_reason``
    stay what the model said. The input is never modified.
    """
    decisions = {d.text: d for d in read_decisions(corrections, encoding)}
    if Path(output).resolve() == Path(labelled).resolve():
        raise InputFileError(f"-o {output} is the labelled file itself; write the result to a new file")
    used: set[str] = set()
    reviewed = changed = rows = 0
    with TableReader(labelled, encoding) as table:
        layout = labelled_layout(table.header, text_column, prefix, table.name)
        column = layout.prefix + REVIEWED_COLUMN
        if column in table.header:
            raise MissingColumnError(f"{table.name} already has a {column!r} column: corrections were applied to it already")
        a = layout.added
        with atomic_output(Path(output), encoding="utf-8") as out:
            def rows_out():  # type: ignore[no-untyped-def]
                nonlocal reviewed, changed, rows
                for row in table:
                    rows += 1
                    row = row + [""] * (len(layout.header) - len(row))
                    decision = decisions.get(_cell(row, layout.text))
                    if decision is None:
                        yield row + ["false"]
                        continue
                    used.add(decision.text)
                    reviewed += 1
                    changed += (row[a["office"]], row[a["function"]]) != (decision.office, decision.function)
                    row[a["office"]], row[a["function"]], row[a["needs_review"]] = decision.office, decision.function, "false"
                    yield row + ["true"]

            write_table(out, layout.header + [column], rows_out(), delimiter=table.delimiter)
    return AppliedSummary(rows, reviewed, changed, len(decisions) - len(used))


# -- training on them -----------------------------------------------------------------------
@dataclass
class Addition:
    """A corrections file checked for ``train --add``: its rows as labelled data, and their weight."""

    data: LabelledData
    weight: float = 1.0

    def describe(self) -> dict[str, Any]:
        """What the model's metadata records of it."""
        return {"source": Path(self.data.source).name, "rows": len(self.data), "sha256": file_sha256(self.data.source), "weight": self.weight}


def load_additions(paths: Sequence[str | Path], weight: float = 1.0, encoding: str = "utf-8") -> list[Addition]:
    """Read and check each corrections file (columns text, office, function).

    Raises :class:`CorpusError` listing the rows whose office contradicts the policy's office
    for the function, or whose labels are not policy labels, as ``check-data`` does.
    """
    if weight <= 0:
        raise CorpusError(f"--add-weight must be positive, not {weight}")
    out = []
    for path in paths:
        data = load_labelled(path, encoding=encoding, check=False)
        problems = [p for p in check_labelled(data) if p.fatal and p.kind != "one_class"]
        if problems:
            detail = "; ".join(str(p) for p in problems[:3])
            raise CorpusError(f"{path}: {detail}; fix those rows (a review page only writes policy pairs) and run `bpo-classify check-data {path}`")
        if not len(data):
            raise CorpusError(f"{path}: no corrections in it")
        out.append(Addition(data, float(weight)))
    return out


def combine(base: LabelledData, additions: Sequence[Addition]) -> tuple[LabelledData, np.ndarray, int]:
    """``base`` plus every addition's rows, and each row's sample weight.

    A base row whose text (normalised as ``check-data`` compares texts) a correction also
    has is dropped: the person's decision replaces it. A later file's decision replaces an
    earlier one's the same way. Returns the data, the weights and how many rows were replaced.
    """
    keep_from: list[list[bool]] = []
    sets = [base, *(a.data for a in additions)]
    seen: set[str] = set()
    for data in reversed(sets):
        keys = [normalise_text(t) for t in data.texts]
        keep_from.append([k not in seen for k in keys])
        seen.update(keys)
    keep_from.reverse()
    texts: list[str] = []
    offices: list[str] = []
    functions: list[str | None] = []
    rows: list[int] = []
    weights: list[float] = []
    for data, keep, weight in zip(sets, keep_from, [1.0, *(a.weight for a in additions)]):
        for i, kept in enumerate(keep):
            if kept:
                texts.append(data.texts[i])
                offices.append(data.offices[i])
                functions.append(data.functions[i])
                rows.append(len(rows) + 1)
                weights.append(weight)
    replaced = sum(not k for k in keep_from[0])
    combined = LabelledData(texts, offices, functions, rows, base.source, base.sha256)
    return combined, np.asarray(weights, dtype=float), replaced


def file_sha256(path: str | Path) -> str:
    """The SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def functions_by_office() -> dict[str, list[str]]:
    """The policy's functions of each office, as the review page lists them."""
    return {office: [f for f in FUNCTIONS if FUNCTION_OFFICE[f] == office] for office in (FRONT, BACK)}


__all__ = [
    "Addition", "AppliedSummary", "CORRECTION_COLUMNS", "CorrectionsFile", "Decision", "Group", "apply_corrections",
    "check_labels", "combine", "explain_group", "functions_by_office", "labelled_layout", "load_additions", "queue",
    "read_decisions", "runners_up", "DataProblem",
]
