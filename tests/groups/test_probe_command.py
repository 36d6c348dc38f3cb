"""`manage.py probe CHANNEL_OR_GROUP`."""

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from groups.models import ChannelHealth


def _run(*args) -> str:
    out = StringIO()
    call_command("probe", *args, stdout=out)
    return out.getvalue()


def test_probe_one_channel(demo, simulator):
    simulator.configure(upstream="claude-aws", error="429", retry_after_s=4)
    out = _run("claude-aws")
    assert out.startswith("claude-aws: saturated HTTP 429") and "Retry-After 4s" in out
    assert ChannelHealth.objects.get().verdict == "saturated"


def test_probe_a_group_probes_each_of_its_channels(demo, simulator):
    lines = _run("ClaudeCode").splitlines()
    assert [line.split(":")[0] for line in lines] == ["claude-official", "claude-aws", "domestic"]
    assert all(": healthy HTTP 200" in line for line in lines)
    assert "sim-" not in "".join(lines)


@pytest.mark.django_db
def test_unknown_target_is_a_clear_error():
    with pytest.raises(CommandError, match="No channel or token group named 'nope'"):
        _run("nope")
