"""The simulated upstreams speak the real OpenAI and Anthropic APIs, as the official SDKs see them,
and obey the run-time fault rules of /_sim/config."""

import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import anthropic
import openai
import pytest
import requests

WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "parameters": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["c", "f"]}},
        "required": ["city", "unit"],
    },
}
CLAUDE_WEATHER = {
    "name": "get_weather",
    "description": "Current weather for a city",
    "input_schema": WEATHER["parameters"],
}
HELLO = [{"role": "user", "content": "hello there, simulator"}]


def oa(sim, upstream="openai-official", key=None, **kw):
    key = key or f"sim-{upstream}-key"
    return openai.OpenAI(base_url=sim.base_url(upstream), api_key=key, max_retries=0, **kw)


def an(sim, upstream="claude-official", key=None, **kw):
    key = key or f"sim-{upstream}-key"
    return anthropic.Anthropic(base_url=f"{sim.url}/u/{upstream}", api_key=key, max_retries=0, **kw)


def tokens(text):
    return (len(text) + 3) // 4


def sse_events(resp):
    """(event name, data text) pairs of a raw SSE response."""
    events, name = [], None
    for line in resp.iter_lines(decode_unicode=True):
        if line.startswith("event: "):
            name = line[7:]
        elif line.startswith("data: "):
            events.append((name, line[6:]))
            name = None
    return events


def test_fixture_sets_sim_port_before_demo(demo, simulator):
    from groups.models import Channel

    assert os.environ["SIM_PORT"] == str(simulator.port)
    assert Channel.objects.get(name="claude-aws").base_url == simulator.base_url("claude-aws")


# ---- OpenAI format ----------------------------------------------------------------------------


def test_chat_completion_shape_and_usage(simulator):
    prompt = "Say something about token groups and fallback groups."
    r = oa(simulator).chat.completions.create(
        model="gpt-5.1",
        messages=[{"role": "system", "content": "Be brief."}, {"role": "user", "content": prompt}],
    )
    assert r.object == "chat.completion" and r.id.startswith("chatcmpl-") and r.model == "gpt-5.1"
    choice = r.choices[0]
    assert choice.finish_reason == "stop" and choice.message.role == "assistant"
    assert prompt in choice.message.content and "openai-official" in choice.message.content
    assert r.usage.prompt_tokens == tokens("Be brief.") + tokens(prompt)
    assert r.usage.completion_tokens == tokens(choice.message.content)
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens
    assert r.usage.prompt_tokens_details.cached_tokens == 0


def test_chat_honours_max_tokens_and_output_tokens(simulator):
    simulator.configure(upstream="domestic", output_tokens=300)
    client = oa(simulator, "domestic")
    full = client.chat.completions.create(model="glm-5.1", messages=HELLO)
    assert full.usage.completion_tokens == 300 and full.choices[0].finish_reason == "stop"
    cut = client.chat.completions.create(model="glm-5.1", messages=HELLO, max_completion_tokens=20)
    assert cut.usage.completion_tokens == 20 and cut.choices[0].finish_reason == "length"
    assert full.choices[0].message.content.startswith(cut.choices[0].message.content)


def test_chat_stream_matches_non_stream_and_reports_usage(simulator):
    client = oa(simulator)
    plain = client.chat.completions.create(model="gpt-5.1", messages=HELLO)
    chunks = list(
        client.chat.completions.create(
            model="gpt-5.1", messages=HELLO, stream=True, stream_options={"include_usage": True}
        )
    )
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == plain.choices[0].message.content
    assert len(chunks) > 4
    assert chunks[0].choices[0].delta.role == "assistant"
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    last = chunks[-1]
    assert last.choices == [] and last.usage.completion_tokens == plain.usage.completion_tokens
    assert all(c.usage is None for c in chunks[:-1])


