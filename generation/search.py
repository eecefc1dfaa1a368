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

Either step reads at most WINDOW rows or the person's matches of the words. The ORM says which of
the person's jobs a page may show (`_mine`) and runs step 1. Step 2 is written out around the
ORM's WHERE clause because the ORM cannot say MATERIALIZED, which keeps the planner off the
history index there. The development SQLite file has no full text: there each word is a
substring of the prompt, through the ORM.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from django.contrib.postgres.search import SearchQuery, SearchVector
from django.db import connection, migrations
from django.db.models import QuerySet

from core.keyset import Key, KeysetPage, keyset_older
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


def _mine(*, user_id: int, kind: str | None, favourites: bool, before: str | None) -> QuerySet[Job]:
    """The person's finished jobs older than the page's cursor, newest first: every statement
    below reads these, the two written out ones through the WHERE clause the ORM makes of it."""
    jobs = Job.objects.filter(user_id=user_id, deleted_at__isnull=True, status=Job.Status.SUCCEEDED)
    if kind:
        jobs = jobs.filter(kind=kind)
    if favourites:
        jobs = jobs.filter(favourite=True)
    return keyset_older(jobs, keys=CURSOR_KEYS, before=before).order_by("-created_at", "-id")


def _where(jobs: QuerySet[Job]) -> tuple[str, tuple]:
    """The ORM's WHERE clause of `jobs`, its columns named by the table ("generation_job"."kind")."""
    sql, params = jobs.query.get_compiler(connection=connection).compile(jobs.query.where)
    return sql, tuple(params)


def _rows(sql: str, params: tuple) -> list[tuple[uuid.UUID, datetime]]:
    # PostgreSQL only (the SQLite file never gets here): psycopg reads a uuid column as uuid.UUID.
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [(job_id, created_at) for job_id, created_at in cursor]


def _matching_jobs(
    *, user_id: int, search: str, kind: str | None, favourites: bool, before: str | None, size: int
) -> list[tuple[uuid.UUID, datetime]]:
    """Up to `size` of the person's finished jobs whose prompt has the words, newest first."""
    mine = _mine(user_id=user_id, kind=kind, favourites=favourites, before=before)
    if connection.vendor != "postgresql":  # the development SQLite file: each word a substring
        for word in search.split():
            mine = mine.filter(prompt__icontains=word)
        return list(mine.values_list("id", "created_at")[:size])
    table = connection.ops.quote_name(Job._meta.db_table)
    # Step 1: the newest WINDOW of the person's jobs, their prompts tested. PostgreSQL never
    # merges a subquery with a LIMIT into the query around it, so it reads the window first.
    recent = list(
        Job.objects.filter(id__in=mine.values("id")[:WINDOW])
        .annotate(words=SearchVector("prompt", config=CONFIG))
        .filter(words=SearchQuery(search, config=CONFIG, search_type="websearch"))
        .order_by("-created_at", "-id")
        .values_list("id", "created_at")[:size]
    )
    if len(recent) >= size:
        return recent
    # The window's last job, if the window was full: older jobs remain to be searched.
    edge = mine.values_list("created_at", "id")[WINDOW - 1 : WINDOW].first()
    if edge is None:
        return recent  # the rest of the history was all in the window
    # Step 2: older matches, through the index alone. Written out for MATERIALIZED as well: the
    # matches are read by the index's expression only, then the person's filter and the window's
    # edge apply to them (the CTE takes the table's name, so the ORM's WHERE reads its columns).
    older_than_edge = keyset_older(mine, keys=CURSOR_KEYS, before="_".join(
        key.encode(value) for key, value in zip(CURSOR_KEYS, edge, strict=True)
    ))  # fmt: skip
    where, where_params = _where(older_than_edge)
    older = _rows(
        f"""
        WITH matches AS MATERIALIZED (
            SELECT id, created_at, user_id, deleted_at, status, kind, favourite FROM {table}
            WHERE {DOCUMENT} @@ (websearch_to_tsquery('{CONFIG}'::regconfig, %s) && %s::tsquery)
        )
        SELECT id, created_at FROM matches AS {table} WHERE {where}
        ORDER BY created_at DESC, id DESC LIMIT %s
        """,  # noqa: S608 (SQL from the ORM and constants)
        (search, f"'U{user_id}'", *where_params, size - len(recent)),
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
