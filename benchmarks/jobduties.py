"""Generated job-duty exports for the labelling benchmark: realistic, seeded, reproducible.

Each row looks like a line of a job-postings export (posting, role, department,
location, duty). The duty is a task description from the project's corpus
(``datasets/bpo_tasks.csv``) or demo sheet, as written there or the way postings vary
it: with or without a final full stop, a bullet, a lower-case start, and up to four
qualifiers (system, region, frequency, client account) appended. Two kinds of file:

* ``repeated``: rows drawn from a pool of distinct duties with a Zipf-like skew, as in
  real exports where the same posting template is published many times;
* ``distinct``: every row's duty text is different (the worst case for any caching);
* ``real``: duty statements of realistic length that nobody here wrote, each row distinct:
  the O*NET task statements of ``../shared/external/onet_pool.tsv`` (mean 99 characters)
  when that file is present, each with a site number appended ("... (site 17)"), in a
  seeded random order; without it, the corpus duties rewritten as above (qualifiers
  appended, so longer than the corpus lines) with the same site numbers. The text is
  read at run time and written only into the generated file (``benchmarks/out/``,
  git-ignored), never into the repository.

Run ``python benchmarks/jobduties.py export.csv --rows 1000000`` to write one.

Example:
    >>> pool = duty_pool(5, seed=1)
    >>> len(pool), len(set(pool))
    (5, 5)
"""

from __future__ import annotations

import bisect
import csv
import gzip
import itertools
import os
import random
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
HEADER = ["posting_id", "role", "department", "location", "duty"]

REGIONS = ["for EMEA accounts", "for APAC clients", "for the North America region", "across LATAM sites",
           "for UK and Ireland customers", "for the DACH market", "for ANZ accounts", "for the Nordics",
           "for US healthcare clients", "for the India delivery centre", "for Canadian accounts",
           "for the Middle East region", "for Southeast Asia", "for the Benelux portfolio", "for French-speaking markets"]
SYSTEMS = ["in SAP", "in Oracle EBS", "using Salesforce", "in ServiceNow", "in Workday", "in Zendesk",
           "using Microsoft Dynamics", "in NetSuite", "using Excel trackers", "in Genesys Cloud", "in Coupa",
           "in the client's ticketing tool", "using Freshdesk", "in Guidewire", "in ADP"]
FREQUENCIES = ["daily", "on a weekly basis", "every month-end", "within agreed SLAs", "during peak season",
               "as per the client SOP", "within 24 hours", "on rotating shifts", "in line with KPIs"]
ACCOUNTS = ["(Account: Telco)", "(Account: Retail)", "(Account: Banking)", "(Account: Insurance)",
            "(Account: Utilities)", "(Account: Airline)", "(Account: Healthcare)", "(Account: E-commerce)",
            "(Account: Logistics)", "(Account: Public Sector)", "(Account: Hospitality)", "(Account: Media)"]
LOCATIONS = ["Manila, PH", "Cebu, PH", "Pune, IN", "Bengaluru, IN", "Kraków, PL", "Bogotá, CO", "Monterrey, MX",
             "Nairobi, KE", "Dublin, IE", "Lisbon, PT", "Cairo, EG", "Austin, US", "Johannesburg, ZA", "Sofia, BG"]
ROLES = {
    "customer_service": ("Customer Care Associate", "Contact Centre"),
    "sales": ("Inside Sales Representative", "Sales"),
    "technical_support": ("Service Desk Analyst (L1)", "Technical Support"),
    "marketing_outreach": ("Social Media Specialist", "Marketing"),
    "reception": ("Front Desk Agent", "Hospitality"),
    "data_processing": ("Data Entry Operator", "Operations"),
    "finance_accounting": ("Accounts Payable Specialist", "Finance"),
    "payroll": ("Payroll Administrator", "HR Shared Services"),
    "human_resources": ("HR Coordinator", "HR Shared Services"),
    "it_operations": ("Systems Administrator", "IT Infrastructure"),
    "legal_compliance": ("KYC Analyst", "Compliance"),
    "analytics_reporting": ("Reporting Analyst", "Workforce Management"),
    "content": ("Content Moderator", "Trust & Safety"),
    "supply_chain": ("Procurement Coordinator", "Supply Chain"),
    "claims_processing": ("Claims Processor", "Insurance Operations"),
}


def base_duties() -> list[tuple[str, str]]:
    """``(duty, function)`` pairs: the corpus rows and the demo sheet's duties."""
    out: list[tuple[str, str]] = []
    with open(ROOT / "datasets" / "bpo_tasks.csv", encoding="utf-8", newline="") as f:
        for row in csv.DictReader(f):
            out.append((row["text"], row["function"]))
    with open(ROOT / "datasets" / "sample_job_duties.csv", encoding="utf-8", newline="") as f:
        roles = {role: fn for fn, (role, _) in ROLES.items()}
        for row in csv.DictReader(f):
            out.append((row["duty"], roles.get(row["role"], "customer_service")))
    return out