def test_chat_stream_without_include_usage_has_no_usage_chunk(simulator):
    resp = requests.post(
        simulator.base_url("openai-official") + "/chat/completions",
        headers={"Authorization": "Bearer sim-openai-official-key"},
        json={"model": "gpt-5.1", "messages": HELLO, "stream": True},
        stream=True,
        timeout=10,
    )
    assert resp.headers["content-type"].startswith("text/event-stream")
    data = [d for _, d in sse_events(resp)]
    assert data[-1] == "[DONE]"
    assert all("usage" not in json.loads(d) for d in data[:-1])


def test_chat_tools_non_stream_then_tool_result(simulator):
    client = oa(simulator)
    tools = [{"type": "function", "function": WEATHER}]
    messages = [{"role": "user", "content": "Weather in Paris?"}]
    r = client.chat.completions.create(model="gpt-5.1", messages=messages, tools=tools)
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    call = choice.message.tool_calls[0]
    assert call.id.startswith("call_") and call.function.name == "get_weather"
    args = json.loads(call.function.arguments)
    assert set(args) == {"city", "unit"} and args["unit"] == "c"
    messages += [
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": '{"temp": 21}'},
    ]
    follow = client.chat.completions.create(model="gpt-5.1", messages=messages, tools=tools)
    assert follow.choices[0].finish_reason == "stop" and '{"temp": 21}' in follow.choices[0].message.content


def test_chat_tools_stream_deltas(simulator):
    client = oa(simulator)
    with client.chat.completions.stream(
        model="gpt-5.1",
        messages=[{"role": "user", "content": "Weather in Paris?"}],
        tools=[{"type": "function", "function": WEATHER}],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
        stream_options={"include_usage": True},
    ) as stream:
        deltas = [e for e in stream if e.type == "tool_calls.function.arguments.delta"]
        final = stream.get_final_completion()
    assert len(deltas) > 1
    choice = final.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert json.loads(choice.message.tool_calls[0].function.arguments)["unit"] == "c"
    assert final.usage.completion_tokens > 0


def test_chat_repeated_long_prefix_reports_cached_tokens(simulator):
    client = oa(simulator)
    system = {"role": "system", "content": "You are a careful assistant. " * 200}
    first = client.chat.completions.create(model="gpt-5.1", messages=[system, HELLO[0]])
    second = client.chat.completions.create(
        model="gpt-5.1", messages=[system, {"role": "user", "content": "another question"}]
    )
    assert first.usage.prompt_tokens_details.cached_tokens == 0
    cached = second.usage.prompt_tokens_details.cached_tokens
    prefix = tokens(system["content"])
    assert cached == prefix // 128 * 128 and 0 < cached <= second.usage.prompt_tokens


def test_embeddings_are_deterministic(simulator):
    client = oa(simulator)
    r = client.embeddings.create(model="text-embedding-3-small", input=["alpha", "beta", "alpha"])
    vectors = [d.embedding for d in r.data]
    assert [d.index for d in r.data] == [0, 1, 2] and len(vectors[0]) == 1536
    assert vectors[0] == vectors[2] and vectors[0] != vectors[1]
    assert abs(sum(v * v for v in vectors[0]) - 1) < 1e-3
    assert r.usage.prompt_tokens == 3 * tokens("alpha") - tokens("alpha") + tokens("beta")
    floats = client.embeddings.create(
        model="text-embedding-3-small", input="alpha", encoding_format="float", dimensions=8
    )
    assert len(floats.data[0].embedding) == 8


def test_images_b64_and_url(simulator):
    client = oa(simulator)
    r = client.images.generate(model="nano-banana-pro", prompt="a cat", n=2, response_format="b64_json")
    assert len(r.data) == 2
    assert base64.b64decode(r.data[0].b64_json).startswith(b"\x89PNG\r\n\x1a\n")
    url = client.images.generate(model="nano-banana-pro", prompt="a cat").data[0].url
    fetched = requests.get(url, timeout=10)
    assert fetched.headers["content-type"] == "image/png" and fetched.content.startswith(b"\x89PNG")


