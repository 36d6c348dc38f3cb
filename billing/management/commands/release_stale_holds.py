"""Run the hold sweeper now (beat runs it every five minutes)."""

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from billing.sweeper import holds_release_stale


class Command(BaseCommand):
    help = "Release wallet holds that no settlement released in time (their relay process died)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--older-than",
            type=int,
            default=settings.BILLING_HOLD_STALE_AFTER_S,
            help="seconds (default BILLING_HOLD_STALE_AFTER_S); never below RELAY_MAX_CALL_SECONDS",
        )

    def handle(self, *args, **options):
        older_than = options["older_than"]
        if older_than < settings.RELAY_MAX_CALL_SECONDS:
            raise CommandError(
                f"--older-than must be at least RELAY_MAX_CALL_SECONDS ({settings.RELAY_MAX_CALL_SECONDS}): "
                "a younger hold may belong to a call still in flight"
            )
        released = holds_release_stale(
            older_than_s=older_than, video_older_than_s=settings.BILLING_VIDEO_HOLD_STALE_AFTER_S
        )
        self.stdout.write(f"released {released} abandoned hold(s)")
