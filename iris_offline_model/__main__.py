"""Run the offline model until Ctrl-C or SIGTERM: ``python -m iris_offline_model [--host H] [--port P]``.

Handy for trying Claude Code by hand against the script: export the logged variables and run ``claude -p``.
The signals are handled by the event loop itself, so they stop the model even when the process was started
with SIGINT ignored (as a shell does for a job it puts in the background).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import shlex
import signal

from .server import OfflineModel, offline_model_env

logger = logging.getLogger(__name__)


async def _serve(host: str, port: int) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with OfflineModel(host, port) as model:
        env = offline_model_env(model.base_url)
        exports = " ".join(f"{name}={shlex.quote(value)}" for name, value in env.items())
        logger.info("serving at %s; to use it: export %s", model.base_url, exports)
        await stop.wait()


def main(argv: list[str] | None = None) -> None:
    """Parse arguments and serve until interrupted."""
    parser = argparse.ArgumentParser(prog="python -m iris_offline_model", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on; 0 picks a free one")
    parser.add_argument("--verbose", "-v", action="store_true", help="log every request")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(name)s %(message)s"
    )
    asyncio.run(_serve(args.host, args.port))


if __name__ == "__main__":
    main()