def test_models_list_in_both_shapes(simulator):
    assert "gpt-5.1" in {m.id for m in oa(simulator).models.list()}
    models = list(an(simulator).models.list())
    assert "claude-sonnet-4-5" in {m.id for m in models} and models[0].type == "model"


# ---- Anthropic format -------------------------------------------------------------------------


def test_messages_shape_usage_and_system_blocks(simulator):
    system = [{"type": "text", "text": "You are terse."}, {"type": "text", "text": "Answer in English."}]
    m = an(simulator).messages.create(
        model="claude-sonnet-4-5", max_tokens=200, system=system, messages=HELLO
    )
    assert m.type == "message" and m.id.startswith("msg_") and m.role == "assistant"
    assert m.stop_reason == "end_turn" and m.content[0].type == "text"
    assert HELLO[0]["content"] in m.content[0].text
    expected = tokens("You are terse.") + tokens("Answer in English.") + tokens(HELLO[0]["content"])
    assert m.usage.input_tokens == expected
    assert m.usage.output_tokens == tokens(m.content[0].text)
    assert m.usage.cache_read_input_tokens == 0 and m.usage.cache_creation_input_tokens == 0


def test_messages_max_tokens_and_stop_sequences(simulator):
    client = an(simulator)
    short = client.messages.create(model="claude-sonnet-4-5", max_tokens=3, messages=HELLO)
    assert short.stop_reason == "max_tokens" and short.usage.output_tokens == 3
    stopped = client.messages.create(
        model="claude-sonnet-4-5", max_tokens=100, messages=HELLO, stop_sequences=["You said"]
    )
    assert stopped.stop_reason == "stop_sequence" and stopped.stop_sequence == "You said"
    assert "You said" not in stopped.content[0].text


def test_messages_raw_sse_event_sequence(simulator):
    resp = requests.post(
        simulator.url + "/u/claude-aws/v1/messages",
        headers={"x-api-key": "sim-claude-aws-key", "anthropic-version": "2023-06-01"},
        json={"model": "claude-opus-4-6", "max_tokens": 100, "messages": HELLO, "stream": True},
        stream=True,
        timeout=10,
    )
    events = sse_events(resp)
    names = [n for n, _ in events]
    assert names[:3] == ["message_start", "content_block_start", "ping"]
    assert names[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(names[3:-3]) == {"content_block_delta"}
    for name, data in events:
        assert json.loads(data)["type"] == name
    delta = json.loads(events[-2][1])
    assert delta["delta"]["stop_reason"] == "end_turn" and delta["usage"]["output_tokens"] > 1


def test_messages_stream_helper_accumulates_final_message(simulator):
    client = an(simulator)
    plain = client.messages.create(model="claude-sonnet-4-5", max_tokens=100, messages=HELLO)
    with client.messages.stream(model="claude-sonnet-4-5", max_tokens=100, messages=HELLO) as stream:
        text = "".join(stream.text_stream)
        final = stream.get_final_message()
    assert text == plain.content[0].text == final.content[0].text
    assert final.usage.output_tokens == plain.usage.output_tokens
    assert final.usage.input_tokens == plain.usage.input_tokens
    assert final.stop_reason == "end_turn"


def test_messages_tools_and_thinking_streamed(simulator):
    client = an(simulator)
    with client.messages.stream(
        model="claude-opus-4-6",
        max_tokens=2000,
        thinking={"type": "enabled", "budget_tokens": 1024},
        tools=[CLAUDE_WEATHER],
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    ) as stream:
        kinds = {e.delta.type for e in stream if e.type == "content_block_delta"}
        final = stream.get_final_message()
    assert {"thinking_delta", "signature_delta", "text_delta", "input_json_delta"} <= kinds
    assert [b.type for b in final.content] == ["thinking", "text", "tool_use"]
    tool_use = final.content[2]
    assert tool_use.id.startswith("toolu_") and tool_use.input == {"city": "Weather in Paris?", "unit": "c"}
    assert final.stop_reason == "tool_use" and final.content[0].signature


def test_messages_tool_result_gets_text_answer(simulator):
    client = an(simulator)
    first = client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=500,
        tools=[CLAUDE_WEATHER],
        tool_choice={"type": "tool", "name": "get_weather"},
        messages=[{"role": "user", "content": "Weather in Paris?"}],
    )
    assert [b.type for b in first.content] == ["tool_use"]
    tool_use = first.content[0]
    follow = client.messages.create(
        model="claude-sonnet-4-5",
        max_tokens=500,
        tools=[CLAUDE_WEATHER],
        messages=[
            {"role": "user", "content": "Weather in Paris?"},
            {"role": "assistant", "content": [tool_use.model_dump()]},
            {
                "role": "user",
                "content": [{"type": "tool_result", "tool_use_id": tool_use.id, "content": "21C"}],
            },
        ],
    )
    assert follow.stop_reason == "end_turn" and "21C" in follow.content[0].text


