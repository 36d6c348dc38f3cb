"""Console: sign in/out, sign-up, password reset, preferences and the operator's audit log.

The dashboard and the operator's user pages show balances: they are billing's (billing/users.py)."""

from __future__ import annotations

from django.conf import settings
from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import redirect, render
from django.urls import reverse_lazy
from django.utils.translation import gettext as _

from .audit import audit_changes
from .console import paginate, render_list, staff_required
from .filters import AuditLogFilter
from .forms import PreferencesForm, SignUpForm
from .models import AuditLog
from .services import (
    user_create,
    user_preferences_update,
)


class LoginView(auth_views.LoginView):
    template_name = "registration/login.html"
    redirect_authenticated_user = True


class LogoutView(auth_views.LogoutView):
    pass


class PasswordResetView(auth_views.PasswordResetView):
    template_name = "registration/password_reset_form.html"
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"
    success_url = reverse_lazy("accounts:password_reset_done")


class PasswordResetConfirmView(auth_views.PasswordResetConfirmView):
    template_name = "registration/password_reset_confirm.html"
    success_url = reverse_lazy("accounts:password_reset_complete")


def signup(request):
    """Self-service sign-up, only while the operator allows it (SIGNUP_ENABLED)."""
    if not settings.SIGNUP_ENABLED:
        raise Http404(_("Sign-up is closed; ask an operator for an account."))
    if request.user.is_authenticated:
        return redirect("billing:dashboard")
    form = SignUpForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        user = user_create(
            username=form.cleaned_data["username"],
            password=form.cleaned_data["password1"],
            email=form.cleaned_data["email"],
        )
        login(request, user, backend="django.contrib.auth.backends.ModelBackend")
        messages.success(request, _("Welcome! Create a token to start calling models."))
        return redirect("billing:dashboard")
    return render(request, "registration/signup.html", {"form": form})


@login_required
def preferences(request):
    form = PreferencesForm(request.POST or None, initial={"time_zone": request.user.time_zone})
    if request.method == "POST" and form.is_valid():
        try:
            user_preferences_update(user=request.user, time_zone=form.cleaned_data["time_zone"])
        except ValidationError as exc:
            form.add_error("time_zone", exc.message_dict["time_zone"])
        else:
            messages.success(request, _("Preferences saved."))
            return redirect("accounts:preferences")
    return render(request, "accounts/preferences.html", {"form": form})


@staff_required
def ops_audit(request):
    filt = AuditLogFilter(request.GET, queryset=AuditLog.objects.all())
    page = paginate(request, filt.qs)
    for entry in page:
        entry.changes = audit_changes(entry)
    context = {"filter": filt, "page": page}
    return render_list(request, "ops/audit.html", context)
