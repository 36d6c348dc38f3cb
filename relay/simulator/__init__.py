"""Simulated OpenAI-, Anthropic- and Gemini-format upstream providers (demo, tests, benchmarks).

Serve: `python manage.py simulate_upstream --port 8100` or `python -m relay.simulator --port 8100`
(no Django needed); in tests, the `simulator` fixture or `testing.start_in_thread(port=0)`.

Upstreams: any name under `/u/<name>/v1/...`; the key of upstream <name> is `sim-<name>-key`, sent as
`Authorization: Bearer` (OpenAI paths) or `x-api-key` (Anthropic paths; Bearer accepted too, as the
Anthropic SDK sends it). `/v1/messages*` also need `anthropic-version`. `GET /v1/models` answers in
Anthropic shape when `anthropic-version` (or only `x-api-key`) is sent. Gemini API under
`/u/<name>/v1beta/models/{model}:generateContent` (`:streamGenerateContent`, `?alt=sse` for SSE,
`:countTokens`, `GET models`), key in `x-goog-api-key` or `?key=` (see `gemini_api`).

Usage: one token per 4 characters of each text piece (system, messages, tool JSON), 85 per image.
Replies echo the last user turn; `output_tokens` in a rule pads/cuts them to exactly that many tokens.
Prompt caching: OpenAI reports `cached_tokens` (multiples of 128) when the same >=1024-token prefix
(everything but the last message) was seen before on that upstream+model; Anthropic writes then reads
the prefix up to the last `cache_control` block when it is >=1024 tokens.

Control (`POST /_sim/config`, `GET /_sim/config`, `POST /_sim/reset`, `GET /_sim/stats`,
`GET /_sim/requests?upstream=<name>`: the last 100 requests it received, auth redacted): a rule is
`{"upstream", "model", "max_concurrency", "latency_ms", "error", "retry_after_s", "output_tokens",
"video_ms"}`; the most specific rule wins as a whole (upstream+model, upstream, model, "*").
- max_concurrency: in-flight calls counted per upstream (or per upstream+model when the rule names
  a model); beyond it → 429, `Retry-After: retry_after_s or 1`, provider rate-limit body.
- latency_ms: wait before the first byte; streams then spread another latency_ms over their events.
- error: "429" (Retry-After only with retry_after_s), "500"/"503"/"529" (provider error body), "401",
  "reset" (socket aborted, no response), "garbage" (non-JSON body / malformed SSE), "cut_stream" (half
  the events or half the announced body, then the socket closes: no [DONE] / message_stop),
  "stream_error" (streams send half their events, then the provider's in-stream error event, and end;
  non-stream calls are unaffected),
  "video_failed" (video jobs are accepted and end as `failed`).
- video_ms: how long a video job takes (queued for the first 10%, then in_progress, then done).
Stats per upstream: requests, in_flight, max_in_flight, status counts ("200", "429", …, plus
"reset", "cut", "stream_error", and "499" when the client hung up mid-stream), and requests per model.
"""

from .app import build_app

__all__ = ["build_app"]