def test_messages_prompt_caching_and_count_tokens(simulator):
    client = an(simulator)
    long_system = [
        {"type": "text", "text": "Project handbook. " * 300, "cache_control": {"type": "ephemeral"}}
    ]
    kwargs = dict(model="claude-sonnet-4-5", max_tokens=50, system=long_system, messages=HELLO)
    first = client.messages.create(**kwargs)
    second = client.messages.create(**kwargs)
    prefix = tokens(long_system[0]["text"])
    assert first.usage.cache_creation_input_tokens == prefix and first.usage.cache_read_input_tokens == 0
    assert second.usage.cache_read_input_tokens == prefix and second.usage.cache_creation_input_tokens == 0
    assert second.usage.input_tokens == tokens(HELLO[0]["content"])
    counted = client.messages.count_tokens(model="claude-sonnet-4-5", system=long_system, messages=HELLO)
    assert counted.input_tokens == prefix + tokens(HELLO[0]["content"])


def test_messages_validation_like_the_real_api(simulator):
    headers = {"x-api-key": "sim-claude-aws-key"}
    url = simulator.url + "/u/claude-aws/v1/messages"
    body = {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": HELLO}
    no_version = requests.post(url, headers=headers, json=body, timeout=10)
    assert no_version.status_code == 400
    assert no_version.json()["error"]["type"] == "invalid_request_error"
    versioned = {**headers, "anthropic-version": "2023-06-01"}
    no_max = requests.post(url, headers=versioned, json={**body, "max_tokens": None}, timeout=10)
    assert no_max.status_code == 400 and no_max.json()["error"]["message"] == "max_tokens: Field required"
    bad_json = requests.post(
        url, headers={**headers, "anthropic-version": "2023-06-01"}, data="{", timeout=10
    )
    assert bad_json.status_code == 400


# ---- auth and injected errors -----------------------------------------------------------------


def test_wrong_or_missing_key_is_401_in_provider_format(simulator):
    with pytest.raises(openai.AuthenticationError) as exc:
        oa(simulator, key="sk-wrong-key-1234").chat.completions.create(model="gpt-5.1", messages=HELLO)
    assert exc.value.body["code"] == "invalid_api_key"
    with pytest.raises(anthropic.AuthenticationError) as exc:
        an(simulator, key="sim-claude-aws-key").messages.create(
            model="claude-sonnet-4-5", max_tokens=10, messages=HELLO
        )
    assert exc.value.body["error"]["type"] == "authentication_error"
    missing = requests.post(simulator.base_url("domestic") + "/chat/completions", json={}, timeout=10)
    assert missing.status_code == 401 and missing.json()["error"]["type"] == "invalid_request_error"
    simulator.configure(upstream="domestic", error="401")
    with pytest.raises(openai.AuthenticationError):
        oa(simulator, "domestic").chat.completions.create(model="glm-5.1", messages=HELLO)


def test_injected_429_with_and_without_retry_after(simulator):
    simulator.configure(upstream="claude-aws", error="429", retry_after_s=7)
    with pytest.raises(anthropic.RateLimitError) as exc:
        an(simulator, "claude-aws").messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=HELLO)
    assert exc.value.response.headers["retry-after"] == "7"
    assert exc.value.body["error"]["type"] == "rate_limit_error"
    simulator.configure(upstream="openai-official", error="429")
    with pytest.raises(openai.RateLimitError) as exc:
        oa(simulator).chat.completions.create(model="gpt-5.1", messages=HELLO)
    assert "retry-after" not in exc.value.response.headers
    assert exc.value.body["code"] == "rate_limit_exceeded"


