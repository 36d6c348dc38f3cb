"""Probe a channel, or every channel of a token group, now and print each verdict."""

from django.core.management.base import BaseCommand, CommandError

from groups.models import Channel, TokenGroup
from groups.probes import channel_probe


class Command(BaseCommand):
    help = "Probe CHANNEL_OR_GROUP now (a channel name, or a token group's name for all its channels)."

    def add_arguments(self, parser):
        parser.add_argument("target", metavar="CHANNEL_OR_GROUP")

    def handle(self, *args, target: str, **options):
        channels = list(Channel.objects.filter(name=target))
        if not channels:
            group = TokenGroup.objects.filter(name=target).first()
            if group is None:
                raise CommandError(f"No channel or token group named {target!r}.")
            channels = list(group.channels.order_by("-priority", "name"))
            if not channels:
                raise CommandError(f"Token group {target!r} has no channels.")
        for channel in channels:
            outcome = channel_probe(channel_id=channel.pk)
            result = outcome.result
            parts = [f"{channel.name}: {result.verdict}"]
            if outcome.routing != result.verdict:
                parts.append(f"(routing stays {outcome.routing})")
            if result.status_code is not None:
                parts.append(f"HTTP {result.status_code}")
            if result.latency_ms is not None:
                parts.append(f"{result.latency_ms} ms")
            if result.retry_after_s is not None:
                parts.append(f"Retry-After {result.retry_after_s:g}s")
            if result.error:
                parts.append(f"— {result.error}")
            self.stdout.write(" ".join(parts))
