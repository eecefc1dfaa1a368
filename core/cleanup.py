"""How `cleanup` goes through what it removes: parts, each a rule read and applied in batches.

Each part is a rule (a query for what matches it) read and applied in batches of BATCH rows
in primary-key order, so memory stays flat however much has piled up and no statement holds
more than a batch's locks. `--dry-run` reads the same batches and counts; a real run applies
the rule to each batch it reads. Each app offers the parts for its own rows (generation's and
billing's `cleanup.py`); the `cleanup` command runs them all.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from django.db.models import QuerySet

from core.skips import item_guard

BATCH = 1_000


@dataclass
class Source:
    """Rows matching a rule, what each stands for in the report, and how one batch goes."""

    rows: Callable[[], QuerySet]
    labels: Callable[[Any], list[str]]  # a row of the source's model
    remove: Callable[[list], None]
    key: str = "pk"


@dataclass
class Part:
    name: str
    description: str
    sources: list[Source] = field(default_factory=list, repr=False)
    count: int = 0


def _batches(source: Source) -> Iterator[list]:
    # Keyset by primary key: each batch starts after the last row of the one before, whether
    # or not that one was deleted, so a row that cannot go is never read twice.
    last = None
    while True:
        rows = source.rows().order_by(source.key)
        if last is not None:
            rows = rows.filter(**{f"{source.key}__gt": last})
        batch = list(rows[:BATCH])
        if not batch:
            return
        yield batch
        last = getattr(batch[-1], source.key)


def rows_part(name: str, description: str, rows: Callable[[], QuerySet], key: str, label=None, remove=None) -> Part:
    """A part of whole rows, deleted by `key` unless `remove` says otherwise."""

    def delete(batch: list) -> None:
        rows().filter(**{f"{key}__in": [getattr(row, key) for row in batch]}).delete()

    source = Source(
        lambda: rows().only(key), label or (lambda row: [str(getattr(row, key))]), remove or delete, key=key
    )
    return Part(name, description, [source])


def parts_run(
    parts: list[Callable[[], Part]], *, dry_run: bool, on_item: Callable[[str, str], None] | None = None
) -> list[Part]:
    """Apply every part batch by batch (or only count, with dry_run); `on_item(part, item)` is
    called for each item as its batch is read, so a listing never builds up in memory.

    One bad item stops nothing: a batch whose removal raises is removed again row by row, and a
    row that still raises is skipped (core/skips.py); a part that raises is skipped whole."""
    done = []
    for make in parts:
        part = Part(getattr(make, "__name__", "part").strip("_"), "")
        with item_guard(loop="cleanup", item=f"part {part.name}"):
            part = make()
            _part_run(part, dry_run=dry_run, on_item=on_item)
        done.append(part)
    return done


def _part_run(part: Part, *, dry_run: bool, on_item: Callable[[str, str], None] | None) -> None:
    for source in part.sources:
        for batch in _batches(source):
            for row in batch:
                for label in source.labels(row):
                    part.count += 1
                    if on_item is not None:
                        on_item(part.name, label)
            if dry_run:
                continue
            try:
                source.remove(batch)
            except Exception:
                for row in batch:
                    labels = source.labels(row)
                    with item_guard(
                        loop="cleanup", item=f"{part.name} {labels[0] if labels else getattr(row, source.key)}"
                    ):
                        source.remove([row])
