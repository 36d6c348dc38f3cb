"""POST /v1/audio/speech and /v1/audio/transcriptions through the live relay, official openai SDK."""

from decimal import ROUND_HALF_UP, Decimal

import openai
import pytest
import requests

from apiyi_admin.demo import MODELS, USD_CNY_RATE
from billing.models import UsageRecord

pytestmark = [pytest.mark.live]

AUDIO = b"RIFF\x24\x00\x00\x00WAVEfmt " + bytes(64)


def _per_call(model: str) -> int:
    cny = MODELS[model][2]["usd_per_call"] * USD_CNY_RATE
    return int((cny * 1_000_000).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def test_speech_returns_the_audio_bytes_and_bills_one_call(live, reconciled):
    client = live.openai(key=live.make_key(select="Default"))
    raw = client.audio.speech.with_raw_response.create(model="tts-1", input="hello world", voice="alloy")
    assert raw.headers["content-type"] == "audio/mpeg"
    audio = raw.parse().content
    assert audio.startswith(b"ID3") and b"alloy:hello world" in audio
    rec = live.settled(raw.headers["x-request-id"])
    assert (rec.status, rec.billing_basis, rec.channel_name) == ("success", "call", "openai-official")
    assert rec.cost_micro == _per_call("tts-1") == 105_000  # $0.015 × 7
    sent = live.sim.requests("openai-official")[-1]
    assert sent["path"].endswith("/v1/audio/speech") and sent["body"]["input"] == "hello world"


def test_transcription_forwards_the_file_and_bills_one_call(live, reconciled):
    client = live.openai(key=live.make_key(select="Default"))
    raw = client.audio.transcriptions.with_raw_response.create(
        model="whisper-1", file=("clip.wav", AUDIO, "audio/wav"), language="en"
    )
    text = raw.parse().text
    assert text == f"Transcript of clip.wav ({len(AUDIO)} bytes) from openai-official."
    rec = live.settled(raw.headers["x-request-id"])
    assert (rec.status, rec.billing_basis, rec.channel_name) == ("success", "call", "openai-official")
    assert rec.cost_micro == _per_call("whisper-1") == 42_000  # $0.006 × 7
    sent = live.sim.requests("openai-official")[-1]
    assert sent["path"].endswith("/v1/audio/transcriptions") and sent["body"]["language"] == "en"
    assert sent["body"]["file"]["head"] == AUDIO[:16].hex()


def test_audio_missing_fields_and_unknown_model(live, reconciled):
    key = live.make_key(select="Default")
    client = live.openai(key=key)
    with pytest.raises(openai.BadRequestError) as no_voice:
        client.audio.speech.create(model="tts-1", input="hi", voice="")
    assert no_voice.value.body["param"] == "voice"
    with pytest.raises(openai.BadRequestError) as no_input:
        client.audio.speech.create(model="tts-1", input="", voice="alloy")
    assert no_input.value.body["param"] == "input"
    with pytest.raises(openai.NotFoundError):
        client.audio.speech.create(model="no-such-tts", input="hi", voice="alloy")
    no_file = requests.post(
        f"{live.url}/v1/audio/transcriptions",
        headers={"Authorization": f"Bearer {key}"},
        data={"model": "whisper-1"},
        timeout=30,
    )
    assert no_file.status_code == 400 and no_file.json()["error"]["param"] == "file"
    with pytest.raises(openai.BadRequestError) as no_model:
        client.audio.transcriptions.create(model="", file=("clip.wav", AUDIO, "audio/wav"))
    assert no_model.value.body["param"] == "model"
    with pytest.raises(openai.BadRequestError) as text_format:
        client.audio.transcriptions.create(
            model="whisper-1", file=("clip.wav", AUDIO, "audio/wav"), response_format="diarized_json"
        )
    assert text_format.value.body["param"] == "response_format"
    with pytest.raises(openai.NotFoundError):
        client.audio.transcriptions.create(model="no-such-whisper", file=("clip.wav", AUDIO, "audio/wav"))
    assert not UsageRecord.objects.filter(status="success").exists()
