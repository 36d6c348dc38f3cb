"""The simulated upstreams speak the real OpenAI and Anthropic APIs, as the official SDKs see them."""

import os

import anthropic
import openai
import pytest


def oa(sim, upstream="openai-official", key=None):
    return openai.OpenAI(base_url=sim.base_url(upstream), api_key=key or f"sim-{upstream}-key", max_retries=0)


def an(sim, upstream="claude-official", key=None):
    return anthropic.Anthropic(
        base_url=f"{sim.url}/u/{upstream}", api_key=key or f"sim-{upstream}-key", max_retries=0
    )


def test_fixture_sets_sim_port_before_demo(demo, simulator):
    from groups.models import Channel

    assert os.environ["SIM_PORT"] == str(simulator.port)
    channel = Channel.objects.get(name="claude-aws")
    assert channel.base_url == simulator.base_url("claude-aws")
