"""Jobs: create (charge + insert + enqueue), run on a worker, finish, fail (refund once).

No provider call happens inside a database transaction, and every task is safe to run twice:
state moves by conditional updates whose row count says whether this process got there first.
The flow of one job, module by module:

- `creating`: the rules a submission meets, single jobs and batches, charged on insert;
- `running`: the worker's part (claim, create or find the prediction, hand it off);
- `polling`: the poller that finishes jobs where no webhook reaches us;
- `finishing`: sync with the provider, succeed, or fail and refund, exactly once;
- `sweeping`: the sweeper, for jobs past their deadline and tasks that were lost;
- `actions`: what a person does to their own jobs (delete, cancel, share, report);
- `staff`: what staff do from the admin (report decisions, refunds, re-runs);
- `common`: what they share (messages, errors, leases, provider retries).
"""

from generation.services.actions import (
    job_cancel,
    job_delete,
    job_favourite,
    job_report,
    job_share,
    job_unshare,
    jobs_delete,
)
from generation.services.common import (
    MAX_PROMPT_LENGTH,
    MESSAGE_BLOCKED,
    MESSAGE_EXPIRED,
    MESSAGE_TIMEOUT,
    MESSAGE_UNAVAILABLE,
    MESSAGE_UNREADABLE,
    GenerationError,
    GenerationPaused,
)
from generation.services.creating import batch_create, job_create
from generation.services.finishing import job_fail, job_finish, job_succeed, job_sync
from generation.services.polling import poller_kick, predictions_poll, predictions_poll_pass
from generation.services.running import job_run
from generation.services.staff import job_cancel_by_staff, job_refund_by_staff, job_rerun_by_staff, report_decide
from generation.services.sweeping import job_requeue_lost, sweep_stuck_jobs

__all__ = [
    "MAX_PROMPT_LENGTH",
    "MESSAGE_BLOCKED",
    "MESSAGE_EXPIRED",
    "MESSAGE_TIMEOUT",
    "MESSAGE_UNAVAILABLE",
    "MESSAGE_UNREADABLE",
    "GenerationError",
    "GenerationPaused",
    "batch_create",
    "job_cancel",
    "job_cancel_by_staff",
    "job_create",
    "job_delete",
    "job_fail",
    "job_favourite",
    "job_finish",
    "job_refund_by_staff",
    "job_report",
    "job_requeue_lost",
    "job_rerun_by_staff",
    "job_run",
    "job_share",
    "job_succeed",
    "job_sync",
    "job_unshare",
    "jobs_delete",
    "poller_kick",
    "predictions_poll",
    "predictions_poll_pass",
    "report_decide",
    "sweep_stuck_jobs",
]