def test_injected_server_errors(simulator):
    simulator.configure(upstream="claude-aws", error="503")
    with pytest.raises(anthropic.InternalServerError) as exc:
        an(simulator, "claude-aws").messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=HELLO)
    assert exc.value.status_code == 503 and exc.value.body["error"]["type"] == "overloaded_error"
    simulator.configure(upstream="openai-official", error="500")
    with pytest.raises(openai.InternalServerError) as exc:
        oa(simulator).chat.completions.create(model="gpt-5.1", messages=HELLO)
    assert exc.value.status_code == 500 and exc.value.body["type"] == "server_error"


def test_reset_drops_the_connection(simulator):
    simulator.configure(upstream="openai-official", error="reset")
    with pytest.raises(openai.APIConnectionError):
        oa(simulator).chat.completions.create(model="gpt-5.1", messages=HELLO)
    assert simulator.stats()["openai-official"]["status"] == {"reset": 1}


def test_garbage_bodies_fail_to_parse(simulator):
    simulator.configure(upstream="*", error="garbage")
    with pytest.raises(json.JSONDecodeError):
        oa(simulator).chat.completions.create(model="gpt-5.1", messages=HELLO)
    with pytest.raises(json.JSONDecodeError):
        list(oa(simulator).chat.completions.create(model="gpt-5.1", messages=HELLO, stream=True))
    with pytest.raises(json.JSONDecodeError):
        an(simulator).messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=HELLO)
    with (
        pytest.raises(json.JSONDecodeError),
        an(simulator).messages.stream(model="claude-sonnet-4-5", max_tokens=10, messages=HELLO) as stream,
    ):
        list(stream)


def test_cut_stream_ends_without_terminator(simulator):
    simulator.configure(upstream="*", error="cut_stream", output_tokens=200)
    received = []
    with pytest.raises(openai.APIConnectionError):
        for chunk in oa(simulator).chat.completions.create(model="gpt-5.1", messages=HELLO, stream=True):
            received.append(chunk)
    assert len(received) > 3
    names = []
    with pytest.raises(Exception, match="incomplete chunked read"):
        for event in an(simulator, "claude-aws").messages.create(
            model="claude-sonnet-4-5", max_tokens=1000, messages=HELLO, stream=True
        ):
            names.append(event.type)
    assert "content_block_delta" in names and "message_stop" not in names
    with pytest.raises(openai.APIConnectionError):
        oa(simulator).chat.completions.create(model="gpt-5.1", messages=HELLO)
    assert simulator.stats()["openai-official"]["status"] == {"cut": 2}


def test_stream_error_event_after_first_bytes(simulator):
    simulator.configure(error="stream_error", output_tokens=100)
    received = []
    with pytest.raises(openai.APIError, match="The server had an error"):
        for chunk in oa(simulator).chat.completions.create(model="gpt-5.1", messages=HELLO, stream=True):
            received.append(chunk)
    assert received and received[0].choices[0].delta.role == "assistant"
    events = []
    with pytest.raises(anthropic.APIStatusError) as exc:
        for event in an(simulator).messages.create(
            model="claude-sonnet-4-5", max_tokens=1000, messages=HELLO, stream=True
        ):
            events.append(event.type)
    assert exc.value.body["error"]["type"] == "overloaded_error"
    assert "content_block_delta" in events and "message_stop" not in events
    stats = simulator.stats()
    assert stats["openai-official"]["status"] == stats["claude-official"]["status"] == {"stream_error": 1}
    assert oa(simulator).chat.completions.create(model="gpt-5.1", messages=HELLO).choices[0].message.content


