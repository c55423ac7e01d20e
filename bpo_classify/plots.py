"""PNG figures of an evaluation report: confusion matrices and the office reliability diagram.

Needs matplotlib, an optional extra (``pip install 'bpo-classify[plots]'``).

Example:
    >>> from bpo_classify.evaluation import score
    >>> import tempfile, pathlib
    >>> ev = {"name": "demo", **score(["back-office", "front-office"], [0.2, 0.9], ["payroll", "sales"], ["payroll", "sales"])}
    >>> [p.name for p in write_plots({"evaluations": [ev]}, pathlib.Path(tempfile.mkdtemp()))]
    ['demo-office-confusion.png', 'demo-function-confusion.png', 'demo-reliability.png']
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from .extras import PLOTS


def _pyplot():  # type: ignore[no-untyped-def]
    PLOTS.require("--plots")
    import matplotlib

    matplotlib.use("Agg")  # files only; never needs a display
    import matplotlib.pyplot as plt

    return plt


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _confusion(plt, block: dict[str, Any], title: str, path: Path) -> None:  # type: ignore[no-untyped-def]
    labels, matrix = block["confusion"]["labels"], block["confusion"]["matrix"]
    size = 2.2 + 0.45 * len(labels)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    top = max(max(r) for r in matrix) or 1
    for i, row in enumerate(matrix):
        for j, value in enumerate(row):
            ax.text(j, i, str(value), ha="center", va="center", color="white" if value > top / 2 else "black", fontsize=8)
    ax.set_title(title)
    fig.colorbar(image, ax=ax, fraction=0.046)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _reliability(plt, office: dict[str, Any], title: str, path: Path) -> None:  # type: ignore[no-untyped-def]
    bins = office["calibration"]["bins"]
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot([0.5, 1], [0.5, 1], "--", color="grey", label="perfectly calibrated")
    ax.plot([b["confidence"] for b in bins], [b["accuracy"] for b in bins], "o-", label="model")
    for b in bins:
        ax.annotate(str(b["rows"]), (b["confidence"], b["accuracy"]), textcoords="offset points", xytext=(4, -10), fontsize=7)
    ax.set_xlim(0.45, 1.02)
    ax.set_ylim(0.0, 1.02)
    ax.set_xlabel("office confidence (mean in bin)")
    ax.set_ylabel("accuracy in bin")
    ax.set_title(f"{title}\nECE {office['calibration']['ece']:.3f} (numbers: rows per bin)")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_plots(report: dict[str, Any], directory: Path) -> list[Path]:
    """Write the figures for every evaluation in ``report`` into ``directory``; return their paths."""
    plt = _pyplot()
    directory.mkdir(parents=True, exist_ok=True)
    written = []
    for ev in report["evaluations"]:
        slug = _slug(ev["name"])
        for label in ("office", "function"):
            path = directory / f"{slug}-{label}-confusion.png"
            _confusion(plt, ev[label], f"{ev['name']}: {label}", path)
            written.append(path)
        path = directory / f"{slug}-reliability.png"
        _reliability(plt, ev["office"], f"{ev['name']}: office reliability", path)
        written.append(path)
    return written
