"""What things cost, in credits. Credits are whole numbers; there are no fractions of a credit.

What a job costs is the catalog's (`AIModel.credit_cost`, edited by staff), which `billing` does
not know: `generation` registers its catalog in PRICE_LISTS when it starts, and every page reads
prices through `credit_costs`, so the prices pages show are what jobs are charged.
"""

from __future__ import annotations

from collections.abc import Callable

from core.registry import Registry

SIGNUP_CREDITS = 3_000

# Each returns {offering: credits} for what people can choose now, e.g. {"image": 500}.
PRICE_LISTS: Registry[Callable[[], dict[str, int]]] = Registry("price lists")


def credit_costs() -> dict[str, int]:
    """The price of each offering people can choose now, in credits."""
    costs: dict[str, int] = {}
    for price_list in PRICE_LISTS:
        costs |= price_list()
    return costs


def low_balance() -> int:
    # Below this the billing page and the navigation suggest buying more: not enough for the
    # cheapest thing one can make. 0 (never low) when nothing is offered.
    return min(credit_costs().values(), default=0)
