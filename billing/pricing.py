"""What things cost, in credits. Credits are whole numbers; there are no fractions of a credit.

What a job costs is the catalog's (`AIModel.credit_cost`, edited by staff), which `billing` does
not know: `generation` registers the catalog here when it starts, and every page reads prices
through it, so the prices pages show come from what jobs are charged (each offering at its
cheapest model's price).
"""

from __future__ import annotations

from collections.abc import Callable

SIGNUP_CREDITS = 3_000

_catalog: Callable[[], dict[str, int]] | None = None


def catalog_register(source: Callable[[], dict[str, int]]) -> None:
    """Set where job prices come from: a function returning {offering: credits}, e.g. {"image": 500}."""
    global _catalog
    _catalog = source


def credit_costs() -> dict[str, int]:
    """The price of each offering people can choose now (the cheapest model of it), in credits."""
    return _catalog() if _catalog is not None else {}


def low_balance() -> int:
    # Below this the billing page and the navigation suggest buying more: not enough for the
    # cheapest thing one can make. 0 (never low) when nothing is offered.
    return min(credit_costs().values(), default=0)
