"""At scale the admin lists, search and a person's pages read through an index, never the table.

Speed itself is shown by bench/scale.py, not timed here. These tests put enough rows in the
tables (with SQL, in a second) that PostgreSQL would pick a sequential scan if no index
served the query, and read the plan of the query the page really sent.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from accounts.tests.factories import UserFactory
from billing.backoffice import outstanding_credits
from billing.models import CreditAccount
from billing.services import credits_grant
from generation.models import Job, JobOutput
from generation.search import WINDOW
from generation.tests.factories import local_model

pytestmark = pytest.mark.django_db

ROWS = 30_000


def bulk_ledger(rows: int = ROWS, *, age: str = "0 s") -> CreditAccount:
    """One account with `rows` purchases, a consistent chain (balance_after is the running sum)."""
    user = UserFactory.create()
    credits_grant(user=user, amount=1, key="purchase:seed")
    account = CreditAccount.objects.get(user=user)
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO billing_ledgerentry (account_id, kind, amount, balance_after, idempotency_key, reference,
                                             actor_type, memo, created_at)
            SELECT %s, 'purchase', 1, n + 1, 'bulk:' || n, 'bulk:' || n, 'system', '',
                   now() - %s::interval - make_interval(secs => n)
            FROM generate_series(1, %s) AS n ORDER BY n
            """,
            [account.pk, age, rows],
        )
        cursor.execute("UPDATE billing_creditaccount SET balance = %s WHERE id = %s", [rows + 1, account.pk])
        cursor.execute("ANALYZE billing_ledgerentry")
    return account


def spread_ledger(*, accounts: int = 300, per_account: int = 100, age: str = "2 days") -> None:
    """Many people with a consistent history each, as on the real site."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH people AS (
                INSERT INTO accounts_user (password, is_superuser, email, name, is_staff, is_active, date_joined,
                                           notify_long_jobs)
                SELECT '', false, 'spread' || n || '@example.com', '', false, true, now(), false
                FROM generate_series(1, %(accounts)s) AS n RETURNING id
            )
            INSERT INTO billing_creditaccount (user_id, balance, created_at, updated_at)
            SELECT id, %(per)s, now() - %(age)s::interval, now() - %(age)s::interval FROM people
            """,
            {"accounts": accounts, "per": per_account, "age": age},
        )
        cursor.execute(
            """
            INSERT INTO billing_ledgerentry (account_id, kind, amount, balance_after, idempotency_key, reference,
                                             actor_type, memo, created_at)
            SELECT a.id, 'purchase', 1, n, 'spread:' || a.id || ':' || n, '', 'system', '',
                   now() - %(age)s::interval - make_interval(secs => %(per)s - n)
            FROM billing_creditaccount a JOIN accounts_user u ON u.id = a.user_id AND u.email LIKE 'spread%%'
            CROSS JOIN generate_series(1, %(per)s) AS n ORDER BY a.id, n
            """,
            {"per": per_account, "age": age},
        )
        cursor.execute("ANALYZE")


def bulk_jobs(user, rows: int = ROWS, *, age: str = "0 s", charged: bool = False, predictions: str = "p") -> None:
    """Succeeded jobs of one person, newest first by n; with `charged`, each with its charge.
    Their prediction ids are `predictions` + n: unique per job, so another person needs another prefix."""
    model = local_model()
    with connection.cursor() as cursor:
        cursor.execute(
            """
            INSERT INTO generation_job (id, user_id, model_id, kind, prompt, aspect_ratio, style, status, cost,
                                        provider, provider_ref, prediction_id, attempts, created_at, finished_at,
                                        metrics, error_message, provider_error)
            SELECT gen_random_uuid(), %s, %s, 'image', 'bulk ' || n, 'square', '', 'succeeded', 1, 'local', '',
                   %s || n, 1, now() - %s::interval - make_interval(secs => n),
                   now() - %s::interval - make_interval(secs => n), '{}', '', ''
            FROM generate_series(1, %s) AS n
            """,
            [user.pk, model.pk, predictions, age, age, rows],
        )
        if charged:
            credits_grant(user=user, amount=rows, key=f"purchase:bulk-{user.pk}")
            account = CreditAccount.objects.get(user=user)
            cursor.execute(
                """
                INSERT INTO billing_ledgerentry (account_id, kind, amount, balance_after, idempotency_key,
                                                 reference, actor_type, memo, created_at)
                SELECT %s, 'charge', -1, %s - row_number() OVER (ORDER BY created_at, id), 'charge:' || id,
                       'job:' || id, 'user', '', created_at
                FROM generation_job WHERE user_id = %s AND prompt LIKE 'bulk %%' ORDER BY created_at, id
                """,
                [account.pk, account.balance, user.pk],
            )
            cursor.execute("UPDATE billing_creditaccount SET balance = balance - %s WHERE id = %s", [rows, account.pk])
        cursor.execute("ANALYZE generation_job")
        cursor.execute("ANALYZE billing_ledgerentry")


