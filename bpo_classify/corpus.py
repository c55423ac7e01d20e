"""Labelled data: the bundled corpus and users' training or evaluation files, checked against the policy.

Example:
    >>> data = load_labelled()            # the bundled corpus
    >>> len(data) > 2500, data.offices[0] in ("front-office", "back-office")
    (True, True)
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Sequence

from .errors import CorpusError
from .policy import FUNCTION_OFFICE, OFFICES
from .tables import TableReader

CORPUS_NAME = "bpo_tasks.csv"
AMBIGUOUS_NAME = "ambiguous_tasks.csv"
NOT_TASKS_NAME = "not_tasks.csv"
#: Values that mean "no function label" in evaluation files (e.g. where labellers disagreed).
NO_FUNCTION = {"", "none", "n/a", "na"}
#: Optional columns of labelled files by whose values ``evaluate`` also reports (kind of line, language).
GROUP_COLUMNS = ("kind", "lang")


def bundled_path(name: str = CORPUS_NAME) -> Path:
    """A bundled data set from ``datasets/``, copied into the package when it is built.

    In a source checkout (or an editable install) the package holds no copy, so the
    repository's ``datasets/`` file is used directly.
    """
    packaged = Path(str(resources.files("bpo_classify") / "data" / name))
    if packaged.is_file():
        return packaged
    return Path(__file__).resolve().parent.parent / "datasets" / name


def bundled_corpus_path() -> Path:
    """The bundled labelled corpus, ``datasets/bpo_tasks.csv``."""
    return bundled_path(CORPUS_NAME)


def load_text_column(path: str | Path, encoding: str = "utf-8") -> list[str]:
    """The non-blank cells of a file's ``text`` column (mixed tasks, not-task lines)."""
    with TableReader(path, encoding) as table:
        i = table.column("text", f"a 'text' column in {Path(path).name}")
        return [row[i] for row in table if i < len(row) and row[i].strip()]


def load_ambiguous(path: str | Path | None = None, encoding: str = "utf-8") -> list[str]:
    """Texts the policy calls genuinely mixed (column ``text``); default: the bundled set."""
    return load_text_column(bundled_path(AMBIGUOUS_NAME) if path is None else path, encoding)


def load_not_tasks(path: str | Path | None = None, encoding: str = "utf-8") -> list[str]:
    """Posting lines that are not tasks (column ``text``); default: the bundled set."""
    return load_text_column(bundled_path(NOT_TASKS_NAME) if path is None else path, encoding)


def normalise_text(text: str) -> str:
    """Lower-case and collapse white space and punctuation: the key used to find duplicates."""
    return re.sub(r"[\W_]+", " ", text.lower()).strip()


@dataclass
class LabelledData:
    """Texts with their office and (possibly missing) function labels, plus where they came from."""

    texts: list[str]
    offices: list[str]
    functions: list[str | None]
    rows: list[int] = field(default_factory=list)  # 1-based data-row numbers in the source file
    source: str = ""
    sha256: str = ""
    #: Values of the file's optional :data:`GROUP_COLUMNS` (``kind``, ``lang``), one per row.
    groups: dict[str, list[str]] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.texts)


def distinct_rows(data: LabelledData, weights: Sequence[float] | None = None) -> tuple[LabelledData, list[float] | None]:
    """``data`` with each (text, office, function) once, where it first appears, and each kept
    row's weight: the sum of its copies' ``weights`` (default 1 each), i.e. how many times it was there.

    With these weights a logistic regression fits the same objective as on every copy (scikit-learn
    sums weighted row losses), in the memory and time of the distinct rows; what is fitted on the
    texts alone (TF-IDF document frequencies) counts each text once. With no repeated row, ``data``
    and ``weights`` (as a list) come back unchanged.

    Example:
        >>> d, w = distinct_rows(LabelledData(["a", "b", "a"], ["back-office"] * 3, ["payroll"] * 3, [1, 2, 3]))
        >>> d.texts, d.rows, w
        (['a', 'b'], [1, 2], [2.0, 1.0])
    """
    first: dict[tuple[str, str, str | None], int] = {}
    for i, key in enumerate(zip(data.texts, data.offices, data.functions)):
        first.setdefault(key, i)
    if len(first) == len(data):
        return data, None if weights is None else list(weights)
    kept = sorted(first.values())
    position = {i: k for k, i in enumerate(kept)}
    summed = [0.0] * len(kept)
    for i, key in enumerate(zip(data.texts, data.offices, data.functions)):
        summed[position[first[key]]] += 1.0 if weights is None else float(weights[i])
    pick = lambda values: [values[i] for i in kept]  # noqa: E731
    distinct = LabelledData(
        pick(data.texts), pick(data.offices), pick(data.functions), pick(data.rows) if data.rows else [],
        data.source, data.sha256, {name: pick(values) for name, values in data.groups.items()},
    )
    return distinct, summed


@dataclass
class DataProblem:
    """One problem found in labelled data, with the data rows it concerns."""

    kind: str  # empty_text | unknown_office | unknown_function | contradiction | duplicate | conflict | too_few
    message: str
    rows: list[int]
    fatal: bool = True

    def __str__(self) -> str:
        shown = ", ".join(map(str, self.rows[:10])) + (f" and {len(self.rows) - 10} more" if len(self.rows) > 10 else "")
        return f"{self.message}" + (f" (rows {shown})" if self.rows else "")


