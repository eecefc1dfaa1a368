"""The local payments sandbox: the fake Stripe as `make dev` runs it (scripts/dev_payments.py), so a
newcomer can buy a pack, take a plan, manage it and see a refund without a Stripe account or the
network. Every page says it is a sandbox; nothing is charged and no card number leaves the machine.

What it adds to FakeStripe (fakes/stripe.py), in the places Stripe's own pages stand:
- a hosted Checkout page (`/c/pay/<session>`) with a card form: 4242 4242 4242 4242 pays,
  4000 0000 0000 0002 is declined, as Stripe's test cards do;
- a customer portal (`/p/session/<id>`): the person's plans, cancel at the period's end or keep;
- a dashboard (`/`): payments with a Refund button, plans with "Renew now" and "End now", and the
  webhook deliveries;
- every event the fake records is sent to the site's webhook, signed with Stripe's scheme, in
  order (the Checkout page waits for its own before it sends the browser back).
"""

from __future__ import annotations

import html
import queue
import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import parse_qs

import httpx

from fakes.stripe import FakeStripe, Obj, signed_event

PAYING_CARD = "4242424242424242"
DECLINED_CARD = "4000000000000002"
Answer = tuple[int, bytes, dict[str, str]]

_STYLE = """
body{font:16px/1.5 system-ui,sans-serif;max-width:44rem;margin:0 auto;padding:0 1rem 3rem;color:#1c1c28}
.sandbox{background:#fff4d6;border:2px dashed #c98a00;padding:.6rem .9rem;margin:1rem 0;border-radius:.5rem}
label{display:block;margin:.6rem 0 .2rem}input{font:inherit;padding:.4rem;width:100%;box-sizing:border-box}
button{font:inherit;padding:.5rem 1rem;margin:.6rem .4rem 0 0;cursor:pointer}
.error{color:#a4161a;font-weight:600}table{border-collapse:collapse;width:100%}
td,th{border-bottom:1px solid #ddd;padding:.35rem;text-align:left}form.inline{display:inline}
"""
BANNER = (
    '<p class="sandbox"><strong>Payments sandbox.</strong> Test mode on this computer: nothing is '
    "charged and no card number leaves it. Production refuses the sandbox.</p>"
)


@dataclass
class Delivery:
    event_id: str
    event_type: str
    status: int | None
    error: str = ""