def list_queries(client, url: str, table: str, **params) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url, params)
    assert response.status_code == 200
    return [q["sql"] for q in captured.captured_queries if f'FROM "{table}"' in q["sql"]]


def plan_of(sql: str) -> str:
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {sql}")
        return "\n".join(row[0] for row in cursor.fetchall())


def test_the_admin_ledger_list_reads_the_newest_entries_through_the_index_and_counts_nothing(staff_client):
    bulk_ledger()
    queries = list_queries(staff_client, reverse("admin:billing_ledgerentry_changelist"), "billing_ledgerentry")
    page = next(sql for sql in queries if "ORDER BY" in sql)
    assert "billing_entry_recent_idx" in plan_of(page)
    assert "Seq Scan on billing_ledgerentry" not in plan_of(page)
    # No COUNT(*) over the whole table: the list shows PostgreSQL's estimate instead.
    assert not [sql for sql in queries if "COUNT(" in sql.upper()]
    # ...and no date hierarchy's extra scan for the earliest and latest dates.
    assert not [sql for sql in queries if "MIN(" in sql.upper() or "MAX(" in sql.upper()]


def test_admin_ledger_search_is_exact_and_indexed(staff_client):
    account = bulk_ledger()
    url = reverse("admin:billing_ledgerentry_changelist")
    found = staff_client.get(url, {"q": "bulk:123"}).content.decode()
    assert "bulk:123<" in found and "bulk:1234<" not in found
    queries = list_queries(staff_client, url, "billing_ledgerentry", q="bulk:123")
    plan = plan_of(next(sql for sql in queries if "ORDER BY" in sql))
    assert "Seq Scan on billing_ledgerentry" not in plan and "Index" in plan
    by_email = staff_client.get(url, {"q": account.user.email.upper()}).content.decode()
    assert "bulk:77<" in by_email
    assert "bulk:" not in staff_client.get(url, {"q": "ulk:12"}).content.decode()  # no substring matches


def test_the_admin_jobs_list_and_its_search_use_indexes(staff_client, creator):
    bulk_jobs(creator)
    bulk_jobs(UserFactory(), predictions="o")  # not everything is the searched person's
    url = reverse("admin:generation_job_changelist")
    page = next(sql for sql in list_queries(staff_client, url, "generation_job") if "ORDER BY" in sql)
    assert "generation_job_recent_idx" in plan_of(page)
    job = Job.objects.filter(prediction_id="p42").get()
    for term in (str(job.id), "p42", creator.email.upper()):
        response = staff_client.get(url, {"q": term}).content.decode()
        assert reverse("admin:generation_job_change", args=[job.id]) in response
        queries = list_queries(staff_client, url, "generation_job", q=term)
        assert "Seq Scan on generation_job" not in plan_of(next(sql for sql in queries if "ORDER BY" in sql))
    assert "0 results" in staff_client.get(url, {"q": "bulk 42"}).content.decode()  # prompts are not searched


def test_the_users_list_links_to_jobs_instead_of_counting_them(staff_client, creator):
    bulk_jobs(creator, rows=50)
    queries = list_queries(staff_client, reverse("admin:accounts_user_changelist"), "accounts_user")
    assert not [sql for sql in queries if "generation_job" in sql]
    page = staff_client.get(reverse("admin:accounts_user_changelist")).content.decode()
    assert f"{reverse('admin:generation_job_changelist')}?user__id__exact={creator.pk}" in page


