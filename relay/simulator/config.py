"""Run-time behaviour rules and per-upstream counters of the simulator.

Rules are keyed by (upstream, model), either may be "*"; the most specific rule wins as a whole
(upstream+model, then upstream, then model, then "*"). State lives in one process and one event
loop, so no locking is needed.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import asdict, dataclass, fields

ERRORS = (
    None,
    "429",
    "500",
    "503",
    "529",
    "401",
    "reset",
    "garbage",
    "cut_stream",
    "stream_error",
    "video_failed",
)
DEFAULT_VIDEO_MS = 2000


@dataclass(frozen=True, slots=True)
class Rule:
    upstream: str = "*"
    model: str = "*"
    max_concurrency: int | None = None
    latency_ms: int = 0
    error: str | None = None
    retry_after_s: int | None = None
    output_tokens: int | None = None
    video_ms: int = DEFAULT_VIDEO_MS

    def as_dict(self) -> dict:
        return asdict(self)


DEFAULT_RULE = Rule()
_FIELDS = {f.name for f in fields(Rule)}
_OPTIONAL_INTS = ("max_concurrency", "retry_after_s", "output_tokens")


def parse_rule(data: object) -> Rule:
    """Validate a POST /_sim/config body; raise ValueError with a message fit for the caller."""
    if not isinstance(data, dict):
        raise ValueError("config must be a JSON object")
    unknown = sorted(set(data) - _FIELDS)
    if unknown:
        raise ValueError(
            f"unknown config fields: {', '.join(unknown)}; allowed: {', '.join(sorted(_FIELDS))}"
        )
    clean = dict(data)
    for key in ("upstream", "model"):
        value = clean.get(key, "*")
        if not isinstance(value, str) or not value:
            raise ValueError(f"{key} must be a non-empty string or '*'")
    for key in (*_OPTIONAL_INTS, "latency_ms", "video_ms"):
        if key not in clean:
            continue
        value = clean[key]
        if value is None and key in _OPTIONAL_INTS:
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise ValueError(
                f"{key} must be a non-negative integer" + (" or null" if key in _OPTIONAL_INTS else "")
            )
    if clean.get("max_concurrency") == 0:
        raise ValueError("max_concurrency must be at least 1 (use error '429' to refuse everything)")
    if "latency_ms" in clean and clean["latency_ms"] is None:
        clean["latency_ms"] = 0
    error = clean.get("error")
    if isinstance(error, int) and not isinstance(error, bool):
        error = clean["error"] = str(error)
    if error not in ERRORS:
        raise ValueError(f"error must be one of {', '.join(str(e) for e in ERRORS if e)} or null")
    return Rule(**clean)


class Behaviour:
    """The rule table."""

    def __init__(self) -> None:
        self.rules: dict[tuple[str, str], Rule] = {}

    def set(self, rule: Rule) -> None:
        self.rules[(rule.upstream, rule.model)] = rule

    def clear(self) -> None:
        self.rules.clear()

    def match(self, upstream: str, model: str) -> Rule:
        if not self.rules:
            return DEFAULT_RULE
        rules = self.rules
        return (
            rules.get((upstream, model))
            or rules.get((upstream, "*"))
            or rules.get(("*", model))
            or rules.get(("*", "*"))
            or DEFAULT_RULE
        )

    def as_list(self) -> list[dict]:
        return [rule.as_dict() for rule in self.rules.values()]


class UpstreamStats:
    __slots__ = ("requests", "in_flight", "max_in_flight", "status", "models", "model_in_flight")

    def __init__(self) -> None:
        self.requests = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self.status: dict[str, int] = {}
        self.models: dict[str, int] = {}
        self.model_in_flight: dict[str, int] = {}

    def as_dict(self) -> dict:
        return {
            "requests": self.requests,
            "in_flight": self.in_flight,
            "max_in_flight": self.max_in_flight,
            "status": dict(self.status),
            "models": dict(self.models),
        }


class Stats:
    """Counters per upstream; in-flight is also kept per model for model-scoped concurrency rules."""

    def __init__(self) -> None:
        self.upstreams: dict[str, UpstreamStats] = {}

    def get(self, upstream: str) -> UpstreamStats:
        stats = self.upstreams.get(upstream)
        if stats is None:
            stats = self.upstreams[upstream] = UpstreamStats()
        return stats

    def clear(self) -> None:
        self.upstreams.clear()

    def as_dict(self) -> dict:
        return {name: stats.as_dict() for name, stats in self.upstreams.items()}


class PromptCache:
    """Prefixes seen per upstream, so a repeated long prefix is reported as cached like real providers."""

    def __init__(self, size: int = 10_000) -> None:
        self.size = size
        self.seen: OrderedDict[tuple[str, str, bytes], None] = OrderedDict()

    def hit(self, upstream: str, model: str, digest: bytes) -> bool:
        """Return whether the prefix was seen before, and remember it."""
        key = (upstream, model, digest)
        if key in self.seen:
            self.seen.move_to_end(key)
            return True
        self.seen[key] = None
        if len(self.seen) > self.size:
            self.seen.popitem(last=False)
        return False

    def clear(self) -> None:
        self.seen.clear()
