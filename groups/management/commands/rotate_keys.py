"""Re-encrypt every stored upstream key under the newest FERNET_KEYS key."""

from cryptography.fernet import InvalidToken
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from groups.crypto import rotate_secret, secret_is_current
from groups.models import Channel


class Command(BaseCommand):
    help = (
        "Re-encrypt every channel's upstream key under the newest FERNET_KEYS key (idempotent). "
        "Prints counts and channel names, never a key."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "--check",
            action="store_true",
            help="Change nothing; exit 1 if any key is not yet under the newest key.",
        )

    def handle(self, *args, **options):
        check = options["check"]
        rotated = current = unreadable = 0
        for pk in Channel.objects.exclude(api_key_encrypted="").order_by("pk").values_list("pk", flat=True):
            with transaction.atomic():
                row = (
                    Channel.objects.select_for_update()
                    .filter(pk=pk)
                    .values_list("name", "api_key_encrypted")
                    .first()
                )
                if row is None or not row[1]:
                    continue
                name, token = row
                if secret_is_current(token):
                    current += 1
                    continue
                try:
                    fresh = rotate_secret(token)
                except InvalidToken:
                    unreadable += 1
                    self.stderr.write(f"channel {name!r}: no configured FERNET_KEYS key decrypts its key")
                    continue
                rotated += 1
                if not check:
                    # A plain UPDATE: the plaintext is unchanged, so routing snapshots stay valid.
                    Channel.objects.filter(pk=pk).update(api_key_encrypted=fresh)
        verb = "to rotate" if check else "rotated"
        self.stdout.write(f"{verb}: {rotated}, already current: {current}, unreadable: {unreadable}")
        if unreadable:
            raise CommandError(f"{unreadable} key(s) could not be decrypted; add the old key to FERNET_KEYS")
        if check and rotated:
            raise CommandError(f"{rotated} key(s) are not under the newest key; run rotate_keys")
