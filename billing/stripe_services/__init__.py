"""Stripe: customers, Checkout, the portal, and fulfilment from webhooks (and `reconcile --fix`).

Each fulfilment service reads from Stripe first (network, outside any transaction), then
applies what it read in one DB transaction through the idempotent ledger services, so a
failure anywhere leaves nothing half done. Credits move under keys named for the Stripe
object, never the event: `purchase:<checkout session>`, `invoice:<invoice>`,
`clawback:<refund or dispute>`, `restore:<dispute>`. Any order and any number of deliveries
therefore end in the same ledger. One module per concern:

- `checkout`: customers, starting Checkout, the customer portal (called from views);
- `fulfilment`: paid Checkout sessions, paid invoices and subscription state;
- `reversals`: refunds and disputes, clawed back and restored;
- `plans`: ending plans (a deleted account, a second plan) and refunding an invoice;
- `events`: recording verified webhook events and running their handlers.
"""

from billing.stripe_services.checkout import checkout_start, portal_session_create, stripe_customer_ensure
from billing.stripe_services.common import (
    DISPUTE_CLAWBACK_STATUSES,
    DISPUTE_RESTORE_STATUSES,
    DISPUTE_STATUS_EFFECTS,
    GRANTING_BILLING_REASONS,
    PAID_SESSION,
    REFUND_CLAWBACK_STATUSES,
    CheckoutRefused,
    StripeDataError,
)
from billing.stripe_services.events import EVENT_HANDLERS, stripe_event_process, stripe_event_record
from billing.stripe_services.fulfilment import checkout_fulfill, invoice_fulfill, subscription_sync
from billing.stripe_services.plans import (
    invoice_payment_refund,
    invoice_refunded,
    plan_duplicates_find,
    plan_duplicates_settle,
    subscription_cancel,
    subscriptions_cancel_for_user,
)
from billing.stripe_services.reversals import charge_reversals_settle, credits_share

__all__ = [
    "DISPUTE_CLAWBACK_STATUSES",
    "DISPUTE_RESTORE_STATUSES",
    "DISPUTE_STATUS_EFFECTS",
    "EVENT_HANDLERS",
    "GRANTING_BILLING_REASONS",
    "PAID_SESSION",
    "REFUND_CLAWBACK_STATUSES",
    "CheckoutRefused",
    "StripeDataError",
    "charge_reversals_settle",
    "checkout_fulfill",
    "checkout_start",
    "credits_share",
    "invoice_fulfill",
    "invoice_payment_refund",
    "invoice_refunded",
    "plan_duplicates_find",
    "plan_duplicates_settle",
    "portal_session_create",
    "stripe_customer_ensure",
    "stripe_event_process",
    "stripe_event_record",
    "subscription_cancel",
    "subscription_sync",
    "subscriptions_cancel_for_user",
]
