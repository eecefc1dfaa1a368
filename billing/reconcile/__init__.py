"""Reconciliation: checks that money and work agree, run by `manage.py reconcile`.

- `findings`: what a check returns (a Finding), and RECONCILE_CHECKS, where every app registers
  its checks from its AppConfig.ready; an app that knows both sides of a rule (a failed job
  without its refund) keeps the check, `billing` knows only the ledger and Stripe;
- `ledger`: the ledger's own rules (balances, the chain of entries, refunds);
- `stripe_checks`: Stripe's side (paid sessions and invoices, refunds and disputes, plans,
  webhook events), each reading Stripe's listings of a recent window;
- `runner`: runs every check (incrementally, or `full`), repairs on request, stores the run.
"""
