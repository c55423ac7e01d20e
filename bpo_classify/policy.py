"""The labelling policy as data: the two offices and the fifteen business functions.

Mirrors the table in the project's labelling guideline, so that no code path can
show an office and a function that contradict each other.

Example:
    >>> from bpo_classify.policy import office_of
    >>> office_of("payroll")
    'back-office'
"""

from __future__ import annotations

FRONT = "front-office"
BACK = "back-office"
OFFICES: tuple[str, ...] = (BACK, FRONT)

#: Every business function and the office it always belongs to.
FUNCTION_OFFICE: dict[str, str] = {
    "customer_service": FRONT,
    "sales": FRONT,
    "technical_support": FRONT,
    "marketing_outreach": FRONT,
    "reception": FRONT,
    "data_processing": BACK,
    "finance_accounting": BACK,
    "payroll": BACK,
    "human_resources": BACK,
    "it_operations": BACK,
    "legal_compliance": BACK,
    "analytics_reporting": BACK,
    "content": BACK,
    "supply_chain": BACK,
    "claims_processing": BACK,
}
FUNCTIONS: tuple[str, ...] = tuple(sorted(FUNCTION_OFFICE))


def office_of(function: str) -> str:
    """Return the office the policy assigns to ``function``.

    Raises ``KeyError`` for a name that is not one of the fifteen functions.
    """
    return FUNCTION_OFFICE[function]
