"""Simulated OpenAI- and Anthropic-format upstream providers (demo, tests, benchmarks).

`build_app()` returns the aiohttp application; `testing.start_in_thread()` runs it in a background
thread; `python -m relay.simulator --port P` or `manage.py simulate_upstream` serve it.
"""

from .app import build_app

__all__ = ["build_app"]
