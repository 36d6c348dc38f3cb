"""Console forms for users: sign-up and preferences (validated by services)."""

import zoneinfo

from django import forms
from django.contrib.auth.forms import UserCreationForm
from django.utils.translation import gettext_lazy as _

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