def _page(title: str, body: str, status: int = 200) -> Answer:
    document = (
        f"<!doctype html><html lang=en><meta charset=utf-8><title>{html.escape(title)} · Payments sandbox</title>"
        f"<style>{_STYLE}</style><body>{BANNER}<h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return status, document.encode(), {"Content-Type": "text/html; charset=utf-8"}


def _redirect(location: str) -> Answer:
    return 303, b"", {"Location": location, "Content-Type": "text/html"}


def _money(cents: int | None, currency: str | None) -> str:
    return f"{(cents or 0) / 100:.2f} {str(currency or '').upper()}"


class PaymentsSandbox:
    def __init__(self, fake: FakeStripe, *, webhook_url: str, webhook_secret: str) -> None:
        self.fake = fake
        self.webhook_url = webhook_url
        self.webhook_secret = webhook_secret
        self.deliveries: list[Delivery] = []
        self._sent = len(fake.events)
        self._lock = threading.Lock()
        self._outbox: queue.Queue[Obj] = queue.Queue()
        fake.checkout_page = True  # sessions and portal sessions get URLs on the fake itself
        fake.pages = self.page
        fake.after_change = self.send_new_events
        threading.Thread(target=self._deliver_forever, name="sandbox-webhooks", daemon=True).start()

    # ---- webhooks ---------------------------------------------------------------------------------

    def send_new_events(self, *, wait: bool = False) -> None:
        """Queue every event recorded since the last call for the site's webhook, in order."""
        with self._lock:
            new = list(self.fake.events[self._sent :])
            self._sent += len(new)
        for event in new:
            self._outbox.put(event)
        if wait:
            self._outbox.join()

    def _deliver_forever(self) -> None:
        while True:
            event = self._outbox.get()
            try:
                self.deliveries.append(self._deliver(event))
            finally:
                self._outbox.task_done()

    def _deliver(self, event: Obj) -> Delivery:
        body, header = signed_event(event, self.webhook_secret)
        error = ""
        for attempt in range(3):  # the site may still be starting
            try:
                answer = httpx.post(
                    self.webhook_url, content=body, timeout=15,
                    headers={"Content-Type": "application/json", "Stripe-Signature": header},
                )  # fmt: skip
                if answer.status_code < 500:
                    return Delivery(event["id"], event["type"], answer.status_code)
                error = f"answered {answer.status_code}"
            except httpx.HTTPError as exc:
                error = type(exc).__name__
            time.sleep(1 + attempt)
        return Delivery(event["id"], event["type"], None, error)

    # ---- pages ------------------------------------------------------------------------------------

    def page(self, method: str, path: str, body: bytes) -> Answer | None:
        form = {k: v[0] for k, v in parse_qs(body.decode("utf-8", "replace")).items()}
        routes: list[tuple[str, str, Callable[..., Answer]]] = [
            ("GET", r"/", self._dashboard),
            ("POST", r"/dashboard/refund/([\w]+)", self._refund),
            ("POST", r"/dashboard/renew/([\w]+)", self._renew),
            ("POST", r"/dashboard/end/([\w]+)", self._end),
            ("GET", r"/c/pay/([\w]+)/?", self._checkout),
            ("POST", r"/c/pay/([\w]+)/?", self._pay),
            ("GET", r"/p/session/([\w]+)/?", self._portal),
            ("POST", r"/p/session/([\w]+)/(cancel|keep)/([\w]+)", self._portal_change),
        ]
        for verb, pattern, handler in routes:
            match = re.fullmatch(pattern, path.split("?", 1)[0])
            if match and verb == method:
                try:
                    return handler(form, *match.groups())
                except (KeyError, ValueError) as error:
                    return _page("Not possible", f"<p class=error>{html.escape(str(error))}</p>", 400)
        return None

    def _checkout(self, form: dict, session_id: str, *, error: str = "") -> Answer:
        session = self.fake.get(session_id)
        if session.get("object") != "checkout.session":
            raise KeyError(f"No checkout session {session_id}")
        if session["status"] != "open":
            back = html.escape(str(session.get("success_url") or "/").replace("{CHECKOUT_SESSION_ID}", session_id))
            return _page(
                "Checkout",
                f"<p>This checkout is {html.escape(session['status'])}.</p><p><a href='{back}'>Back to the site</a></p>",
            )
        items = self.fake.client().v1.checkout.sessions.line_items.list(session_id).data
        lines = "".join(
            f"<li>{html.escape(str(i.description))}: {_money(i.amount_total, i.currency)}</li>" for i in items
        )
        every = " then every month until you cancel" if session["mode"] == "subscription" else ""
        cancel = html.escape(str(session.get("cancel_url") or "/"))
        body = (
            f"<ul>{lines}</ul><p>Total today: <strong>{_money(session['amount_total'], session['currency'])}</strong>{every}.</p>"
            + (f"<p class=error>{html.escape(error)}</p>" if error else "")
            + f"<form method=post action='/c/pay/{session_id}'>"
            "<label for=card>Card number (a test card)</label>"
            "<input id=card name=card value='4242 4242 4242 4242' autocomplete=off inputmode=numeric>"
            "<label for=expiry>Expiry</label><input id=expiry name=expiry value='12 / 34'>"
            "<label for=cvc>CVC</label><input id=cvc name=cvc value='123'>"
            "<p>4242 4242 4242 4242 pays; 4000 0000 0000 0002 is declined.</p>"
            f"<button type=submit>Pay</button> <a href='{cancel}'>Cancel and go back</a></form>"
        )
        return _page("Checkout", body)

    def _pay(self, form: dict, session_id: str) -> Answer:
        card = re.sub(r"\D", "", form.get("card", ""))
        if card == DECLINED_CARD:
            return self._checkout(form, session_id, error="Your card was declined. Nothing was charged.")
        if card != PAYING_CARD:
            return self._checkout(form, session_id, error="Use a test card: 4242 4242 4242 4242.")
        session = self.fake.get(session_id)
        self.fake.complete_checkout(session_id)
        self.send_new_events(wait=True)  # the site has the payment before the browser is back
        return _redirect(str(session.get("success_url") or "/").replace("{CHECKOUT_SESSION_ID}", session_id))

    def _subscriptions_of(self, customer_id: str | None) -> list[Obj]:
        return [s for s in self.fake.objects("subscription") if customer_id is None or s["customer"] == customer_id]

    def _subscription_row(self, subscription: Obj, actions: str) -> str:
        item = subscription["items"]["data"][0]
        price = item["price"]
        period_end = item.get("current_period_end")
        until = time.strftime("%Y-%m-%d", time.gmtime(period_end)) if period_end else "—"
        state = subscription["status"] + (
            " (ends at the period's end)" if subscription.get("cancel_at_period_end") else ""
        )
        return (
            f"<tr><td>{_money(price['unit_amount'], price['currency'])} a month</td><td>{html.escape(state)}</td>"
            f"<td>{until}</td><td>{actions}</td></tr>"
        )

    def _portal(self, form: dict, portal_id: str) -> Answer:
        portal = self.fake.get(portal_id)
        rows = []
        for subscription in self._subscriptions_of(portal["customer"]):
            action = ""
            if subscription["status"] in ("active", "trialing", "past_due"):
                verb = "keep" if subscription.get("cancel_at_period_end") else "cancel"
                label = "Keep my plan" if verb == "keep" else "Cancel my plan"
                action = (f"<form class=inline method=post action='/p/session/{portal_id}/{verb}/{subscription['id']}'>"
                          f"<button>{label}</button></form>")  # fmt: skip
            rows.append(self._subscription_row(subscription, action))
        table = (
            "<table><tr><th>Plan</th><th>Status</th><th>Period ends</th><th></th></tr>" + "".join(rows) + "</table>"
            if rows
            else "<p>No plan.</p>"
        )
        back = html.escape(str(portal.get("return_url") or "/"))
        return _page("Your plan and invoices", f"{table}<p><a href='{back}'>Return to Dream Pixel</a></p>")

    def _portal_change(self, form: dict, portal_id: str, verb: str, subscription_id: str) -> Answer:
        portal = self.fake.get(portal_id)
        if self.fake.get(subscription_id)["customer"] != portal["customer"]:
            raise KeyError("Not this customer's plan")
        self.fake.update_subscription(subscription_id, cancel_at_period_end=verb == "cancel")
        self.send_new_events()
        return _redirect(f"/p/session/{portal_id}")

    def _dashboard(self, form: dict) -> Answer:
        charges = []
        for charge in reversed(self.fake.objects("charge")):
            refundable = charge["amount"] - charge["amount_refunded"]
            button = (f"<form class=inline method=post action='/dashboard/refund/{charge['id']}'><button>Refund</button></form>"
                      if charge["paid"] and refundable > 0 else "")  # fmt: skip
            customer = self.fake.get(charge["customer"]) if charge.get("customer") else {}
            charges.append(
                f"<tr><td>{html.escape(str(customer.get('email') or '—'))}</td>"
                f"<td>{_money(charge['amount'], charge['currency'])}</td>"
                f"<td>{_money(charge['amount_refunded'], charge['currency'])} refunded</td><td>{button}</td></tr>"
            )
        plans = []
        for subscription in reversed(self._subscriptions_of(None)):
            actions = ""
            if subscription["status"] != "canceled":
                actions = "".join(
                    f"<form class=inline method=post action='/dashboard/{verb}/{subscription['id']}'><button>{label}</button></form>"
                    for verb, label in (("renew", "Renew now"), ("end", "End now"))
                )
            plans.append(self._subscription_row(subscription, actions))
        sent = "".join(
            f"<tr><td>{html.escape(d.event_type)}</td><td>{d.status or html.escape(d.error)}</td></tr>"
            for d in reversed(self.deliveries[-15:])
        )
        body = (
            "<h2>Payments</h2><table><tr><th>Customer</th><th>Amount</th><th>Refunded</th><th></th></tr>"
            + ("".join(charges) or "<tr><td colspan=4>None yet: buy a pack on the site's billing page.</td></tr>")
            + "</table><h2>Plans</h2><table><tr><th>Plan</th><th>Status</th><th>Period ends</th><th></th></tr>"
            + ("".join(plans) or "<tr><td colspan=4>None yet.</td></tr>")
            + f"</table><h2>Webhooks sent to {html.escape(self.webhook_url)}</h2><table>"
            + (sent or "<tr><td>None yet.</td></tr>")
            + "</table>"
        )
        return _page("Payments sandbox dashboard", body)

    def _after(self) -> Answer:
        self.send_new_events()
        return _redirect("/")

    def _refund(self, form: dict, charge_id: str) -> Answer:
        self.fake.refund(charge_id)
        return self._after()

    def _renew(self, form: dict, subscription_id: str) -> Answer:
        self.fake.pay_invoice(subscription_id)
        return self._after()

    def _end(self, form: dict, subscription_id: str) -> Answer:
        self.fake.cancel_subscription(subscription_id)
        return self._after()
