"""The catalog's prices every page shows are kept in the cache until staff change the catalog
(generation/selectors.py, core/versioned.py).

Each test runs on local memory (development: nothing is kept) and on Redis (production)."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from accounts.tests.factories import UserFactory
from billing.services import credits_grant
from generation.models import AIModel
from generation.selectors import catalog_credit_costs
from generation.tests.factories import local_edit_model, local_model, replicate_model

# The catalog's version moves when a change commits, as in production.
pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def customer(client):
    # Only this test's catalog is offered.
    AIModel.objects.update(enabled=False)
    user = UserFactory()
    credits_grant(user=user, amount=600, key="purchase:catalog-prices")
    client.force_login(user)
    return user


def _admin_edit(staff_client, model: AIModel, **changes) -> None:
    data = {
        "key": model.key, "name": model.name, "description": "", "kind": model.kind, "provider": model.provider,
        "provider_ref": "", "credit_cost": model.credit_cost, "timeout_seconds": 60,
        "aspect_ratios": '{"square": "1:1"}', "input_defaults": "{}", "enabled": "on", "position": 0,
        "provider_usd_per_run": "0", "provider_usd_per_second": "0", "duration_seconds": "",
        "upscale_factor": "", "max_outputs": 1, "image_input": "input_image", "staff_reason": "New provider price",
    }  # fmt: skip
    response = staff_client.post(reverse("admin:generation_aimodel_change", args=[model.pk]), data | changes)
    assert response.status_code == 302


def _pages(client) -> tuple[str, str, str]:
    return tuple(client.get(reverse(name)).content.decode() for name in ("billing", "create", "landing"))


def test_a_price_changed_in_the_admin_shows_on_the_next_page(client, customer, staff_client, shared_cache):
    model = local_model(credit_cost=500)
    billing, create, landing = _pages(client)
    assert "An image costs 500." in billing and "You are running low" not in billing
    assert 'class="balance"' in create  # the header: 600 credits pay for an image at 500
    assert "500 <span>credits</span>" in landing

    _admin_edit(staff_client, model, credit_cost=750)
    billing, create, landing = _pages(client)
    assert "An image costs 750." in billing and "You are running low: 600 credits" in billing
    assert 'class="balance balance-low"' in create
    assert "750 <span>credits</span>" in landing and "500 <span>credits</span>" not in landing

    _admin_edit(staff_client, model, credit_cost=750, enabled="")  # switched off: nothing to make
    billing, create, landing = _pages(client)
    assert "An image costs" not in billing and 'class="balance"' in create
    assert "750 <span>credits</span>" not in landing


def test_the_prices_are_read_once_until_the_catalog_changes(customer, shared_cache):
    model = local_model(credit_cost=500)

    def read() -> tuple[dict[str, int], int]:
        with CaptureQueriesContext(connection) as seen:
            costs = catalog_credit_costs()
        return costs, sum("generation_aimodel" in query["sql"] for query in seen.captured_queries)

    assert read() == ({"image": 500}, 1)
    # On Redis the rows are kept; on local memory (one process of several) they never are.
    assert read() == ({"image": 500}, 0 if shared_cache == "redis" else 1)
    model.credit_cost = 450
    model.save()
    assert read() == ({"image": 450}, 1)
    local_edit_model(credit_cost=1_000)
    assert read() == ({"image": 450, "image_edit": 1_000}, 1)
    model.delete()
    assert read() == ({"image_edit": 1_000}, 1)


def test_a_provider_switched_on_or_off_in_the_settings_changes_the_prices_at_once(customer, settings, shared_cache):
    local_model(credit_cost=500)
    replicate_model(credit_cost=100)
    settings.REPLICATE_API_TOKENS = []
    assert catalog_credit_costs() == {"image": 500}
    settings.REPLICATE_API_TOKENS = ["r8_test"]
    assert catalog_credit_costs() == {"image": 100}
    settings.LOCAL_RENDERER_ENABLED = False
    settings.REPLICATE_API_TOKENS = []
    assert catalog_credit_costs() == {}


def test_with_redis_down_the_prices_are_read_from_the_database(customer, settings):
    model = local_model(credit_cost=500)
    settings.CACHES = {"default": {"BACKEND": "core.cache.RedisCache", "LOCATION": "redis://127.0.0.1:1/0"}}
    assert catalog_credit_costs() == {"image": 500}
    model.credit_cost = 650
    model.save()  # the version cannot be replaced: nothing was kept either
    assert catalog_credit_costs() == {"image": 650}
