"""The official OpenAI SDK's Responses API (`client.responses`) against the live relay."""

from decimal import Decimal

import openai
import pytest

from apiyi_admin.demo import USD_CNY_RATE
from core.pricing import ModelPrice, Usage, price_call
from groups.models import Model

pytestmark = [pytest.mark.live]

WEATHER_TOOL = {
    "type": "function",
    "name": "get_weather",
    "description": "Weather for a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


def expected_cost(model: str, rec, multiplier: str) -> int:
    usage = Usage(
        input_tokens=rec.input_tokens,
        output_tokens=rec.output_tokens,
        cache_read_tokens=rec.cache_read_tokens,
        cache_write_tokens=rec.cache_write_tokens,
    )
    return price_call(
        ModelPrice.of(Model.objects.get(name=model)),
        usage,
        multiplier=Decimal(multiplier),
        usd_cny_rate=Decimal(USD_CNY_RATE),
        billing_mode="usage_first",
    ).cost_micro


@pytest.mark.parametrize(
    ("model", "channel", "multiplier"),
    [("gpt-5.1", "openai-official", "1.0"), ("claude-sonnet-4-5", "claude-official", "0.95")],
)
def test_non_stream_billed_as_chat(live, reconciled, model, channel, multiplier):
    raw = live.openai().responses.with_raw_response.create(
        model=model, input="hello there", instructions="Answer briefly.", max_output_tokens=64
    )
    response = raw.parse()
    assert response.id.startswith("resp_") and response.status == "completed"
    assert response.model == model and response.output_text
    assert response.usage.output_tokens > 0
    rec = live.record(raw.headers["x-request-id"])
    assert (rec.status, rec.endpoint, rec.model_name) == ("success", "/v1/responses", model)
    assert rec.channel_name == channel
    assert rec.output_tokens == response.usage.output_tokens
    assert rec.input_tokens + rec.cache_read_tokens + rec.cache_write_tokens == response.usage.input_tokens
    assert rec.cost_micro == expected_cost(model, rec, multiplier) > 0
    sent = live.sim.requests(channel)[-1]["body"]
    system = sent.get("system") or sent["messages"][0]["content"]
    assert "Answer briefly." in str(system)


def test_stream_events_end_with_completed_and_usage(live, reconciled):
    raw = live.openai().responses.with_raw_response.create(
        model="claude-sonnet-4-5", input=[{"role": "user", "content": "count to three"}], stream=True
    )
    events = list(raw.parse())
    types = [e.type for e in events]
    assert types[:2] == ["response.created", "response.in_progress"]
    assert types[-1] == "response.completed" and "response.output_text.delta" in types
    done = events[-1].response
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert text and done.output_text == text
    rec = live.settled(raw.headers["x-request-id"])
    assert (rec.status, rec.stream, rec.usage_estimated, rec.endpoint) == (
        "success",
        True,
        False,
        "/v1/responses",
    )
    assert rec.output_tokens == done.usage.output_tokens > 0
    assert rec.cost_micro == expected_cost("claude-sonnet-4-5", rec, "0.95")


@pytest.mark.parametrize("model", ["gpt-5.1", "claude-sonnet-4-5"])
def test_structured_output_and_effort_reach_either_upstream(live, reconciled, model):
    from pydantic import BaseModel

    class City(BaseModel):
        name: str
        population: int

    parsed = live.openai().responses.parse(
        model=model, input="a city, as JSON", text_format=City, reasoning={"effort": "low"}
    )
    assert isinstance(parsed.output_parsed, City)
    channel = "openai-official" if model == "gpt-5.1" else "claude-official"
    sent = live.sim.requests(channel)[-1]["body"]
    if model == "gpt-5.1":
        assert sent["response_format"]["json_schema"]["schema"]["required"] == ["name", "population"]
        assert sent["reasoning_effort"] == "low"
    else:
        assert sent["output_config"]["format"]["schema"]["required"] == ["name", "population"]
        assert sent["thinking"]["type"] == "enabled"


@pytest.mark.parametrize("model", ["gpt-5.1", "claude-sonnet-4-5"])
def test_cut_stream_ends_with_response_failed_and_is_billed_partial(live, reconciled, model):
    live.sim.configure(upstream="*", error="cut_stream", output_tokens=200)
    raw = live.openai().responses.with_raw_response.create(
        model=model, input="write a long story about relays", stream=True
    )
    events = list(raw.parse())
    assert events[-1].type == "response.failed" and events[-1].response.status == "failed"
    assert "response.completed" not in [e.type for e in events]
    assert any(e.type == "response.output_text.delta" for e in events)
    rec = live.settled(raw.headers["x-request-id"])
    assert (rec.status, rec.endpoint) == ("partial", "/v1/responses") and rec.cost_micro > 0
    with pytest.raises(openai.NotFoundError):  # a failed response is not stored
        live.openai().responses.retrieve(events[-1].response.id)


@pytest.mark.parametrize("stream", [False, True])
def test_function_calling_round_trip(live, reconciled, stream):
    client = live.openai()
    kwargs = {"model": "gpt-5.1", "tools": [WEATHER_TOOL], "tool_choice": "required"}
    question = [{"role": "user", "content": "weather in Paris?"}]
    if stream:
        events = list(client.responses.create(input=question, stream=True, **kwargs))
        assert "response.function_call_arguments.delta" in [e.type for e in events]
        first = events[-1].response
    else:
        first = client.responses.create(input=question, **kwargs)
    calls = [item for item in first.output if item.type == "function_call"]
    assert len(calls) == 1 and calls[0].name == "get_weather" and "city" in calls[0].arguments
    second = client.responses.create(
        model="gpt-5.1",
        tools=[WEATHER_TOOL],
        input=[
            *question,
            calls[0].model_dump(exclude_none=True),
            {"type": "function_call_output", "call_id": calls[0].call_id, "output": "sunny, 21 C"},
        ],
    )
    assert second.output_text
    sent = live.sim.requests("openai-official")[-1]["body"]["messages"]
    assert sent[-2]["tool_calls"][0]["id"] == calls[0].call_id
    assert sent[-1] == {"role": "tool", "tool_call_id": calls[0].call_id, "content": "sunny, 21 C"}


def test_previous_response_id_continues_the_stored_conversation(live, reconciled):
    client = live.openai()
    first = client.responses.create(model="gpt-5.1", input="my name is Ada", instructions="Be brief.")
    streamed = list(
        client.responses.create(
            model="gpt-5.1", input="what is my name?", previous_response_id=first.id, stream=True
        )
    )
    second = streamed[-1].response
    assert second.previous_response_id == first.id
    sent = live.sim.requests("openai-official")[-1]["body"]["messages"]
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[0]["content"] == "my name is Ada" and sent[1]["content"] == first.output_text
    # the streamed one was stored before its last event: a follow-up can continue at once
    third = client.responses.create(model="gpt-5.1", input="and again?", previous_response_id=second.id)
    assert third.output_text
    assert len(live.sim.requests("openai-official")[-1]["body"]["messages"]) == 5

    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.create(model="gpt-5.1", input="hi", previous_response_id="resp_unknown")
    assert exc.value.body["param"] == "previous_response_id"
    assert "resp_unknown" in exc.value.body["message"]


def test_store_false_is_not_kept(live):
    client = live.openai()
    response = client.responses.create(model="gpt-5.1", input="hi", store=False)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)
    with pytest.raises(openai.BadRequestError):
        client.responses.create(model="gpt-5.1", input="hi", previous_response_id=response.id)


