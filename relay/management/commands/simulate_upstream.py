"""Serve the simulated upstream providers (see relay/simulator)."""

import os

from django.core.management.base import BaseCommand

from relay.simulator.__main__ import serve


class Command(BaseCommand):
    help = "Serve simulated OpenAI/Anthropic upstreams under /u/<name>/v1 with run-time fault control."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=int(os.environ.get("SIM_PORT", "8100")))

    def handle(self, *args, host, port, **options):
        serve(host, port)
