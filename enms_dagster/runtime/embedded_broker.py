"""An amqtt MQTT 3.1.1 broker on 127.0.0.1, the fallback when no ``ENMS_MQTT_URL`` is set.

Run as a child process (``python -m enms_dagster.runtime.embedded_broker --port N``) so that
the broker's event loop does not share the GIL with the ingestor and simulator; prints ``ready``
once listening. It keeps nothing on disk: it exists for the demo and tests, not for production.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal


async def serve(port: int) -> None:
    from amqtt.broker import Broker

    broker = Broker(
        {
            "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
            "plugins": {
                "amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}
            },
        }
    )
    await broker.start()
    print("ready", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await broker.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(serve(args.port))


if __name__ == "__main__":
    main()
