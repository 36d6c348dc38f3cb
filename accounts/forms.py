"""Operator forms for users: user group and balance adjustments (validated by services)."""

from decimal import Decimal

from django import forms

from groups.models import UserGroup


class UserGroupForm(forms.Form):
    user_group = forms.ModelChoiceField(
        queryset=UserGroup.objects.all(), required=False, empty_label="(none)"
    )
    user_group_pinned = forms.BooleanField(
        required=False,
        label="Pinned",
        help_text="Recharge upgrade rules leave a pinned user group alone.",
    )


class AdjustForm(forms.Form):
    amount = forms.DecimalField(
        label="Amount (¥)",
        max_digits=14,
        decimal_places=6,
        help_text="Positive credits the wallet, negative debits it.",
    )
    reason = forms.CharField(max_length=255, help_text="Required; shown in the ledger and the audit log.")

    def clean_amount(self):
        amount = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("Enter a non-zero amount.")
        return amount

    @property
    def amount_micro(self) -> int:
        from billing.pricing import to_micro

        return to_micro(Decimal(self.cleaned_data["amount"]))