def _variant(text: str, rng: random.Random) -> str:
    """The duty as one posting might write it: punctuation, bullet, and a few qualifiers."""
    line = text.rstrip().rstrip(".")
    for options, chance in ((SYSTEMS, 0.3), (REGIONS, 0.3), (FREQUENCIES, 0.25)):
        if rng.random() < chance:
            line += " " + rng.choice(options)
    style = rng.randrange(4)
    if style == 1:
        line += "."
    elif style == 2:
        line = "• " + line
    elif style == 3:
        line = "- " + line[:1].lower() + line[1:]
    if rng.random() < 0.2:
        line += " " + rng.choice(ACCOUNTS)
    return line


def duty_pool(size: int, seed: int = 0) -> list[tuple[str, str]]:
    """``size`` distinct ``(duty, function)`` pairs, spread over every corpus duty."""
    rng = random.Random(seed)
    bases = base_duties()
    seen: set[str] = set()
    pool: list[tuple[str, str]] = []
    for i in itertools.count():
        if len(pool) >= size:
            break
        text, function = bases[i % len(bases)]
        # The plain duty first, then random rewrites of it.
        line = text if i < len(bases) else _variant(text, rng)
        if line not in seen:
            seen.add(line)
            pool.append((line, function))
    rng.shuffle(pool)
    return pool


#: Task statements written by others (measuring only; see its README): the ``real`` kind's text when present.
#: ``BPO_SHARED`` names the shared folder when it is not beside the repository (a git worktree elsewhere).
ONET_POOL = Path(os.environ.get("BPO_SHARED", ROOT.parent / "shared")) / "external" / "onet_pool.tsv"


def real_statements(seed: int = 0) -> tuple[list[str], str]:
    """Long duty statements for the ``real`` kind, and where they come from (``onet_pool`` or ``corpus``)."""
    if ONET_POOL.exists():
        with open(ONET_POOL, encoding="utf-8", newline="") as f:
            reader = csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
            return [r["text"] for r in reader if r["kind"] == "task_statement" and r["text"].strip()], "onet_pool"
    rng = random.Random(seed)
    # Our own long statements: each corpus duty with two or three qualifiers, as postings write them.
    out = []
    for text, _ in base_duties():
        line = text.rstrip().rstrip(".")
        for options in rng.sample([SYSTEMS, REGIONS, FREQUENCIES], rng.choice((2, 3))):
            line += " " + rng.choice(options)
        out.append(line + ".")
    return out, "corpus"


def real_rows(n: int, seed: int = 0) -> Iterator[list[str]]:
    """``n`` rows of the ``real`` kind: statement ``k % m`` at site ``k // m + 1`` for distinct random ``k``."""
    statements, _ = real_statements(seed)
    m = len(statements)
    sites = -(-n // m)
    rng = random.Random(seed + 2)
    for i, k in enumerate(rng.sample(range(m * sites), n)):
        site, s = divmod(k, m)
        duty = statements[s].rstrip()
        yield [f"JP-{100000 + i // 8}", "", "", LOCATIONS[(i // 8) % len(LOCATIONS)], f"{duty} (site {site + 1})"]


def rows(n: int, kind: str = "repeated", seed: int = 0, pool_size: int = 60_000) -> Iterator[list[str]]:
    """``n`` export rows; ``kind`` is ``repeated`` (drawn from ``pool_size`` duties), ``distinct`` or ``real``."""
    if kind == "real":
        yield from real_rows(n, seed)
        return
    rng = random.Random(seed + 1)
    if kind == "distinct":
        pool = duty_pool(n, seed)
        picks: Iterator[int] = iter(range(n))
    else:
        pool = duty_pool(pool_size, seed)
        # Zipf-like weights: a few templates are posted very often, most rarely.
        cum = list(itertools.accumulate(1.0 / (k + 1) ** 0.9 for k in range(len(pool))))
        picks = (bisect.bisect(cum, rng.random() * cum[-1]) for _ in range(n))
    for i, k in enumerate(picks):
        duty, function = pool[k]
        role, department = ROLES[function]
        yield [f"JP-{100000 + i // 8}", role, department, LOCATIONS[(i // 8) % len(LOCATIONS)], duty]


def write(path: Path, n: int, kind: str = "repeated", seed: int = 0) -> Path:
    """Write ``n`` rows to ``path`` (gzip when it ends in ``.gz``; tab-separated for ``.tsv``)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if path.name.endswith(".gz") else open
    delimiter = "\t" if ".tsv" in path.name else ","
    with opener(path, "wt", encoding="utf-8", newline="") as f:  # type: ignore[operator]
        w = csv.writer(f, delimiter=delimiter, lineterminator="\n")
        w.writerow(HEADER)
        w.writerows(rows(n, kind, seed))
    return path


def main() -> None:
    import argparse

    parser = argparse.ArgumentParser(description="Write a generated job-duty export (see the module docstring).")
    parser.add_argument("path", type=Path, help="output file (.csv, .tsv, or either with .gz)")
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--distinct", action="store_true", help="every duty text different")
    parser.add_argument("--real", action="store_true", help="every duty text different and of realistic length (see above)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    write(args.path, args.rows, "real" if args.real else "distinct" if args.distinct else "repeated", args.seed)


if __name__ == "__main__":
    main()
