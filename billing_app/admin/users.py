"""Django's user admin, with changes of who may act appended to the audit chain.

A user's groups include the workspaces' role groups (``acme · Manager``), which carry the
role's guardian permissions in that workspace; an active superuser holds every
permission everywhere. Both can be changed on the user page, outside
``roles.agent_role_assign``, so each such change is chained
(``services.audit.audit_user_access_change``; docs/audit.md).
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.auth.admin import UserAdmin
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse

from ..services.audit import audit_user_access_change, user_access

_BEFORE = "_billing_desk_access_before"


class AuditedUserAdmin(UserAdmin):
    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        stored = User.objects.filter(pk=obj.pk).first() if change else None
        setattr(request, _BEFORE, user_access(stored))
        super().save_model(request, obj, form, change)

    def _audit(self, request: HttpRequest, obj: Any, change: str) -> None:
        before = getattr(request, _BEFORE, None)
        if before is None:
            # Not through save_model: the password page, which changes no access.
            return
        audit_user_access_change(
            user_obj=obj, change=change, before=before, after=user_access(obj), actor=request.user
        )

    def user_change_password(self, request: HttpRequest, *args: Any, **kwargs: Any) -> Any:
        # One transaction, like the change view: the password and its log commit together.
        with transaction.atomic():
            return super().user_change_password(request, *args, **kwargs)

    def log_addition(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        logged = super().log_addition(request, obj, message)
        self._audit(request, obj, "added")
        return logged

    def log_change(self, request: HttpRequest, obj: Any, message: Any) -> Any:
        logged = super().log_change(request, obj, message)
        self._audit(request, obj, "changed")
        return logged

    def log_deletions(self, request: HttpRequest, queryset: Any) -> Any:
        logged = super().log_deletions(request, queryset)
        for obj in queryset:
            audit_user_access_change(
                user_obj=obj,
                change="deleted",
                before=user_access(obj),
                after={},
                actor=request.user,
            )
        return logged

    def response_action(
        self, request: HttpRequest, queryset: QuerySet[Any], *args: Any, **kwargs: Any
    ) -> HttpResponse | None:
        with transaction.atomic():
            return super().response_action(request, queryset, *args, **kwargs)


if admin.site.is_registered(User):
    admin.site.unregister(User)
admin.site.register(User, AuditedUserAdmin)