def test_retrieve_and_delete_only_by_the_owner(live):
    client = live.openai()
    response = client.responses.create(model="gpt-5.1", input="remember this")
    got = client.responses.retrieve(response.id)
    assert (got.id, got.output_text, got.status) == (response.id, response.output_text, "completed")
    outsider = live.openai(key=live.make_key())
    with pytest.raises(openai.NotFoundError) as exc:
        outsider.responses.retrieve(response.id)
    assert exc.value.body["code"] == "not_found"
    with pytest.raises(openai.NotFoundError):
        outsider.responses.delete(response.id)
    with pytest.raises(openai.BadRequestError):
        outsider.responses.create(model="gpt-5.1", input="hi", previous_response_id=response.id)
    client.responses.delete(response.id)
    with pytest.raises(openai.NotFoundError):
        client.responses.retrieve(response.id)


def test_errors_in_openai_format(live, reconciled):
    client = live.openai()
    with pytest.raises(openai.NotFoundError) as exc:
        client.responses.create(model="no-such-model", input="hi")
    assert exc.value.body["code"] == "model_not_found"
    assert "ClaudeCode" in exc.value.body["message"]
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.create(model="gpt-5.1", input="hi", tools=[{"type": "web_search"}])
    assert "tools[0].type" in exc.value.body["message"]
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.create(model="gpt-5.1", input=[])
    assert "input" in exc.value.body["message"]
    with pytest.raises(openai.AuthenticationError):
        live.openai(key="sk-wrong").responses.create(model="gpt-5.1", input="hi")


def test_unknown_v1_paths_answer_json_in_the_callers_format(live):
    import requests

    openai_style = requests.post(
        f"{live.url}/v1/responses/abc/cancel/more", headers={"Authorization": f"Bearer {live.key}"}
    )
    assert openai_style.status_code == 404
    assert openai_style.headers["content-type"].startswith("application/json")
    assert openai_style.json()["error"]["code"] == "not_found"
    anthropic_style = requests.get(
        f"{live.url}/v1/nothing-here", headers={"x-api-key": live.key, "anthropic-version": "2023-06-01"}
    )
    assert anthropic_style.status_code == 404
    assert anthropic_style.json()["error"]["type"] == "not_found_error"
    unauthenticated = requests.get(f"{live.url}/v1/nothing-here")
    assert unauthenticated.headers["content-type"].startswith("application/json")
    assert unauthenticated.json()["error"]["type"] == "invalid_request_error"
