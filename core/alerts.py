"""What an alert for staff is. Each app checks its own conditions and returns these;
operations/alerts.py shows them on the admin home and emails staff about them."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Alert:
    key: str  # one email per key an hour
    message: str
