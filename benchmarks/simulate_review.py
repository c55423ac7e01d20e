"""Does the review loop teach the model? A simulated reviewer on ``../shared/external/bpo_dev.tsv``.

Not a timed benchmark: it measures how much 50 corrections move the scores. The file's
gold labels play the reviewer's answers; the file is read from ``../shared`` for measuring
only and nothing from it is written into the repository (the labelled copy, the corrections
and the retrained models go to a temporary directory, deleted at the end).

1. The file's text and its id/kind/lang columns (no labels) are labelled with the shipped
   model, as a user would (``labeling.label_csv``).
2. A strategy picks 50 texts for the reviewer:
   - ``uncertainty``: the review page's order (``corrections.queue``: flagged rows, least
     certain first);
   - ``office-uncertainty`` (not run by default): the flagged rows by office probability alone;
   - ``random`` (seeds 0, 1, 2): 50 texts drawn at random from the whole file;
   - ``random-flagged`` (same seeds): 50 drawn at random from the flagged rows only, which
     separates the effect of the ranking from that of reviewing flagged rows at all.
   A text without a gold function (the labellers disagreed) is skipped, as a reviewer who
   cannot decide presses ``s``; the strategy moves on to its next text.
3. The reviewer's decisions go through ``corrections.CorrectionsFile`` (the page's writer),
   and the model is retrained on the bundled corpus plus them (``training.train(add=...)``,
   what ``bpo-classify train --add`` runs) with ``cv=0``: cross-validation only adds metrics
   to the model file, so the model is the one ``--cv 5`` would give, minutes sooner.
4. Before (the shipped model) and after are scored on the REST of the file: every row whose
   text was not corrected. Office macro-F1, and function accuracy on the rows that have a
   gold function. Each strategy's rest is different, so "before" is given for each.

Run: ``.venv/bin/python benchmarks/simulate_review.py [--data PATH] [--budget 50] [--seeds 0 1 2] [--add-weight W]``;
about 1.5-3 minutes per retraining on a 2-core machine (seven retrainings by default).
Results are printed as a Markdown table and, with ``--json PATH``, written as JSON.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA = ROOT.parent / "shared" / "external" / "bpo_dev.tsv"
KEPT_COLUMNS = ("id", "text", "kind", "lang")


def read_gold(path: Path) -> list[dict[str, str]]:
    with open(path, encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def write_unlabelled(rows: list[dict[str, str]], path: Path) -> None:
    with open(path, "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow([c for c in KEPT_COLUMNS if c in rows[0]])
        for row in rows:
            writer.writerow([row[c] for c in KEPT_COLUMNS if c in row])


def choose(strategy: str, seed: int, groups: list[Any], gold: list[dict[str, str]], budget: int) -> list[str]:
    """The texts the simulated reviewer decides, in order; texts without a gold function are skipped."""
    decidable = {r["text"] for r in gold if r.get("function", "").strip() and r["function"].strip().lower() != "none"}
    if strategy == "uncertainty":
        order = [g.text for g in groups]
    elif strategy == "familiar-first":  # least certain first, unfamiliar text (another language) last
        order = [g.text for g in sorted(groups, key=lambda g: (g.review_reason == "unfamiliar_text", g.id))]
    elif strategy == "office-uncertainty":  # an alternative ranking: the office probability alone
        order = [g.text for g in sorted(groups, key=lambda g: (g.office_confidence or 0.0, g.id))]
    elif strategy == "random":
        order = list(dict.fromkeys(r["text"] for r in gold))
        random.Random(seed).shuffle(order)
    elif strategy == "random-flagged":
        order = [g.text for g in groups]
        random.Random(seed).shuffle(order)
    else:
        raise ValueError(strategy)
    return [t for t in order if t in decidable][:budget]


def score_rest(model: Any, gold: list[dict[str, str]], corrected: set[str]) -> dict[str, float]:
    from bpo_classify.corpus import NO_FUNCTION, LabelledData
    from bpo_classify.evaluation import score_model

    rest = [r for r in gold if r["text"] not in corrected]
    data = LabelledData(
        [r["text"] for r in rest], [r["office"] for r in rest],
        [None if r.get("function", "").strip().lower() in NO_FUNCTION else r["function"].strip() for r in rest],
        list(range(1, len(rest) + 1)), "rest",
    )
    report = score_model(model, data)
    return {
        "rows": len(rest),
        "office_macro_f1": report["office"]["macro_f1"],
        "office_accuracy": report["office"]["accuracy"],
        "function_rows": report["function"]["rows"],
        "function_accuracy": report["function"]["accuracy"],
    }


def simulate(data: Path, budget: int, seeds: list[int], strategies: list[str], weight: float = 1.0) -> dict[str, Any]:
    from bpo_classify import load_model
    from bpo_classify.corrections import CorrectionsFile, queue
    from bpo_classify.labeling import label_csv
    from bpo_classify.training import train

    gold = read_gold(data)
    by_text = {r["text"]: r for r in gold}
    shipped = load_model()
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        write_unlabelled(gold, work / "unlabelled.csv")
        label_csv(work / "unlabelled.csv", work / "labelled.csv", text_column="text")
        groups = queue(work / "labelled.csv", shipped)
        deterministic = ("uncertainty", "office-uncertainty", "familiar-first")
        plan = [(s, 0) for s in deterministic] + [(s, seed) for s in strategies if s not in deterministic for seed in seeds]
        for strategy, seed in plan:
            if strategy not in strategies:
                continue
            texts = choose(strategy, seed, groups, gold, budget)
            path = work / f"corrections-{strategy}-{seed}.csv"
            store = CorrectionsFile(path)
            flagged = {g.text: g for g in groups}
            for text in texts:
                truth, g = by_text[text], flagged.get(text)
                store.record(text, truth["office"], truth["function"].strip(), model_office=g.office if g else "", model_function=g.function if g else "")
            started = time.monotonic()
            retrained = train(add=[path], add_weight=weight, cv=0, seed=0).model
            seconds = time.monotonic() - started
            corrected = set(texts)
            run = {
                "strategy": strategy, "seed": None if strategy in deterministic else seed, "corrections": len(texts),
                "flagged_among_them": sum(t in flagged for t in texts),
                "labels_changed": sum(
                    (by_text[t]["office"], by_text[t]["function"].strip()) != _shown(shipped, t) for t in texts
                ),
                "before": score_rest(shipped, gold, corrected), "after": score_rest(retrained, gold, corrected),
                "retrain_seconds": round(seconds, 1),
            }
            runs.append(run)
            print(f"{strategy} seed {seed}: {json.dumps(run)}", file=sys.stderr, flush=True)
    return {"data": data.name, "rows": len(gold), "flagged_groups": len(groups), "budget": budget, "add_weight": weight, "runs": runs}


def _shown(model: Any, text: str) -> tuple[str | None, str | None]:
    p = model.predict([text])[0]
    return p.office, p.function


def markdown(result: dict[str, Any]) -> str:
    lines = [
        f"{result['data']}: {result['rows']} rows, {result['flagged_groups']} flagged texts; {result['budget']} corrections per run "
        f"at --add-weight {result.get('add_weight', 1.0):g}, scored on the rest of the file (rows not corrected)",
        "",
        "| strategy | seed | corrected (flagged / label changed) | office macro-F1 before -> after | function accuracy before -> after |",
        "|---|---|---|---|---|",
    ]
    for r in result["runs"]:
        b, a = r["before"], r["after"]
        lines.append(
            f"| {r['strategy']} | {'-' if r['seed'] is None else r['seed']} | {r['corrections']} ({r['flagged_among_them']} / {r['labels_changed']}) "
            f"| {b['office_macro_f1']:.3f} -> {a['office_macro_f1']:.3f} ({a['office_macro_f1'] - b['office_macro_f1']:+.3f}) "
            f"| {b['function_accuracy']:.3f} -> {a['function_accuracy']:.3f} ({a['function_accuracy'] - b['function_accuracy']:+.3f}) |"
        )
    for name in sorted({r["strategy"] for r in result["runs"]}):
        mine = [r for r in result["runs"] if r["strategy"] == name]
        d_office = sum(r["after"]["office_macro_f1"] - r["before"]["office_macro_f1"] for r in mine) / len(mine)
        d_fn = sum(r["after"]["function_accuracy"] - r["before"]["function_accuracy"] for r in mine) / len(mine)
        lines.append(f"| **{name}, mean gain** | {len(mine)} run(s) | | {d_office:+.3f} | {d_fn:+.3f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--budget", type=int, default=50)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--strategies", nargs="+", default=["uncertainty", "random", "random-flagged"])
    parser.add_argument("--add-weight", type=float, default=1.0, help="Weight of each correction (train --add-weight).")
    parser.add_argument("--json", type=Path, default=None, help="Also write the results here.")
    args = parser.parse_args()
    if not args.data.is_file():
        print(f"skipped: {args.data} is not here (it is measuring data kept outside the repository)", file=sys.stderr)
        return 0
    result = simulate(args.data, args.budget, args.seeds, args.strategies, args.add_weight)
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    sys.stdout.write(markdown(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
