"""Replay the settlement spool now (beat does every minute; each relay process does its own)."""

from django.core.management.base import BaseCommand, CommandError

from billing.spool import replay, spool_dir


class Command(BaseCommand):
    help = "Settle the settlements spooled while the database was unreachable (idempotent)."

    def handle(self, *args, **options):
        result = replay()
        self.stdout.write(
            f"{spool_dir()}: {result.settled} settled, {result.charged_after_release} charged after "
            f"their hold was released, {result.already} already settled, {result.waiting} waiting "
            f"for the database, {result.failed} failed, {result.corrupt} corrupt line(s) set aside"
        )
        if not result.reached:
            raise CommandError("the database is still unreachable; entries stay spooled")
        if result.failed:
            raise CommandError(
                f"{result.failed} spooled settlement(s) failed (see the log); they stay spooled"
            )
