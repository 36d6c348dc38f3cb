"""`python -m relay.simulator --port 8100`: serve the simulated upstreams without Django."""

import argparse
import os

from aiohttp import web

from .app import build_app


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Serve simulated OpenAI/Anthropic upstreams under /u/<name>/v1."
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=int(os.environ.get("SIM_PORT", "8100")))
    args = parser.parse_args(argv)
    serve(args.host, args.port)


def serve(host: str, port: int) -> None:
    print(f"simulated upstreams on http://{host}:{port}/u/<name>/v1 (control: /_sim/config)", flush=True)
    web.run_app(
        build_app(), host=host, port=port, print=None, access_log=None, shutdown_timeout=1.0, backlog=1024
    )


if __name__ == "__main__":
    main()
