"""The gallery's search by prompt: PostgreSQL full text, at a cost that does not grow with the
size of a person's history.

One index serves it: GIN over each job's prompt as English words (any form of a word) plus one
word naming its owner, `U<user id>` (upper case, which no prompt's words can be: to_tsvector
lowers them all). A search asks for the person's words together with their owner word, so the
index hands back only that person's matches, however common the words are elsewhere.

PostgreSQL alone plans this badly for a heavy person: for a word it thinks common it walks the
person's history newest first and tests every prompt, which reads all 50,000 jobs of someone
whose prompts have that word once (a tenth of a second and growing). So a page is found in two
bounded steps:

1. the person's newest WINDOW jobs (from the page's cursor on, by the history index), their
   prompts tested: a word in one of their prompts in twenty or more fills the page here;
2. only if it did not, the matches older than that window, read through the index alone: a
   MATERIALIZED CTE that filters by nothing but the index's expression, so the planner has no
   history index to walk; its rows are then the person's matches (the user id is checked again).
   A word rarer than that in their newest jobs is usually rare in the rest: few rows to sort.

Either step reads at most WINDOW rows or the person's matches of the words. The statements are
written out because the ORM cannot say MATERIALIZED, nor keep the planner off the history index.
The development SQLite file has no full text: there each word is a substring of the prompt.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.db import connection, migrations

from core.keyset import Key, KeysetPage
from generation.models import Job, JobOutput
from generation.selectors import GALLERY_TILE_FIELDS

WINDOW = 500
CONFIG = "english"
INDEX = "generation_job_search_idx"
# The same expression in the index and in the query, or PostgreSQL does not use the index.
DOCUMENT = (
    f"(to_tsvector('{CONFIG}'::regconfig, COALESCE(prompt, '')) || array_to_tsvector(ARRAY['U' || user_id::text]))"
)
CURSOR_KEYS = (Key("created_at", datetime), Key("id", uuid.UUID))


def search_index_create(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(
            f"CREATE INDEX CONCURRENTLY IF NOT EXISTS {INDEX} ON {Job._meta.db_table} USING gin ({DOCUMENT})"
        )


def search_index_drop(apps, schema_editor) -> None:
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {INDEX}")


def search_index_operation() -> migrations.RunPython:
    return migrations.RunPython(search_index_create, search_index_drop)


def _filters(*, kind: str | None, favourites: bool) -> tuple[str, dict]:
    sql, params = "", {}
    if kind:
        sql += " AND kind = %(kind)s"
        params["kind"] = kind
    if favourites:
        sql += " AND favourite"
    return sql, params


def _cursor(before: str | None) -> tuple[str, dict]:
    # "Older than the cursor", spelled as core.keyset does: `created_at <=` on its own starts
    # the index range at the cursor.
    if not before:
        return "", {}
    parts = before.split("_")
    try:
        at, job_id = (key.decode(part) for key, part in zip(CURSOR_KEYS, parts, strict=True))
    except ValueError:
        return "", {}
    sql = " AND created_at <= %(at)s AND (created_at < %(at)s OR (created_at = %(at)s AND id < %(id)s))"
    return sql, {"at": at, "id": job_id}


def _rows(sql: str, params: dict) -> list[tuple[uuid.UUID, datetime]]:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(row[0] if isinstance(row[0], uuid.UUID) else uuid.UUID(str(row[0])), row[1]) for row in cursor]


def _matching_jobs(
    *, user_id: int, search: str, kind: str | None, favourites: bool, before: str | None, size: int
) -> list[tuple[uuid.UUID, datetime]]:
    """Up to `size` of the person's finished jobs whose prompt has the words, newest first."""
    table = Job._meta.db_table
    filters, params = _filters(kind=kind, favourites=favourites)
    after_cursor, cursor_params = _cursor(before)
    params |= cursor_params | {"user": user_id, "q": search, "size": size, "window": WINDOW}
    mine = f"user_id = %(user)s AND deleted_at IS NULL AND status = 'succeeded'{filters}"
    if connection.vendor != "postgresql":
        words = "".join(f" AND prompt LIKE %(w{n})s" for n in range(len(search.split())))
        params |= {f"w{n}": f"%{word}%" for n, word in enumerate(search.split())}
        return _rows(
            f"SELECT id, created_at FROM {table} WHERE {mine}{after_cursor}{words} "  # noqa: S608 (names from the model)
            "ORDER BY created_at DESC, id DESC LIMIT %(size)s",
            params,
        )
    # Step 1: the newest WINDOW of the person's jobs, their prompts tested.
    recent = _rows(
        f"""
        WITH recent AS MATERIALIZED (
            SELECT id, created_at, prompt FROM {table} WHERE {mine}{after_cursor}
            ORDER BY created_at DESC, id DESC LIMIT %(window)s
        )
        SELECT id, created_at FROM recent
        WHERE to_tsvector('{CONFIG}'::regconfig, COALESCE(prompt, '')) @@ websearch_to_tsquery('{CONFIG}'::regconfig, %(q)s)
        ORDER BY created_at DESC, id DESC LIMIT %(size)s
        """,  # noqa: S608 (names from the model and constants)
        params,
    )
    if len(recent) >= size:
        return recent
    # The window's last job, if the window was full: older jobs remain to be searched.
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT created_at, id FROM {table} WHERE {mine}{after_cursor} "  # noqa: S608 (names from the model)
            "ORDER BY created_at DESC, id DESC OFFSET %(edge)s LIMIT 1",
            params | {"edge": WINDOW - 1},
        )
        edge = cursor.fetchone()
    if edge is None:
        return recent  # the rest of the history was all in the window
    # Step 2: older matches, through the index alone.
    older_than_edge, edge_params = _cursor(f"{CURSOR_KEYS[0].encode(edge[0])}_{CURSOR_KEYS[1].encode(edge[1])}")
    params |= edge_params | {"owner": f"'U{user_id}'", "need": size - len(recent)}
    older = _rows(
        f"""
        WITH matches AS MATERIALIZED (
            SELECT id, created_at, user_id, deleted_at, status, kind, favourite FROM {table}
            WHERE {DOCUMENT} @@ (websearch_to_tsquery('{CONFIG}'::regconfig, %(q)s) && %(owner)s::tsquery)
        )
        SELECT id, created_at FROM matches WHERE {mine}{older_than_edge}
        ORDER BY created_at DESC, id DESC LIMIT %(need)s
        """,  # noqa: S608 (names from the model and constants)
        params,
    )
    return recent + older


def gallery_search_page(
    *, user_id: int, search: str, kind: str | None, favourites: bool, before: str | None, size: int
) -> KeysetPage:
    """One page of search results, newest first, with the cursor of the next older page. A search
    pages one way (older); "Newest" starts it again."""
    jobs = _matching_jobs(
        user_id=user_id, search=search, kind=kind, favourites=favourites, before=before, size=size + 1
    )
    more = len(jobs) > size
    jobs = jobs[:size]
    order = {job_id: position for position, (job_id, _) in enumerate(jobs)}
    outputs = sorted(
        JobOutput.objects.filter(job_id__in=order).select_related("job").only(*GALLERY_TILE_FIELDS),
        key=lambda output: (order[output.job_id], -output.index),
    )
    last = jobs[-1] if jobs else None
    older = (
        "_".join(key.encode(value) for key, value in zip(CURSOR_KEYS, (last[1], last[0]), strict=True))
        if last and more
        else None
    )
    return KeysetPage(object_list=outputs, older=older, newer="" if not before else None)
