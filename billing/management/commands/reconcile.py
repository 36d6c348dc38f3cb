from django.core.management.base import BaseCommand, CommandError

from billing.models import Wallet
from billing.selectors import wallets_out_of_balance
from billing.spool import spool_dir, spool_summary
from core.pricing import format_cny


class Command(BaseCommand):
    help = (
        "Prove every wallet balance equals the sum of its ledger and no settlement waits in the "
        "spool; exit non-zero if not."
    )

    def handle(self, *args, **options):
        mismatches = wallets_out_of_balance()
        for m in mismatches:
            self.stderr.write(
                f"wallet {m.wallet_id} ({m.username}): {m.field} is {format_cny(m.stored_micro)} "
                f"but the ledger says {format_cny(m.ledger_micro)}"
            )
        spooled = spool_summary()
        if spooled.entries:
            self.stderr.write(
                f"{spooled.entries} settlement(s) still spooled in {spool_dir()}: "
                f"¥{format_cny(spooled.total_micro)} in all, "
                f"oldest spooled {spooled.oldest:%Y-%m-%d %H:%M:%S} UTC "
                "(replayed once the database answers; `manage.py replay_spool` does it now)"
            )
        if spooled.corrupt:
            self.stderr.write(
                f"{spooled.corrupt} spool line(s) that are no settlement were set aside in {spool_dir()} "
                "(*.corrupt): a write cut by a crash, or damage; read them"
            )
        if mismatches:
            raise CommandError(f"{len(mismatches)} wallet figure(s) out of balance")
        if spooled.entries:
            raise CommandError(f"{spooled.entries} settlement(s) still spooled")
        self.stdout.write(f"{Wallet.objects.count()} wallets reconcile with their ledgers")
