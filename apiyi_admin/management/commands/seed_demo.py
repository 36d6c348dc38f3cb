from django.core.management.base import BaseCommand

from apiyi_admin.demo import seed_demo


class Command(BaseCommand):
    help = "Create or refresh the demo data from the groups guide (idempotent)."

    def handle(self, *args, **options):
        seed_demo()
        self.stdout.write("demo data ready: users admin/admin (operator) and demo/demo (vip)")
