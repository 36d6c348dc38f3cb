"""Console forms for users: sign-up, preferences, and the operator's user group and balance
adjustments (validated by services)."""

import zoneinfo
from decimal import Decimal

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.utils.translation import gettext_lazy as _

from groups.models import UserGroup

from .models import User

COMMON_ZONES = ["Asia/Shanghai", "Asia/Hong_Kong", "Asia/Taipei", "Asia/Singapore", "Asia/Tokyo", "UTC"]


def _zone_choices() -> list[tuple[str, str]]:
    rest = sorted(zoneinfo.available_timezones() - set(COMMON_ZONES))
    return [("", _("Default for my language")), *[(z, z) for z in COMMON_ZONES + rest]]


class SignUpForm(UserCreationForm):
    email = forms.EmailField(label=_("Email"), help_text=_("For password resets only."))

    class Meta(UserCreationForm.Meta):
        model = User
        fields = ("username", "email")


class PreferencesForm(forms.Form):
    time_zone = forms.ChoiceField(
        label=_("Time zone"),
        required=False,
        help_text=_("Times in the console are shown in this zone; the default is Asia/Shanghai for Chinese."),
    )

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["time_zone"].choices = _zone_choices()


class UserGroupForm(forms.Form):
    user_group = forms.ModelChoiceField(
        queryset=UserGroup.objects.all(), required=False, label=_("User group"), empty_label=_("(none)")
    )
    user_group_pinned = forms.BooleanField(
        required=False,
        label=_("Pinned"),
        help_text=_("Recharge upgrade rules leave a pinned user group alone."),
    )


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
        from core.pricing import to_micro

        return to_micro(Decimal(self.cleaned_data["amount"]))
