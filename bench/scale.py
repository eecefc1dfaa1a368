"""Scale: the same pages, admin lists, scheduled commands and /metrics scrape at two data volumes,
and the ratios.

    .venv/bin/python bench/scale.py [--scale 0.1] [--base 0.001] [--repeat 3] [--prefix bench_scale] [--keep]
                                    [--reuse] [--name scale]

The full volume: 100k users, 4.9M ledger entries, 2M jobs, 1.8M outputs, 1M
Stripe events and 1M provider webhooks, with one heavy person holding 50k jobs and 100k ledger
entries. `--scale` and `--base` are fractions of it (1.0 and 0.01 are the targets' own run; the
defaults, 10 % against 0.1 %, keep its ratio of 100 and build in a few minutes on two cores;
the full volume builds in about 7 minutes).

Both databases are built with SQL (`generate_series`), each table in time order as the services
write it, the ledger through plain INSERTs so its append-only trigger stays on, with balances
and balance-after chains that `reconcile --full` accepts. Each volume is served by its own
worker process (Django's test client, DEBUG off, as in production); every operation runs once
untimed (warm-up, query count), then `--repeat` times alternating between the volumes, and the
median counts. The table gives both medians, their ratio and the queries per request; the
target is at most 2 times for a person's page and for a /metrics scrape, 3 times for the admin.
Before timing, each worker scrapes until /metrics has added up the existing ledger (a million
entries a scrape: what a deploy's first scrapes do), reported apart, and checks its outstanding
credits against the admin home's; "counted whole" is the baseline of what the scrape's job and
money figures would cost without its running tallies. The load average before
and after is recorded; a run on a busy machine is marked. Everything goes to
bench/results/<name>.json (scale.json unless `--name` says otherwise).
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import statistics
import subprocess
import sys
import time
from pathlib import Path

import psycopg

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import common

FULL = {
    "users": 100_000,
    "entries": 4_900_000,
    "jobs": 2_000_000,
    "heavy_jobs": 50_000,
    "heavy_entries": 100_000,
    "events": 1_000_000,
    "webhooks": 1_000_000,
}
HEAVY_EMAIL = "heavy@scale.example"
STAFF_EMAIL = "staff@scale.example"
# The synthetic history ends this long ago, so that what an incremental `reconcile` sees is the
# change each run makes (the same at both volumes), not the tail of the built data.
QUIET = "2 hours"

PERSON, ADMIN, COMMAND, SCRAPE = "person", "admin", "command", "scrape"
OPERATIONS = [
    ("gallery page 1, the heavy person", PERSON),
    ("gallery, an older page", PERSON),
    ("gallery search, a word in a quarter of theirs", PERSON),
    ("gallery search, a word in one of 1,000 jobs", PERSON),
    ("gallery search, a word all over the site, rare in theirs", PERSON),
    ("gallery, favourites", PERSON),
    ("/billing/ page 1, the heavy person", PERSON),
    ("/billing/ oldest page", PERSON),
    ("job page", PERSON),
    ("job status fragment", PERSON),
    ("admin home", ADMIN),
    ("admin jobs list", ADMIN),
    ("admin jobs search by email", ADMIN),
    ("admin jobs search by job id", ADMIN),
    ("admin users list", ADMIN),
    ("admin ledger list", ADMIN),
    ("admin ledger search by key", ADMIN),
    ("admin ledger filter: refunds", ADMIN),
    ("admin Stripe events list", ADMIN),
    ("alerts", COMMAND),
    ("generation_stats 24 h", COMMAND),
    ("generation_stats 720 h", COMMAND),
    ("reconcile (incremental, 20 new charges)", COMMAND),
    ("reconcile --full", COMMAND),
    ("cleanup --dry-run", COMMAND),
    ("/metrics scrape", SCRAPE),
    ("the scrape's figures counted whole (baseline)", COMMAND),
]
# A scrape must stay flat with the data: the bar of a person's page.
TARGETS = {PERSON: 2.0, ADMIN: 3.0, SCRAPE: 2.0}


# --- Building a volume with SQL ----------------------------------------------------------


def sizes(fraction: float) -> dict[str, int]:
    return {name: max(int(count * fraction), 10) for name, count in FULL.items()}


BUILD = [
    (
        "users and accounts",
        """
        INSERT INTO accounts_user (password, is_superuser, email, name, is_staff, is_active, date_joined,
                                   notify_long_jobs)
        SELECT '', false, CASE WHEN n = 1 THEN %(heavy_email)s ELSE 'person' || n || '@scale.example' END,
               'Person ' || n, false, true, %(end)s - interval '200 days' + random() * interval '20 days', false
        FROM generate_series(1, %(users)s) AS n;
        INSERT INTO billing_creditaccount (user_id, balance, created_at, updated_at)
        SELECT id, 0, date_joined, date_joined FROM accounts_user WHERE email LIKE '%%@scale.example';
        """,
    ),
    (
        "jobs",
        """
        CREATE TEMP TABLE people AS
            SELECT row_number() OVER (ORDER BY id) AS n, id FROM accounts_user WHERE email LIKE '%%@scale.example';
        CREATE UNIQUE INDEX ON people (n);
        -- Every table in time order, as the services write it: the rows of a recent range (the
        -- admin home's day, the alerts' hour) sit in a few pages, not each in a page of its own.
        INSERT INTO generation_job (id, user_id, model_id, kind, prompt, aspect_ratio, style, status, cost, provider,
                                    provider_ref, prediction_id, attempts, created_at, started_at, finished_at,
                                    metrics, error_message, provider_error, deleted_at, seed_chosen, provider_token,
                                    favourite)
        -- Prompts for the gallery's search: "comet" in one job in a thousand, "harbour" in every
        -- other person's prompts but one in a thousand of the heavy person's, "fox" in a
        -- quarter of theirs; one job in fifty a favourite.
        SELECT gen_random_uuid(), p.id, %(model)s, 'image',
               'a scale prompt number ' || j.n || CASE
                   WHEN j.n %% 1000 = 7 THEN ' with a comet'
                   WHEN j.person <> 1 OR j.n %% 1000 = 3 THEN ' by the harbour'
                   ELSE ' of a ' || (ARRAY['lighthouse', 'fox', 'kite', 'forest'])[1 + j.n %% 4] END,
               'square', '',
               j.status, 500, 'local', '', 'p' || j.n, 1, j.created_at, j.created_at,
               j.created_at + make_interval(secs => 5 + (j.n %% 55)), '{"predict_time": 4.2}', '', '',
               CASE WHEN j.n %% 33 = 0 THEN j.created_at + interval '1 day' END, false, '', j.n %% 50 = 0
        FROM (
            SELECT n,
                   CASE WHEN n <= %(heavy_jobs)s THEN 1 ELSE 2 + (abs(hashint8(n)::bigint) %% (%(users)s - 1)) END AS person,
                   CASE WHEN n %% 50 < 45 THEN 'succeeded' WHEN n %% 50 < 49 THEN 'failed' ELSE 'canceled' END
                       AS status,
                   %(end)s - random() * interval '180 days' AS created_at
            FROM generate_series(1, %(jobs)s) AS n
        ) j JOIN people p ON p.n = j.person
        ORDER BY j.created_at;
        INSERT INTO generation_joboutput (id, job_id, index, file, thumbnail, content_type, size, width, height,
                                          created_at)
        SELECT gen_random_uuid(), id, 0, 'outputs/scale/' || id || '.webp', 'thumbnails/scale/' || id || '.webp',
               'image/webp', 120000, 1024, 1024, finished_at
        FROM generation_job WHERE status = 'succeeded' ORDER BY finished_at;
        """,
    ),
    (
        "ledger (signup, charges, refunds, purchases) with running balances",
        """
        CREATE TEMP TABLE stage (seq bigserial, account_id bigint, kind text, amount bigint, key text,
                                 reference text, actor text, created_at timestamptz, refund_of_key text);
        INSERT INTO stage (account_id, kind, amount, key, reference, actor, created_at)
            SELECT a.id, 'signup_bonus', 100000000, 'signup:' || u.id, '', 'system', u.date_joined
            FROM billing_creditaccount a JOIN accounts_user u ON u.id = a.user_id
            WHERE u.email LIKE '%%@scale.example';
        INSERT INTO stage (account_id, kind, amount, key, reference, actor, created_at)
            SELECT a.id, 'charge', -j.cost, 'charge:' || j.id, 'job:' || j.id, 'user', j.created_at
            FROM generation_job j JOIN billing_creditaccount a ON a.user_id = j.user_id;
        INSERT INTO stage (account_id, kind, amount, key, reference, actor, created_at, refund_of_key)
            SELECT a.id, 'refund', j.cost, 'refund:' || j.id, 'job:' || j.id, 'system', j.finished_at,
                   'charge:' || j.id
            FROM generation_job j JOIN billing_creditaccount a ON a.user_id = j.user_id
            WHERE j.status IN ('failed', 'canceled');
        -- Purchases fill each side up to its size: the heavy person's first, then everyone's.
        INSERT INTO stage (account_id, kind, amount, key, reference, actor, created_at)
            SELECT a.id, 'purchase', 1000, 'purchase:cs_heavy_' || n, 'checkout:cs_heavy_' || n, 'system',
                   %(end)s - random() * interval '180 days'
            FROM generate_series(1, greatest(%(heavy_entries)s - (SELECT count(*) FROM stage s
                 JOIN billing_creditaccount h ON h.id = s.account_id JOIN accounts_user u ON u.id = h.user_id
                 WHERE u.email = %(heavy_email)s), 0)) AS n,
                 billing_creditaccount a JOIN accounts_user u ON u.id = a.user_id WHERE u.email = %(heavy_email)s;
        INSERT INTO stage (account_id, kind, amount, key, reference, actor, created_at)
            SELECT a.id, 'purchase', 1000, 'purchase:cs_' || x.n, 'checkout:cs_' || x.n, 'system', x.created_at
            FROM (SELECT n, 2 + (abs(hashint8(n + 7)::bigint) %% (%(users)s - 1)) AS person,
                         %(end)s - random() * interval '180 days' AS created_at
                  FROM generate_series(1, greatest(%(entries)s - (SELECT count(*) FROM stage), 0)) AS n) x
            JOIN people p ON p.n = x.person JOIN billing_creditaccount a ON a.user_id = p.id;
        -- Ids in time order, each refund pointing at its charge's id; balance_after is the
        -- running sum in id order, as the services write it.
        CREATE TEMP TABLE ordered AS
            SELECT s.*, row_number() OVER (ORDER BY created_at, seq) AS eid FROM stage s;
        CREATE UNIQUE INDEX ON ordered (key);
        INSERT INTO billing_ledgerentry (id, account_id, kind, amount, balance_after, idempotency_key, reference,
                                         refund_of_id, actor_type, actor_id, memo, created_at)
        SELECT o.eid, o.account_id, o.kind, o.amount,
               sum(o.amount) OVER (PARTITION BY o.account_id ORDER BY o.eid), o.key, o.reference, c.eid, o.actor,
               NULL, '', o.created_at
        FROM ordered o LEFT JOIN ordered c ON c.key = o.refund_of_key ORDER BY o.eid;
        SELECT setval(pg_get_serial_sequence('billing_ledgerentry', 'id'), (SELECT max(id) FROM billing_ledgerentry));
        UPDATE billing_creditaccount a SET balance = t.total, updated_at = t.last
        FROM (SELECT account_id, sum(amount) AS total, max(created_at) AS last FROM billing_ledgerentry
              GROUP BY account_id) t
        WHERE a.id = t.account_id;
        DROP TABLE stage, ordered;
        """,
    ),
    (
        "Stripe events and provider webhooks",
        """
        -- All processed: reconcile reports every failed event, and the worker needs a clean --full.
        INSERT INTO billing_stripeevent (event_id, type, object_id, livemode, payload, status, error, attempts,
                                         received_at, processed_at)
        SELECT 'evt_scale_' || n, (ARRAY['checkout.session.completed', 'invoice.paid', 'charge.refunded'])[1 + n %% 3],
               'cs_' || n, false, jsonb_build_object('id', 'evt_scale_' || n, 'object', 'event'),
               'processed', '', 1, t, t
        FROM (SELECT n, %(end)s - random() * interval '180 days' AS t
              FROM generate_series(1, %(events)s) AS n) e
        ORDER BY t;
        INSERT INTO generation_providerwebhook (webhook_id, prediction_id, status, received_at)
        SELECT 'msg_scale_' || n, 'p' || n, 'succeeded', t
        FROM (SELECT n, %(end)s - random() * interval '180 days' AS t
              FROM generate_series(1, %(webhooks)s) AS n) w
        ORDER BY t;
        """,
    ),
]


def build(database: str, fraction: float) -> dict:
    params = sizes(fraction) | {"heavy_email": HEAVY_EMAIL}
    timings = {}
    with psycopg.connect(common.conninfo(database), autocommit=True) as conn:
        params["end"] = common.one_row(conn.execute(f"SELECT now() - interval '{QUIET}'"))[0]
        params["model"] = common.one_row(conn.execute("SELECT min(id) FROM generation_aimodel"))[0]
        conn.execute("SELECT setseed(0.14)")
        for label, sql in BUILD:
            started = time.perf_counter()
            with conn.transaction():
                # One statement at a time: a parametrized execute takes a single statement.
                for statement in (part.strip() for part in sql.split(";\n")):
                    if statement.strip(" ;\n") and not all(
                        line.strip().startswith("--") for line in statement.splitlines() if line.strip()
                    ):
                        conn.execute(statement, params, prepare=False)
            timings[label] = round(time.perf_counter() - started, 1)
            print(f"    {database}: {label}: {timings[label]} s", flush=True)
        started = time.perf_counter()
        conn.execute("VACUUM ANALYZE")
        timings["vacuum analyze"] = round(time.perf_counter() - started, 1)
        counts = {
            table: common.one_row(conn.execute(f"SELECT count(*) FROM {table}"))[0]
            for table in (
                "accounts_user",
                "billing_ledgerentry",
                "generation_job",
                "generation_joboutput",
                "billing_stripeevent",
                "generation_providerwebhook",
            )
        }
    return {"seconds": timings, "rows": counts}


# --- The worker: one process per volume, timing operations on request --------------------


def serve(database: str) -> None:
    token = secrets.token_urlsafe(32)  # /metrics answers the worker's own client only
    common.django_setup(database, env={"ALLOWED_HOSTS": "testserver,localhost", "METRICS_TOKEN": token})
    from allauth.account.models import EmailAddress
    from allauth.mfa.totp.internal.auth import TOTP, generate_totp_secret
    from django.db import connection
    from django.db.models import Count, Q, Sum
    from django.test import Client
    from django.test.utils import CaptureQueriesContext
    from django.urls import reverse
    from django.utils import timezone

    from accounts.models import User
    from billing.backoffice import outstanding_credits
    from billing.models import CreditAccount, LedgerEntry
    from billing.reconcile.runner import reconcile_run
    from billing.services import credits_charge
    from generation.alerts import provider_spend_usd
    from generation.models import Job
    from generation.stats import generation_stats
    from operations.alerts import alerts_current

    staff = User.objects.filter(email=STAFF_EMAIL).first()
    if staff is None:
        staff = User.objects.create_superuser(email=STAFF_EMAIL, password=None)  # signed in by force_login
        EmailAddress.objects.create(user=staff, email=staff.email, verified=True, primary=True)
        TOTP.activate(staff, generate_totp_secret())
    heavy = User.objects.get(email=HEAVY_EMAIL)
    person = Client()
    person.force_login(heavy)
    admin = Client()
    admin.force_login(staff)

    newest = Job.objects.filter(user=heavy).order_by("-created_at", "-id").first()
    gallery = person.get(reverse("gallery")).content.decode()
    older = gallery.split('href="?before=', 1)[1].split('"', 1)[0]
    # The cursor of the oldest page of the heavy person's history: the 26th-oldest entry.
    oldest = list(
        LedgerEntry.objects.filter(account__user=heavy).order_by("created_at", "id").values("created_at", "id")[25:26]
    )
    from billing.selectors import HISTORY_KEYS

    oldest_cursor = "_".join(key.encode(oldest[0][key.path]) for key in HISTORY_KEYS)
    someone = User.objects.filter(email__startswith="person5").first()
    a_job = Job.objects.order_by("prediction_id").first()
    # All made by the build; a database without them is not one this benchmark can measure.
    assert newest is not None and someone is not None and a_job is not None
    charges = iter(range(1_000_000))
    people = list(User.objects.filter(email__startswith="person").order_by("pk").values_list("pk", flat=True)[:200])

    def get(client, url: str, params: dict | None = None):
        def run() -> None:
            response = client.get(url, params or {})
            assert response.status_code == 200, (url, response.status_code)

        return run

    def reconcile_incremental() -> None:
        # The same change at both volumes: 20 charges by 20 people since the last run.
        for pk in people[:20]:
            credits_charge(user=User(pk=pk), amount=1, key=f"charge:scale-{database}-{next(charges)}")
        reconcile_run()

    monitoring = Client(HTTP_AUTHORIZATION=f"Bearer {token}")

    def scrape() -> str:
        response = monitoring.get("/metrics")
        assert response.status_code == 200, response.status_code
        return response.content.decode()

    def counted_whole() -> None:
        # What the scrape's job and money figures cost without its tallies: every finished job by
        # model and status, the spend of the last day, every positive balance.
        final = [Job.Status.SUCCEEDED, Job.Status.FAILED, Job.Status.CANCELED]
        list(Job.objects.filter(status__in=final).values("model__key", "status").annotate(n=Count("pk")).order_by())
        provider_spend_usd(timezone.now())
        CreditAccount.objects.aggregate(total=Sum("balance", filter=Q(balance__gt=0)))

    def catch_up() -> dict:
        # A deploy's first scrapes add up the existing ledger, a million entries each; then the
        # figures must be what the admin home counts the slow way.
        started, scrapes = time.perf_counter(), 0
        while True:
            scrapes += 1
            text = scrape()
            found = [line for line in text.splitlines() if line.startswith("dreampixel_credits_outstanding ")]
            if found:
                break
        outstanding = float(found[0].split()[1])
        assert outstanding == outstanding_credits()["credits"], (outstanding, outstanding_credits())
        return {"scrapes": scrapes, "seconds": round(time.perf_counter() - started, 2)}

    def cleanup_dry_run() -> dict:
        code = (
            "import resource, sys, time; sys.argv = ['x'];"
            f"from bench import common; common.django_setup({database!r});"
            "from django.core.management import call_command; import io;"
            "t = time.perf_counter(); call_command('cleanup', '--dry-run', stdout=io.StringIO());"
            "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)"
        )
        out = subprocess.run(
            [sys.executable, "-c", code], cwd=common.ROOT, capture_output=True, text=True, check=True
        ).stdout.split()
        return {"seconds": float(out[0]), "peak_rss_mb": round(int(out[1]) / 1024, 1)}

    operations = {
        "gallery page 1, the heavy person": get(person, reverse("gallery")),
        "gallery, an older page": get(person, reverse("gallery"), {"before": older}),
        "gallery search, a word in a quarter of theirs": get(person, reverse("gallery"), {"q": "fox"}),
        "gallery search, a word in one of 1,000 jobs": get(person, reverse("gallery"), {"q": "comet"}),
        "gallery search, a word all over the site, rare in theirs": get(person, reverse("gallery"), {"q": "harbour"}),
        "gallery, favourites": get(person, reverse("gallery"), {"fav": "1"}),
        "/billing/ page 1, the heavy person": get(person, reverse("billing")),
        "/billing/ oldest page": get(person, reverse("billing"), {"before": oldest_cursor}),
        "job page": get(person, reverse("job_detail", args=[newest.id])),
        "job status fragment": get(person, reverse("job_status", args=[newest.id])),
        "admin home": get(admin, reverse("admin:index")),
        "admin jobs list": get(admin, reverse("admin:generation_job_changelist")),
        "admin jobs search by email": get(admin, reverse("admin:generation_job_changelist"), {"q": someone.email}),
        "admin jobs search by job id": get(admin, reverse("admin:generation_job_changelist"), {"q": str(a_job.id)}),
        "admin users list": get(admin, reverse("admin:accounts_user_changelist")),
        "admin ledger list": get(admin, reverse("admin:billing_ledgerentry_changelist")),
        "admin ledger search by key": get(
            admin, reverse("admin:billing_ledgerentry_changelist"), {"q": f"charge:{a_job.id}"}
        ),
        "admin ledger filter: refunds": get(
            admin, reverse("admin:billing_ledgerentry_changelist"), {"kind__exact": "refund"}
        ),
        "admin Stripe events list": get(admin, reverse("admin:billing_stripeevent_changelist")),
        "alerts": alerts_current,
        "generation_stats 24 h": lambda: generation_stats(hours=24),
        "generation_stats 720 h": lambda: generation_stats(hours=720),
        "reconcile (incremental, 20 new charges)": reconcile_incremental,
        "reconcile --full": lambda: reconcile_run(full=True),
        "/metrics scrape": scrape,
        "the scrape's figures counted whole (baseline)": counted_whole,
    }
    # The watermark: a full, clean run before anything is timed.
    first, findings, _ = reconcile_run(full=True)
    if not first.ok:
        print(json.dumps({"error": "reconcile --full found problems in the built data",
                          "findings": {f.name: f.count for f in findings if not f.ok}}), flush=True)  # fmt: skip
    print(json.dumps({"ready": True, "metrics_catch_up": catch_up()}), flush=True)
    for line in sys.stdin:
        request = json.loads(line)
        name = request["op"]
        if name == "cleanup --dry-run":
            print(json.dumps(cleanup_dry_run() | {"queries": None}), flush=True)
            continue
        operation = operations[name]
        if request.get("warm"):
            with CaptureQueriesContext(connection) as captured:
                operation()
            print(json.dumps({"queries": len(captured)}), flush=True)
            continue
        started = time.perf_counter()
        operation()
        print(json.dumps({"seconds": time.perf_counter() - started}), flush=True)


class Worker:
    def __init__(self, database: str):
        self.database = database
        self.process = subprocess.Popen(
            [sys.executable, str(Path(__file__).resolve()), "--serve", database],
            cwd=common.ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=os.environ | {"PYTHONPATH": str(common.ROOT)},
        )
        assert self.process.stdin is not None and self.process.stdout is not None  # both PIPEs
        self.requests, self.answers = self.process.stdin, self.process.stdout
        ready = self._read()
        if "error" in ready:
            raise RuntimeError(f"{database}: {ready}")
        self.catch_up: dict = ready["metrics_catch_up"]

    def _read(self) -> dict:
        line = self.answers.readline()
        if not line:
            raise RuntimeError(f"the worker for {self.database} stopped")
        return json.loads(line)

    def ask(self, op: str, *, warm: bool = False) -> dict:
        self.requests.write(json.dumps({"op": op, "warm": warm}) + "\n")
        self.requests.flush()
        return self._read()

    def close(self) -> None:
        self.requests.close()
        self.process.wait(timeout=60)


# --- Running and reporting ---------------------------------------------------------------


def _fmt(seconds: float) -> str:
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=float, default=0.1, help="the big volume, as a fraction of the full one")
    parser.add_argument("--base", type=float, default=0.001, help="the small volume, as a fraction of the full one")
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per operation and volume (median)")
    parser.add_argument("--prefix", default="bench_scale", help="database names: <prefix>_small, <prefix>_big")
    parser.add_argument("--reuse", action="store_true", help="use databases left by an earlier --keep run")
    parser.add_argument("--keep", action="store_true", help="leave the databases behind")
    parser.add_argument(
        "--name", default="scale", help="the results file: bench/results/<name>.json (default: %(default)s)"
    )
    parser.add_argument("--serve", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(args.serve)
        return

    info = common.machine()
    print(f"Scale benchmark: {args.scale:.3%} against {args.base:.3%} of the full volume")
    print(f"  {common.machine_line(info)}")
    load_before = common.warn_if_busy()
    small, big = f"{args.prefix}_small", f"{args.prefix}_big"
    built = {}
    if not args.reuse:
        template = f"{args.prefix}_template"
        print("  migrating a template database…", flush=True)
        common.create_template(template)
        for name, fraction in ((small, args.base), (big, args.scale)):
            common.clone_database(template, name)
            started = time.perf_counter()
            built[name] = build(name, fraction)
            built[name]["total_seconds"] = round(time.perf_counter() - started, 1)
            print(f"  built {name} in {built[name]['total_seconds']} s: {built[name]['rows']}", flush=True)
        common.drop_database(template)

    workers = {name: Worker(name) for name in (small, big)}
    rows, results = [], {}
    try:
        queries = {}
        for op, _ in OPERATIONS:
            queries[op] = {name: worker.ask(op, warm=True).get("queries") for name, worker in workers.items()}
        timings: dict[str, dict[str, list[float]]] = {op: {small: [], big: []} for op, _ in OPERATIONS}
        memory: dict[str, dict[str, list[float]]] = {op: {small: [], big: []} for op, _ in OPERATIONS}
        for round_number in range(args.repeat):
            for op, _ in OPERATIONS:
                order = (small, big) if round_number % 2 == 0 else (big, small)
                for name in order:
                    answer = workers[name].ask(op)
                    timings[op][name].append(answer["seconds"])
                    if "peak_rss_mb" in answer:
                        memory[op][name].append(answer["peak_rss_mb"])
            print(f"  round {round_number + 1} of {args.repeat} done", flush=True)
    finally:
        for worker in workers.values():
            worker.close()
        if not args.keep:
            for name in (small, big):
                common.drop_database(name)

    for op, group in OPERATIONS:
        a, b = (statistics.median(timings[op][name]) for name in (small, big))
        ratio = b / a if a else float("inf")
        target = TARGETS.get(group)
        verdict = common.verdict(ratio <= target) if target else "reported"
        q = queries[op]
        queries_cell = "—" if q[small] is None else (f"{q[small]}" if q[small] == q[big] else f"{q[small]} / {q[big]}")
        extra = ""
        if memory[op][big]:
            extra = f" ({max(memory[op][small]):.0f} / {max(memory[op][big]):.0f} MB peak)"
        rows.append([op, _fmt(a), _fmt(b) + extra, f"{ratio:.1f}×", queries_cell, f"≤ {target}×" if target else "—",
                     verdict])  # fmt: skip
        results[op] = {"group": group, "small_s": timings[op][small], "big_s": timings[op][big], "median_small_s": a,
                       "median_big_s": b, "ratio": ratio, "queries": q, "peak_rss_mb": memory[op]}  # fmt: skip
    headers = ["operation", f"{args.base:.1%}", f"{args.scale:.1%}", "×", "queries", "target", "result"]
    print()
    print(common.table(headers, rows))
    for name, worker in workers.items():
        print(f"  {name}: /metrics caught up with the existing ledger in {worker.catch_up['scrapes']} scrape(s), "
              f"{worker.catch_up['seconds']} s")  # fmt: skip
    load = common.load_record(load_before)
    print(
        f"\n  load average before {load['before']}, after {load['after']}"
        + ("  (busy machine)" if load["busy"] else "")
    )
    path = common.write_results(
        args.name,
        {
            "command": " ".join(["bench/scale.py", *sys.argv[1:]]),
            "commit": common.git_commit(),
            "machine": info,
            "load_average": load,
            "scale": args.scale,
            "base": args.base,
            "repeat": args.repeat,
            "built": built,
            "metrics_catch_up": {name: worker.catch_up for name, worker in workers.items()},
            "operations": results,
        },
    )
    print(f"  wrote {path.relative_to(common.ROOT)}")


if __name__ == "__main__":
    main()
