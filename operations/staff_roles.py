"""Staff roles as groups: Support and Finance, with the permissions each needs (docs/runbook.md).

Two permissions have no model behind them and are made here: generation.refund_job (a staff
refund) and generation.rerun_job (a job run again on the house). Installing again only adds
what is missing; permissions a superuser gave a group by hand stay.
"""

from __future__ import annotations

from django.contrib.auth.management import create_permissions

CUSTOM = {
    ("generation", "job", "refund_job"): "Can refund a job (staff refund)",
    ("generation", "job", "rerun_job"): "Can run a job again without charging",
}

ROLES = {
    # People's accounts, jobs and reports, and the emergency switch; no money.
    "Support": [
        "accounts.view_user", "accounts.change_user",
        "billing.view_creditaccount", "billing.view_ledgerentry", "billing.view_checkoutsession",
        "billing.view_subscription", "billing.view_stripecustomer",
        "generation.view_job", "generation.change_job", "generation.rerun_job", "generation.view_joboutput",
        "generation.view_jobreport", "generation.change_jobreport", "generation.view_batch",
        "generation.view_aimodel", "generation.view_providerwebhook",
        "generation.view_sitesettings", "generation.change_sitesettings",
        "generation.view_showcaseitem", "generation.add_showcaseitem", "generation.change_showcaseitem",
        "generation.delete_showcaseitem", "accounts.view_staffaction",
    ],
    # Money: credits, refunds, Stripe, reconciliation and prices.
    "Finance": [
        "accounts.view_user",
        "billing.view_creditaccount", "billing.change_creditaccount", "billing.view_ledgerentry",
        "billing.view_creditpack", "billing.change_creditpack", "billing.view_plan", "billing.change_plan",
        "billing.view_stripeevent", "billing.change_stripeevent", "billing.view_stripecustomer",
        "billing.view_subscription", "billing.view_checkoutsession",
        "billing.view_reconcilerun", "billing.add_reconcilerun",
        "billing.view_reconcilefinding", "billing.change_reconcilefinding",
        "generation.view_job", "generation.refund_job", "generation.view_jobreport", "generation.change_jobreport",
        "generation.view_aimodel", "generation.change_aimodel", "generation.view_batch",
        "accounts.view_staffaction",
    ],
}  # fmt: skip


def staff_groups_install(apps) -> None:
    """The model permissions, then the roles (`apps`: a migration's historical apps). Model
    permissions are normally made after all migrations; these groups need them now."""
    for app_config in apps.get_app_configs():
        # A migration's app (AppConfigStub) has no models_module, and create_permissions skips it.
        stub = getattr(app_config, "models_module", None) is None
        if stub:
            app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        if stub:
            app_config.models_module = None
    staff_roles_write(apps)


def staff_roles_write(apps) -> None:
    """The two permissions no model declares and the role groups, once the model permissions
    exist (after post_migrate: the tests' flush puts the roles back with this)."""
    ContentType = apps.get_model("contenttypes", "ContentType")
    Permission = apps.get_model("auth", "Permission")
    Group = apps.get_model("auth", "Group")
    for (app_label, model, codename), name in CUSTOM.items():
        content_type, _ = ContentType.objects.get_or_create(app_label=app_label, model=model)
        Permission.objects.get_or_create(content_type=content_type, codename=codename, defaults={"name": name})
    for role, names in ROLES.items():
        group, _ = Group.objects.get_or_create(name=role)
        wanted = [tuple(name.split(".")) for name in names]
        found = {
            (app_label, codename): pk
            for pk, app_label, codename in Permission.objects.filter(
                codename__in=[codename for _, codename in wanted]
            ).values_list("pk", "content_type__app_label", "codename")
            if (app_label, codename) in wanted
        }
        if missing := [".".join(name) for name in wanted if name not in found]:
            raise LookupError(f"The {role} role names permissions that do not exist: {', '.join(missing)}")
        group.permissions.add(*found.values())
