"""Console forms for prices, recharge, operator billing settings and the operator's user page
(parsing only)."""

from __future__ import annotations

from decimal import Decimal

from django import forms
from django.conf import settings
from django.utils.translation import gettext_lazy as _

from core.pricing import to_micro
from groups.models import UserGroup


class RechargeForm(forms.Form):
    amount = forms.DecimalField(
        label=_("Amount to pay (¥)"),
        max_value=Decimal("10000000"),
        max_digits=12,
        decimal_places=2,
        widget=forms.NumberInput(attrs={"step": "0.01"}),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.minimum = Decimal(settings.RECHARGE_MIN_CNY)
        self.fields["amount"].widget.attrs["min"] = str(self.minimum)

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        if amount < self.minimum:
            raise forms.ValidationError(
                _("The minimum recharge is ¥%(minimum)s."), code="min_value", params={"minimum": self.minimum}
            )
        return amount

    @property
    def amount_micro(self) -> int:
        return to_micro(self.cleaned_data["amount"])


class BonusTierForm(forms.Form):
    min_amount = forms.DecimalField(
        label=_("Minimum recharge (¥)"), min_value=Decimal("0.01"), max_digits=12, decimal_places=2
    )
    bonus_percent = forms.DecimalField(
        label=_("Bonus (%)"), min_value=Decimal(0), max_value=Decimal(100), max_digits=5, decimal_places=2
    )


class RateForm(forms.Form):
    usd_cny_rate = forms.DecimalField(
        label=_("USD → CNY rate"),
        min_value=Decimal("0.01"),
        max_value=Decimal("1000"),
        max_digits=10,
        decimal_places=4,
        help_text=_("Every RMB price = official USD price × this rate × group multiplier."),
    )


class SpendRangeForm(forms.Form):
    """A date range of at most a year, in the user's local dates."""

    MAX_DAYS = 366

    date_from = forms.DateField(label=_("From"), widget=forms.DateInput(attrs={"type": "date"}))
    date_to = forms.DateField(label=_("Until"), widget=forms.DateInput(attrs={"type": "date"}))

    def clean(self):
        data = super().clean()
        start, end = data.get("date_from"), data.get("date_to")
        if start and end:
            if start > end:
                raise forms.ValidationError(_("The start date is after the end date."))
            if (end - start).days >= self.MAX_DAYS:
                raise forms.ValidationError(
                    _("Choose a range of at most %(days)s days.") % {"days": self.MAX_DAYS}
                )
        return data


class AdjustForm(forms.Form):
    amount = forms.DecimalField(
        label=_("Amount (¥)"),
        max_digits=14,
        decimal_places=6,
        help_text=_("Positive credits the wallet, negative debits it."),
    )
    reason = forms.CharField(
        label=_("Reason"), max_length=255, help_text=_("Required; shown in the ledger and the audit log.")
    )

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError(_("Enter a non-zero amount."))
        return amount

    @property
    def amount_micro(self) -> int:
        return to_micro(Decimal(self.cleaned_data["amount"]))


class UserGroupForm(forms.Form):
    user_group = forms.ModelChoiceField(
        queryset=UserGroup.objects.all(), required=False, label=_("User group"), empty_label=_("(none)")
    )
    user_group_pinned = forms.BooleanField(
        required=False,
        label=_("Pinned"),
        help_text=_("Recharge upgrade rules leave a pinned user group alone."),
    )
