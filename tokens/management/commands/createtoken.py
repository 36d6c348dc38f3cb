from decimal import Decimal, InvalidOperation

from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from core.pricing import cny_to_micro
from groups.models import TokenGroup
from tokens.models import BillingMode
from tokens.services import token_create


def _group(name: str) -> TokenGroup:
    group = TokenGroup.objects.filter(name=name).first()
    if group is None:
        raise CommandError(f"unknown token group {name!r}")
    return group


def _messages(exc: ValidationError) -> str:
    if hasattr(exc, "error_dict"):
        return "; ".join(m for errs in exc.message_dict.values() for m in errs)
    return "; ".join(exc.messages)


class Command(BaseCommand):
    help = "Create an sk- token for a user; prints only the new key on stdout."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--group", required=True, help="select group")
        parser.add_argument("--fallback", action="append", default=[], help="fallback group, in order")
        parser.add_argument("--billing-mode", default=BillingMode.USAGE_FIRST, choices=BillingMode.values)
        parser.add_argument("--quota-cny", default=None)
        parser.add_argument("--name", default="cli")

    def handle(self, *args, **options):
        user = User.objects.select_related("user_group").filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"unknown user {options['username']!r}")
        quota = None
        if options["quota_cny"] is not None:
            try:
                quota = cny_to_micro(Decimal(options["quota_cny"]))
            except InvalidOperation:
                raise CommandError(f"--quota-cny {options['quota_cny']!r} is not a number") from None
        try:
            _, raw = token_create(
                user=user,
                name=options["name"],
                select_group=_group(options["group"]),
                fallback_groups=[_group(n) for n in options["fallback"]],
                billing_mode=options["billing_mode"],
                quota_micro=quota,
            )
        except ValidationError as exc:
            raise CommandError(_messages(exc)) from None
        self.stdout.write(raw)
