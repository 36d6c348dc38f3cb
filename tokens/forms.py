"""Token create/edit form. It only parses input; every rule is checked by tokens.services."""

from __future__ import annotations

import re
from decimal import Decimal

from django import forms
from django.conf import settings
from django.db.models import Q
from django.utils.translation import gettext_lazy as _
from django.utils.translation import ngettext

from core.pricing import to_micro
from groups.models import TokenGroup
from groups.selectors import fallback_token_groups, selectable_token_groups

from .models import BILLING_MODE_HELP, BillingMode, Token

SPLIT = re.compile(r"[\s,]+")


def _split(text: str) -> list[str]:
    return [part for part in SPLIT.split(text or "") if part]


class TokenForm(forms.Form):
    name = forms.CharField(
        label=_("Name"), max_length=100, help_text=_("Only for you, e.g. the app or machine using it.")
    )
    select_group = forms.ModelChoiceField(
        label=_("Select group"),
        queryset=TokenGroup.objects.none(),
        empty_label=None,
        help_text=_("Decides the models, the multiplier and the upstream line of every call."),
    )
    fallback_groups = forms.TypedMultipleChoiceField(
        label=_("Fallback groups"),
        coerce=int,
        required=False,
        widget=forms.CheckboxSelectMultiple,
        help_text=_("Tried in this order when the select group cannot serve a call. 1–2 are recommended."),
    )
    billing_mode = forms.ChoiceField(
        label=_("Billing mode"), choices=BillingMode.choices, widget=forms.RadioSelect
    )
    quota = forms.DecimalField(
        label=_("Quota (¥)"),
        required=False,
        min_value=Decimal(0),
        max_digits=14,
        decimal_places=6,
        help_text=_("Spend cap for this token; empty = no cap."),
    )
    expires_at = forms.DateTimeField(
        label=_("Expires"),
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text=_("Empty = never. In your time zone."),
    )
    model_allowlist = forms.CharField(
        label=_("Model allowlist"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "claude-sonnet-4-5, deepseek-v4"}),
        help_text=_("Comma or newline separated; empty = every model the groups offer."),
    )
    ip_allowlist = forms.CharField(
        label=_("IP allowlist"),
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "placeholder": "203.0.113.7, 10.0.0.0/8"}),
        help_text=_("IPs or CIDR ranges; empty = any address."),
    )

    def __init__(self, *args, user, token: Token | None = None, **kwargs):
        if token is not None and "initial" not in kwargs:
            kwargs["initial"] = {
                "name": token.name,
                "select_group": token.select_group_id,
                "fallback_groups": list(token.fallbacks.values_list("group_id", flat=True)),
                "billing_mode": token.billing_mode,
                "quota": None if token.quota_micro is None else Decimal(token.quota_micro) / 1_000_000,
                "expires_at": token.expires_at,
                "model_allowlist": ", ".join(token.model_allowlist),
                "ip_allowlist": "\n".join(token.ip_allowlist),
            }
        kwargs.setdefault("initial", {}).setdefault("billing_mode", BillingMode.USAGE_FIRST)
        super().__init__(*args, **kwargs)
        self.user = user
        self.token = token
        selectable = Q(pk__in=selectable_token_groups(user_group=user.user_group, user=user).values("pk"))
        if token is not None:
            # Keep the current select group valid input; the service still checks access.
            selectable |= Q(pk=token.select_group_id)
        self.fields["select_group"].queryset = TokenGroup.objects.filter(selectable)
        fallbacks = fallback_token_groups(user_group=user.user_group, user=user).distinct()
        self.fields["fallback_groups"].choices = [(g.pk, g.name) for g in fallbacks]
        self.fields["billing_mode"].choices = [
            (value, f"{label} — {BILLING_MODE_HELP[value]}") for value, label in BillingMode.choices
        ]

    def clean_fallback_groups(self):
        chosen = self.cleaned_data["fallback_groups"]
        cap = settings.TOKEN_MAX_FALLBACK_GROUPS
        if len(chosen) > cap:
            raise forms.ValidationError(
                ngettext(
                    "Choose at most %(cap)d fallback group.",
                    "Choose at most %(cap)d fallback groups.",
                    cap,
                )
                % {"cap": cap}
            )
        return chosen

    def service_kwargs(self) -> dict:
        """Keyword arguments for token_create/token_update, fallback order preserved."""
        data = self.cleaned_data
        by_id = {g.pk: g for g in TokenGroup.objects.filter(pk__in=data["fallback_groups"])}
        quota = data.get("quota")
        return {
            "name": data["name"],
            "select_group": data["select_group"],
            "fallback_groups": [by_id[i] for i in data["fallback_groups"] if i in by_id],
            "billing_mode": data["billing_mode"],
            "quota_micro": None if quota is None else to_micro(quota),
            "expires_at": data.get("expires_at"),
            "model_allowlist": _split(data.get("model_allowlist", "")),
            "ip_allowlist": _split(data.get("ip_allowlist", "")),
        }

    def add_service_errors(self, error) -> None:
        renamed = {"quota_micro": "quota"}
        for field, messages in error.message_dict.items():
            field = renamed.get(field, field)
            self.add_error(field if field in self.fields else None, messages)