def test_a_heavy_users_gallery_pages_through_their_own_jobs_by_index(client, creator, monkeypatch):
    bulk_jobs(creator)
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO generation_joboutput (id, job_id, index, file, thumbnail, content_type, size, created_at) "
            "SELECT gen_random_uuid(), id, 0, 'outputs/x.png', '', 'image/png', 1, created_at FROM generation_job"
        )
        cursor.execute("ANALYZE generation_joboutput")
    other = UserFactory()
    bulk_jobs(other, predictions="o")  # half the site is someone else's: the planner must pick the person's index
    client.force_login(creator)
    queries = list_queries(client, reverse("gallery"), "generation_joboutput")
    (page,) = queries
    plan = plan_of(page)
    assert "generation_job_user_hist_idx" in plan and "Seq Scan" not in plan
    assert "COUNT(" not in page.upper()
    # Deep in the history, the "older" page starts at its cursor through the same index.
    older = re.search(r'href="\?before=([0-9a-f_]+)" rel="next"', client.get(reverse("gallery")).content.decode())
    deep = list_queries(client, reverse("gallery"), "generation_joboutput", before=older.group(1))
    assert "generation_job_user_hist_idx" in plan_of(deep[0]) and "Seq Scan" not in plan_of(deep[0])
    assert JobOutput.objects.count() == ROWS


def test_the_gallery_pages_older_and_newer_without_skipping_a_picture(client, creator, monkeypatch):
    monkeypatch.setattr("generation.views.GALLERY_PAGE_SIZE", 2)
    model = local_model()
    for n in range(5):
        job = Job.objects.create(
            user=creator, model=model, kind="image", prompt=f"picture {n}", aspect_ratio="square", cost=1,
            provider="local", status=Job.Status.SUCCEEDED,
        )  # fmt: skip
        JobOutput.objects.create(job=job, index=0, file=f"outputs/{uuid.uuid4().hex}.png", content_type="image/png",
                                 size=1)  # fmt: skip
    client.force_login(creator)
    seen, page = [], client.get(reverse("gallery")).content.decode()
    pages = [page]
    while match := re.search(r'href="\?before=([0-9a-f_]+)" rel="next"', page):
        page = client.get(reverse("gallery"), {"before": match.group(1)}).content.decode()
        pages.append(page)
    for page in pages:
        seen += re.findall(r'class="tile-caption">picture (\d)<', page)
    assert seen == ["4", "3", "2", "1", "0"]
    newer = re.search(r'href="\?after=([0-9a-f_]+)" rel="prev"', pages[-1]).group(1)
    back = client.get(reverse("gallery"), {"after": newer}).content.decode()
    assert re.findall(r'class="tile-caption">picture (\d)<', back) == ["2", "1"]


def test_an_incremental_reconcile_reads_big_tables_only_through_indexes(creator):
    from billing.reconcile.runner import reconcile_run
    from billing.services import credits_charge

    spread_ledger(accounts=3_000, per_account=10)  # enough people that a sequential scan costs more
    bulk_jobs(creator, age="2 days", charged=True)
    now = timezone.now()
    with time_machine.travel(now + timedelta(hours=1), tick=False):  # a nightly full run, after the build
        first, _, _ = reconcile_run(full=True)
    assert first.full and first.ok, list(first.findings.values("name", "examples"))
    with time_machine.travel(now + timedelta(hours=2), tick=False):
        # The hour's change: one new person with one charge.
        newcomer = UserFactory()
        credits_grant(user=newcomer, amount=10, key="purchase:newcomer")
        credits_charge(user=newcomer, amount=3, key="charge:newcomer")
        with CaptureQueriesContext(connection) as captured:
            run, _, _ = reconcile_run()
    assert not run.full and run.ok
    big = ("generation_job", "billing_ledgerentry")
    for query in captured.captured_queries:
        sql = query["sql"]
        if sql.startswith("SELECT") and any(f'"{table}"' in sql for table in big):
            plan = plan_of(sql)
            assert not [t for t in big if f"Seq Scan on {t}" in plan], f"{sql}\n{plan}"


def _outputs_for_every_job() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO generation_joboutput (id, job_id, index, file, thumbnail, content_type, size, created_at) "
            "SELECT gen_random_uuid(), id, 0, 'outputs/x.png', '', 'image/png', 1, created_at FROM generation_job"
        )
        cursor.execute("ANALYZE generation_joboutput")


