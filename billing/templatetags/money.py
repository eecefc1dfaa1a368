from __future__ import annotations

from django import template

from billing.money import format_money

register = template.Library()


@register.filter
def money(cents: int | None, currency: str) -> str:
    return "" if cents is None else format_money(int(cents), currency)
