"""Money as people read it. Amounts are integer minor units (cents) with a currency."""

from __future__ import annotations

# Symbols for the currencies a pack is likely priced in; any other shows its ISO code.
_SYMBOLS = {"usd": "$", "eur": "€", "gbp": "£", "cad": "CA$", "aud": "A$"}
# Currencies whose minor unit is the unit itself (Stripe's "zero-decimal" currencies).
_ZERO_DECIMAL = {"jpy", "krw", "vnd", "clp", "pyg", "ugx", "xaf", "xof"}


def format_money(cents: int, currency: str) -> str:
    """Integer minor units and a currency, as people read them: 500, "usd" -> "$5.00"."""
    currency = (currency or "").lower()
    if currency in _ZERO_DECIMAL:
        amount = f"{cents:,}"
    else:
        whole, part = divmod(abs(cents), 100)
        amount = f"{'-' if cents < 0 else ''}{whole:,}.{part:02d}"
    symbol = _SYMBOLS.get(currency)
    return f"{symbol}{amount}" if symbol else f"{amount} {currency.upper()}"