def test_a_heavy_users_gallery_search_reads_only_their_matches_through_an_index(client, creator):
    bulk_jobs(creator)
    someone = UserFactory()
    bulk_jobs(someone, predictions="o")  # the other half of the site is someone else's...
    with connection.cursor() as cursor:
        # ...who writes "harbour" in every prompt, where this person wrote it once.
        cursor.execute("UPDATE generation_job SET prompt = prompt || ' harbour' WHERE user_id = %s", [someone.pk])
        cursor.execute("UPDATE generation_job SET prompt = 'a comet over the harbour' WHERE prediction_id = 'p4242'")
        cursor.execute("ANALYZE generation_job")
    _outputs_for_every_job()
    client.force_login(creator)

    def analyzed(term: str) -> tuple[list[str], int]:
        """The plans, as run, of the statements a search page sends, and the results it shows."""
        with CaptureQueriesContext(connection) as captured:
            page = client.get(reverse("gallery"), {"q": term}).content.decode()
        plans = []
        with connection.cursor() as cursor:
            for query in captured.captured_queries:
                if re.search(r'FROM "?generation_job"?\s', query["sql"]):
                    cursor.execute(f"EXPLAIN ANALYZE {query['sql']}")
                    plans.append("\n".join(row[0] for row in cursor.fetchall()))
        return plans, page.count('class="tile-caption">')

    def rows_read(plan: str) -> list[int]:
        return [
            int(n) for n in re.findall(r"Index Scan using generation_job_user_hist_idx .*actual .* rows=(\d+)", plan)
        ]

    # A word in all this person's prompts fills the page from their newest jobs.
    plans, found = analyzed("bulk")
    assert found == 24 and len(plans) == 1 and max(rows_read(plans[0])) <= WINDOW
    # A word they used once: the newest window, then their matches through the search index,
    # also for "harbour", which fills half the site; never their whole history of 30,000.
    for term in ("comet", "harbour"):
        plans, found = analyzed(term)
        assert found == 1, term
        assert all("Seq Scan" not in plan for plan in plans), plans
        assert all(max(rows_read(plan), default=0) <= WINDOW for plan in plans), plans
        assert "Bitmap Index Scan on generation_job_search_idx" in plans[-1], plans[-1]
        assert re.search(r"Bitmap Heap Scan on generation_job .*actual .* rows=1 ", plans[-1]), plans[-1]


def test_a_heavy_users_favourites_are_read_through_their_own_index(client, creator):
    bulk_jobs(creator)
    with connection.cursor() as cursor:
        cursor.execute("UPDATE generation_job SET favourite = true WHERE prediction_id IN ('p10', 'p20000')")
        cursor.execute("ANALYZE generation_job")
    _outputs_for_every_job()
    client.force_login(creator)
    (query,) = list_queries(client, reverse("gallery"), "generation_joboutput", fav="1")
    plan = plan_of(query)
    assert "generation_job_user_fav_idx" in plan and "Seq Scan" not in plan, plan
    assert client.get(reverse("gallery"), {"fav": "1"}).content.decode().count('class="tile-caption">') == 2


def test_a_metrics_scrape_reads_no_big_table_whole(client, creator, settings):
    # Once the tallies have caught up (the first scrapes after a deploy add the existing ledger up,
    # a million entries at a time), a scrape reads the jobs in flight, the last stretch of finished
    # jobs and new entries, and the few failing or indebted rows, each through an index.
    settings.METRICS_TOKEN, settings.METRICS_ALLOWED_NETWORKS = "a-monitoring-token-of-at-least-32-chars", []
    auth = {"HTTP_AUTHORIZATION": f"Bearer {settings.METRICS_TOKEN}"}
    bulk_jobs(creator, age="2 hours")
    spread_ledger(accounts=3_000, per_account=10)  # enough people that a sequential scan costs more
    assert client.get("/metrics", **auth).status_code == 200
    with time_machine.travel(timezone.now() + timedelta(minutes=2)):
        assert client.get("/metrics", **auth).status_code == 200  # the tallies move on
        with CaptureQueriesContext(connection) as captured:
            scraped = client.get("/metrics", **auth).content.decode()
    # ...and still adds up to what the admin home counts the slow way.
    outstanding = re.search(r"^dreampixel_credits_outstanding (\S+)$", scraped, re.MULTILINE)
    assert float(outstanding.group(1)) == outstanding_credits()["credits"]
    big = ("generation_job", "billing_ledgerentry", "billing_creditaccount")
    reads = [q["sql"] for q in captured.captured_queries if any(f'FROM "{table}"' in q["sql"] for table in big)]
    assert len(reads) == 5  # jobs in flight, the longest running, finished since, new entries, debts
    for sql in reads:
        plan = plan_of(sql)
        assert not any(f"Seq Scan on {table}" in plan for table in big), f"{sql}\n{plan}"