def test_latency_delays_the_first_byte(simulator):
    simulator.configure(upstream="openai-official", latency_ms=3000)
    with pytest.raises(openai.APITimeoutError):
        oa(simulator, timeout=0.2).chat.completions.create(model="gpt-5.1", messages=HELLO)
    assert oa(simulator, "domestic").chat.completions.create(model="glm-5.1", messages=HELLO).choices


# ---- concurrency, config precedence, stats ----------------------------------------------------


def wait_for(predicate, timeout=10):
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not reached"
        time.sleep(0.02)


def test_max_concurrency_refuses_excess_with_retry_after(simulator):
    simulator.configure(upstream="claude-official", max_concurrency=2, latency_ms=2000, retry_after_s=4)
    client = an(simulator)
    results = []

    def slow_call():
        results.append(client.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=HELLO))

    threads = [threading.Thread(target=slow_call) for _ in range(2)]
    for t in threads:
        t.start()
    wait_for(lambda: simulator.stats().get("claude-official", {}).get("in_flight") == 2)
    with pytest.raises(anthropic.RateLimitError) as exc:
        client.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=HELLO)
    assert exc.value.response.headers["retry-after"] == "4"
    # another upstream is not limited by claude-official's rule
    assert an(simulator, "claude-aws").messages.create(
        model="claude-sonnet-4-5", max_tokens=10, messages=HELLO
    )
    for t in threads:
        t.join()
    assert len(results) == 2
    stats = simulator.stats()["claude-official"]
    assert stats["max_in_flight"] == 2 and stats["in_flight"] == 0
    assert stats["status"] == {"200": 2, "429": 1}


def test_model_scoped_concurrency_counts_only_that_model(simulator):
    simulator.configure(upstream="domestic", model="glm-5.1", max_concurrency=1, latency_ms=2000)
    client = oa(simulator, "domestic")
    thread = threading.Thread(target=lambda: client.chat.completions.create(model="glm-5.1", messages=HELLO))
    thread.start()
    wait_for(lambda: simulator.stats().get("domestic", {}).get("in_flight") == 1)
    with pytest.raises(openai.RateLimitError) as exc:
        client.chat.completions.create(model="glm-5.1", messages=HELLO)
    assert exc.value.response.headers["retry-after"] == "1"
    assert client.chat.completions.create(model="deepseek-v4", messages=HELLO).choices
    thread.join()


def test_most_specific_rule_wins(simulator):
    simulator.configure(error="500")
    simulator.configure(model="gpt-5.1", error="503")
    simulator.configure(upstream="openai-official", error="429")
    simulator.configure(upstream="openai-official", model="gpt-5.1")

    def status(upstream, model):
        try:
            oa(simulator, upstream).chat.completions.create(model=model, messages=HELLO)
        except openai.APIStatusError as exc:
            return exc.status_code
        return 200

    assert status("openai-official", "gpt-5.1") == 200
    assert status("openai-official", "gpt-4o-mini") == 429
    assert status("domestic", "gpt-5.1") == 503
    assert status("domestic", "glm-5.1") == 500
    rules = {(r["upstream"], r["model"]): r["error"] for r in simulator.rules()}
    assert rules == {
        ("*", "*"): "500",
        ("*", "gpt-5.1"): "503",
        ("openai-official", "*"): "429",
        ("openai-official", "gpt-5.1"): None,
    }
    simulator.reset()
    assert simulator.rules() == [] and status("domestic", "glm-5.1") == 200


