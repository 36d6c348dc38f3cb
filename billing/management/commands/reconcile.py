from django.core.management.base import BaseCommand, CommandError

from billing.models import Wallet
from billing.selectors import wallets_out_of_balance
from core.pricing import format_cny


class Command(BaseCommand):
    help = "Prove every wallet balance equals the sum of its ledger; exit non-zero if not."

    def handle(self, *args, **options):
        mismatches = wallets_out_of_balance()
        for m in mismatches:
            self.stderr.write(
                f"wallet {m.wallet_id} ({m.username}): {m.field} is {format_cny(m.stored_micro)} "
                f"but the ledger says {format_cny(m.ledger_micro)}"
            )
        if mismatches:
            raise CommandError(f"{len(mismatches)} wallet figure(s) out of balance")
        self.stdout.write(f"{Wallet.objects.count()} wallets reconcile with their ledgers")
