import uuid
from decimal import Decimal, InvalidOperation

from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from billing.ledger import BillingError
from billing.models import Wallet
from billing.services import wallet_recharge
from core.pricing import cny_to_micro, format_cny


class Command(BaseCommand):
    help = "Credit a recharge (with its bonus tier) to a user's wallet; prints the new balance."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("amount_cny")

    def handle(self, *args, **options):
        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"unknown user {options['username']!r}")
        try:
            amount = Decimal(options["amount_cny"])
        except InvalidOperation:
            raise CommandError(f"amount {options['amount_cny']!r} is not a number") from None
        if not amount.is_finite() or amount <= 0:
            raise CommandError("amount must be a positive number of yuan")
        try:
            wallet_recharge(
                user=user, amount_micro=cny_to_micro(amount), payment_ref=f"cli-{uuid.uuid4().hex}"
            )
        except BillingError as exc:
            raise CommandError(str(exc)) from None
        self.stdout.write(format_cny(Wallet.objects.get(user=user).balance_micro))