@pytest.mark.parametrize(
    "rule, message",
    [
        ({"error": "teapot"}, "error must be one of"),
        ({"latency_ms": -1}, "latency_ms must be a non-negative integer"),
        ({"max_concurrency": "2"}, "max_concurrency must be"),
        ({"upstream": ""}, "upstream must be"),
        ({"colour": "red"}, "unknown config fields: colour"),
    ],
)
def test_bad_config_is_refused_clearly(simulator, rule, message):
    with pytest.raises(ValueError, match=message):
        simulator.configure(**rule)
    assert simulator.rules() == []


def test_stats_prove_which_upstreams_were_called(simulator):
    oa(simulator, "domestic").chat.completions.create(model="glm-5.1", messages=HELLO)
    with pytest.raises(openai.AuthenticationError):
        oa(simulator, "domestic", key="nope").chat.completions.create(model="glm-5.1", messages=HELLO)
    stats = simulator.stats()
    assert set(stats) == {"domestic"}
    assert stats["domestic"]["requests"] == 2
    assert stats["domestic"]["status"] == {"200": 1, "401": 1}
    assert stats["domestic"]["models"] == {"glm-5.1": 1}
    simulator.reset()
    assert simulator.stats() == {}


def test_journal_shows_what_an_upstream_received(simulator):
    system = [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}]
    an(simulator, "claude-aws").messages.create(
        model="claude-sonnet-4-5",
        max_tokens=10,
        system=system,
        messages=HELLO,
        extra_headers={"anthropic-beta": "prompt-caching-2024-07-31"},
        extra_query={"beta": "true"},
    )
    [seen] = simulator.requests("claude-aws")
    assert seen["method"] == "POST" and seen["path"] == "/u/claude-aws/v1/messages"
    assert seen["query"] == {"beta": "true"} and seen["status"] == "200"
    assert seen["headers"]["anthropic-beta"] == "prompt-caching-2024-07-31"
    assert seen["headers"]["anthropic-version"] and seen["headers"]["authorization"] == "<redacted>"
    assert seen["body"]["system"] == system
    assert simulator.requests("claude-official") == []


def test_unknown_path_is_404(simulator):
    resp = requests.get(simulator.base_url("x") + "/nothing", timeout=10)
    assert resp.status_code == 404 and resp.json()["error"]["message"] == "Invalid URL (GET /u/x/v1/nothing)"


# ---- video jobs -------------------------------------------------------------------------------


def test_video_job_lifecycle(simulator):
    simulator.configure(upstream="sora", video_ms=600)
    client = oa(simulator, "sora")
    job = client.videos.create(model="sora-2", prompt="a red fox", seconds="8", size="1280x720")
    assert job.object == "video" and job.status == "queued" and job.progress == 0
    assert job.seconds == "8" and job.size == "1280x720" and job.model == "sora-2"
    with pytest.raises(openai.BadRequestError, match="video_not_ready|completed"):
        client.videos.download_content(job.id)
    seen = set()

    def done():
        seen.add(client.videos.retrieve(job.id).status)
        return "completed" in seen

    wait_for(done)
    final = client.videos.retrieve(job.id)
    assert final.progress == 100 and final.completed_at >= final.created_at
    content = client.videos.download_content(job.id).read()
    assert content[4:8] == b"ftyp"
    with pytest.raises(openai.NotFoundError):
        oa(simulator, "wan").videos.retrieve(job.id)
    assert simulator.stats()["sora"]["models"]["sora-2"] >= 3


def test_video_json_submit_and_failure(simulator):
    simulator.configure(upstream="wan", error="video_failed", video_ms=0)
    resp = requests.post(
        simulator.base_url("wan") + "/videos",
        headers={"Authorization": "Bearer sim-wan-key"},
        json={"model": "wan-2.5", "prompt": "waves", "seconds": "5"},
        timeout=10,
    )
    assert resp.status_code == 200
    job = oa(simulator, "wan").videos.retrieve(resp.json()["id"])
    assert job.status == "failed" and job.error.code == "video_generation_failed"
    bad = requests.post(
        simulator.base_url("wan") + "/videos",
        headers={"Authorization": "Bearer sim-wan-key"},
        json={"model": "wan-2.5", "prompt": "waves", "seconds": "abc"},
        timeout=10,
    )
    assert bad.status_code == 400 and bad.json()["error"]["param"] == "seconds"


