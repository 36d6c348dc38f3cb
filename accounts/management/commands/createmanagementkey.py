from django.core.management.base import BaseCommand, CommandError

from accounts.models import User
from accounts.services import management_key_create


class Command(BaseCommand):
    help = "Create an mk- management API key for a user; prints only the new key on stdout."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="cli")
        parser.add_argument("--read-only", action="store_true", help="the key may only read")

    def handle(self, *args, **options):
        user = User.objects.filter(username=options["username"]).first()
        if user is None:
            raise CommandError(f"unknown user {options['username']!r}")
        if not user.is_active:
            raise CommandError(f"user {user.username!r} is not active")
        _, raw = management_key_create(user=user, name=options["name"], read_only=options["read_only"])
        self.stdout.write(raw)
