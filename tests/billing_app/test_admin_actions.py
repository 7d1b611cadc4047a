"""Every custom Django admin action declares the permission it needs, so staff who may only
view a model are neither offered nor able to run it (the widget's secret rotation was
runnable — and its secret readable — by view-only staff; security review r3)."""

from __future__ import annotations

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.test import RequestFactory
from django.urls import reverse

import billing_app.urls  # noqa: F401  (gives admin.site its second factor and device admins)
from tests.billing_app.two_factor_support import verified_login
from tests.billing_app.widget_support import widget_enable

# Django's own bulk delete asks for the delete permission itself (``allowed_permissions``
# is declared on it too; listed for clarity).
DJANGO_ACTIONS = {"delete_selected"}


def _custom_actions():
    for model, model_admin in admin.site._registry.items():
        for name in model_admin.actions or ():
            func = name if callable(name) else getattr(type(model_admin), name, None)
            if func is None:
                func = admin.site.get_action(name)
            action_name = getattr(func, "__name__", str(name))
            if action_name in DJANGO_ACTIONS:
                continue
            yield model, model_admin, action_name, func


def test_every_custom_admin_action_declares_the_permission_it_needs():
    actions = list(_custom_actions())
    # the audit must have found the actions it is about (a sanity check on the walk)
    names = {name for _, _, name, _ in actions}
    assert {"generate_secret", "provision", "revoke", "unlock", "retry_now"} <= names
    missing = [
        f"{model._meta.label}.{name}"
        for model, _, name, func in actions
        if not getattr(func, "allowed_permissions", None)
    ]
    assert missing == []
    # and each declared permission has its has_<perm>_permission on the admin
    unresolved = [
        f"{model._meta.label}.{name}: {perm}"
        for model, model_admin, name, func in actions
        for perm in func.allowed_permissions
        if not callable(getattr(model_admin, f"has_{perm}_permission", None))
    ]
    assert unresolved == []


@pytest.fixture
def viewer(db, django_user_model):
    """Staff with every view permission of Billing Desk's and the connectors' models."""
    user = django_user_model.objects.create_user("viewer", "viewer@example.com", "pw")
    user.is_staff = True
    user.save()
    user.user_permissions.add(
        *Permission.objects.filter(
            codename__startswith="view_",
            content_type__app_label__in=("billing_app", "helpdesk_connectors"),
        )
    )
    return django_user_model.objects.get(pk=user.pk)  # fresh permission cache


def test_view_only_staff_are_offered_no_action(viewer):
    request = RequestFactory().get("/admin/")
    request.user = viewer
    offered = {
        model._meta.label: sorted(model_admin.get_actions(request))
        for model, model_admin in admin.site._registry.items()
        if model._meta.app_label in ("billing_app", "helpdesk_connectors")
        and model_admin.get_actions(request)
    }
    assert offered == {}


def test_view_only_staff_cannot_rotate_the_widget_secret(client, workspace, viewer):
    widget = widget_enable(workspace)
    old = widget.identity_secret
    verified_login(client, viewer)
    changelist = reverse("admin:billing_app_billingwidget_changelist")

    page = client.get(changelist)
    assert page.status_code == 200  # they may look
    assert "generate_secret" not in page.content.decode()

    response = client.post(
        changelist, {"action": "generate_secret", "_selected_action": [widget.pk]}
    )

    widget.refresh_from_db()
    assert widget.identity_secret == old
    assert old not in response.content.decode()


def test_staff_with_the_change_permission_may_rotate_it(client, workspace, viewer):
    widget = widget_enable(workspace)
    old = widget.identity_secret
    viewer.user_permissions.add(Permission.objects.get(codename="change_billingwidget"))
    verified_login(client, viewer)

    response = client.post(
        reverse("admin:billing_app_billingwidget_changelist"),
        {"action": "generate_secret", "_selected_action": [widget.pk]},
    )

    widget.refresh_from_db()
    assert widget.identity_secret != old
    assert widget.identity_secret in response.content.decode()