# ---- standalone server ------------------------------------------------------------------------


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.live
@pytest.mark.parametrize(
    "argv",
    [["-m", "relay.simulator"], ["manage.py", "simulate_upstream"]],
    ids=["python-m", "manage-py"],
)
def test_standalone_server_serves_upstreams(argv):
    port = free_port()
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.Popen(
        [sys.executable, *argv, "--port", str(port)],
        cwd=root,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:

        def up():
            assert proc.poll() is None, proc.stderr.read().decode()
            try:
                return requests.get(f"http://127.0.0.1:{port}/_sim/health", timeout=1).ok
            except requests.ConnectionError:
                return False

        wait_for(up, timeout=120)
        client = openai.OpenAI(
            base_url=f"http://127.0.0.1:{port}/u/domestic/v1", api_key="sim-domestic-key", max_retries=0
        )
        assert client.chat.completions.create(model="glm-5.1", messages=HELLO).choices[0].message.content
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_client_disconnect_mid_stream_is_recorded(simulator):
    simulator.configure(upstream="claude-aws", output_tokens=4000, latency_ms=4000)
    resp = requests.post(
        simulator.url + "/u/claude-aws/v1/messages",
        headers={"x-api-key": "sim-claude-aws-key", "anthropic-version": "2023-06-01"},
        json={"model": "claude-sonnet-4-5", "max_tokens": 8000, "messages": HELLO, "stream": True},
        stream=True,
        timeout=10,
    )
    lines = resp.iter_lines()
    assert next(lines) == b"event: message_start"
    resp.close()
    wait_for(lambda: simulator.stats()["claude-aws"]["status"] == {"499": 1})
    assert simulator.stats()["claude-aws"]["in_flight"] == 0


@pytest.mark.parametrize(
    "path, body",
    [
        ("chat/completions", {"model": "m", "messages": "hi"}),
        (
            "chat/completions",
            {"model": "m", "messages": [{"role": "user", "tool_calls": [{"function": "x"}]}]},
        ),
        ("chat/completions", {"model": "m", "messages": HELLO, "stream": True, "stream_options": "yes"}),
        (
            "chat/completions",
            {"model": "m", "messages": HELLO, "tools": [{"type": "function", "function": "x"}]},
        ),
        ("chat/completions", {"messages": HELLO}),
        ("embeddings", {"model": "m", "input": 5}),
        ("images/generations", {"model": "m", "prompt": "cat", "n": "2"}),
        ("messages", {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": [1]}]}),
        ("messages", {"model": "m", "max_tokens": 10, "messages": HELLO, "stop_sequences": [1]}),
        ("messages", {"model": "m", "max_tokens": 10, "messages": [{"role": "robot", "content": "x"}]}),
        ("messages/count_tokens", {"model": "m", "messages": [], "system": 3}),
    ],
)
def test_malformed_bodies_get_400_in_provider_format(simulator, path, body):
    headers = {"Authorization": "Bearer sim-up-key", "anthropic-version": "2023-06-01"}
    resp = requests.post(simulator.base_url("up") + "/" + path, headers=headers, json=body, timeout=10)
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["type"] == "invalid_request_error" and error["message"]
    if path.startswith("messages"):
        assert resp.json()["type"] == "error"


def test_stop_leaves_no_request_pending():
    """A slow answer whose client already left is cancelled at stop, not destroyed pending."""
    from relay.simulator.testing import start_in_thread

    sim = start_in_thread()
    sim.configure(upstream="openai-official", latency_ms=60_000)
    with pytest.raises(openai.APITimeoutError):
        oa(sim, timeout=0.3).chat.completions.create(model="gpt-4o-mini", messages=HELLO)
    sim.stop()
    assert sim.pending_tasks() == set()
