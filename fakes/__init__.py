"""Fake Stripe, Replicate and Google HTTP servers on loopback, which the real `stripe` and
`replicate` client libraries (and allauth's Google sign-in) talk to. The tests, the benchmarks
and the local payments sandbox use them.

- `fakes.replicate.FakeReplicate`: predictions (scenarios picked by markers in the prompt),
  the account's list, cancels, file uploads, signed webhooks; `POISON`, `POISON_PIXEL`,
  `DEFAULT_TOKEN`.
- `fakes.stripe.FakeStripe`: prices, customers, Checkout, subscriptions, invoices, refunds,
  disputes and signed webhooks; `signed_event`, `event_payload` and `sign` build webhook
  deliveries with Stripe's real signature scheme.
- `fakes.sandbox.PaymentsSandbox`: the fake Stripe as `make dev`'s local payments sandbox (a
  checkout page with test cards, a portal, a dashboard with refunds, webhooks sent back).
- `fakes.google.FakeGoogle`: Google's authorization page, token and userinfo endpoints, for a
  sign-in through a whole running site.

Each server is a context manager (`with FakeReplicate() as fake:`) and has `.url` once started.
Each module's docstring says what the real service does that the fake reproduces.
"""