def load_labelled(
    path: str | Path | None = None,
    *,
    text_column: str = "text",
    office_column: str = "office",
    function_column: str | None = "function",
    encoding: str = "utf-8",
    require_functions: bool = True,
    min_per_class: int = 0,
    check: bool = True,
) -> LabelledData:
    """Read a labelled CSV/TSV. With no ``path``, the bundled corpus.

    Raises :class:`CorpusError` for labels outside the policy, blank texts, an office
    that contradicts its function, duplicate texts with conflicting labels, a file with
    no rows, or (``min_per_class`` > 0) a function with fewer rows than that; the message
    lists the rows. With ``check=False`` the labels are not judged (:func:`check_labelled`
    does that).
    """
    path = bundled_corpus_path() if path is None else path
    digest = hashlib.sha256()
    texts, offices, functions, rows = [], [], [], []
    with TableReader(path, encoding) as table:
        ti = table.column(text_column, "--text-column")
        oi = table.column(office_column, "--office-column")
        fi = table.column(function_column, "--function-column") if function_column else None
        gi = {name: table.header.index(name) for name in GROUP_COLUMNS if name in table.header}
        groups: dict[str, list[str]] = {name: [] for name in gi}
        for row in table:
            digest.update(("\x1f".join(row) + "\x1e").encode("utf-8"))
            if not any(cell.strip() for cell in row):
                continue  # blank line
            cell = lambda i: row[i].strip() if i is not None and i < len(row) else ""  # noqa: E731
            texts.append(row[ti] if ti < len(row) else "")
            offices.append(cell(oi))
            fn = cell(fi)
            functions.append(None if fn.lower() in NO_FUNCTION else fn)
            rows.append(table.line)
            for name, i in gi.items():
                groups[name].append(cell(i))
    data = LabelledData(texts, offices, functions, rows, str(path), digest.hexdigest(), groups)
    if check:
        problems = check_labelled(data, require_functions=require_functions, min_per_class=min_per_class)
        if not require_functions:
            # Scoring files may pair an office with a function of the other office (labellers
            # judged them separately); that blocks training but not evaluation.
            problems = [p for p in problems if p.kind != "contradiction"]
        refuse(data, problems)
    return data


def refuse(data: LabelledData, problems: list[DataProblem], listed: bool = False) -> None:
    """Raise :class:`CorpusError` if any of ``problems`` is fatal: naming the first three, or, when the
    caller has ``listed`` them all already, only how many there are."""
    fatal = [p for p in problems if p.fatal]
    if not fatal:
        return
    if listed:
        raise CorpusError(f"the training data has {len(fatal)} problem{'s' if len(fatal) > 1 else ''} (listed above); nothing was trained")
    detail = "; ".join(str(p) for p in fatal[:3])
    more = f"; and {len(fatal) - 3} more problems" if len(fatal) > 3 else ""
    raise CorpusError(f"{data.source}: {detail}{more}; run `bpo-classify check-data {data.source}` for the full list")


def check_labelled(data: LabelledData, *, require_functions: bool = True, min_per_class: int = 0) -> list[DataProblem]:
    """Every problem in ``data``: fatal ones (bad labels, blank texts) and warnings (duplicates).

    ``min_per_class`` > 0 also reports classes too small for that many CV folds.
    """
    problems: list[DataProblem] = []
    by_kind: dict[str, list[int]] = defaultdict(list)
    bad_office: dict[str, list[int]] = defaultdict(list)
    bad_function: dict[str, list[int]] = defaultdict(list)
    contradictions: list[int] = []
    for text, office, function, row in zip(data.texts, data.offices, data.functions, data.rows):
        if not text.strip():
            by_kind["empty_text"].append(row)
        if office not in OFFICES:
            bad_office[office].append(row)
        if function is None:
            if require_functions:
                bad_function[""].append(row)
        elif function not in FUNCTION_OFFICE:
            bad_function[function].append(row)
        elif office in OFFICES and FUNCTION_OFFICE[function] != office:
            contradictions.append(row)
    if not data.texts:
        problems.append(DataProblem("empty", "no labelled rows; the file has a header but no data", []))
    if by_kind["empty_text"]:
        problems.append(DataProblem("empty_text", "empty text", by_kind["empty_text"]))
    for value, rows in bad_office.items():
        problems.append(
            DataProblem("unknown_office", f"office {value!r} is not one of {', '.join(OFFICES)}", rows)
        )
    for value, rows in bad_function.items():
        what = "missing function" if not value else f"function {value!r} is not one of the fifteen policy functions"
        problems.append(DataProblem("unknown_function", what, rows))
    if contradictions:
        problems.append(
            DataProblem("contradiction", "office contradicts the policy's office for the function", contradictions)
        )
    if data.texts and not problems:
        counts = Counter(data.offices)
        if len(counts) < 2:
            problems.append(
                DataProblem("one_class", f"only one office ({next(iter(counts))}); training needs both", [])
            )
    problems += _duplicates(data)
    if min_per_class:
        for label, n in sorted(Counter(f for f in data.functions if f).items()):
            if n < min_per_class:
                problems.append(
                    DataProblem(
                        "too_few",
                        f"function {label!r} has {n} rows; cross-validation needs at least {min_per_class}",
                        [r for r, f in zip(data.rows, data.functions) if f == label],
                    )
                )
    return problems


def _duplicates(data: LabelledData) -> list[DataProblem]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, text in enumerate(data.texts):
        if text.strip():
            groups[normalise_text(text)].append(i)
    problems = []
    for members in groups.values():
        if len(members) < 2:
            continue
        labels = {(data.offices[i], data.functions[i]) for i in members}
        rows = [data.rows[i] for i in members]
        if len(labels) > 1:
            shown = " vs ".join(f"{o}/{f}" for o, f in sorted(labels, key=str))
            problems.append(
                DataProblem("conflict", f"same text with conflicting labels ({shown}): {data.texts[members[0]]!r}", rows)
            )
        else:
            problems.append(
                DataProblem("duplicate", f"duplicate text: {data.texts[members[0]]!r}", rows, fatal=False)
            )
    return problems
