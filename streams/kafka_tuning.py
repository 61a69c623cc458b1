"""How long a consumer's fetch may wait at the broker (faust hard-codes 1.5 s).

faust-streaming 0.15.3 creates its aiokafka consumer with ``fetch_max_wait_ms=1500`` and no
setting to change it. tansu, the embedded broker, delivers a record produced while a fetch
waits only when that fetch times out, so the wait bounds each hop's latency; shorter waits
cost idle polling CPU. The measurements and the choice of 150 ms are in
docs/decisions/0004-fetch-wait.md; the wait is a setting (``IMGSTREAM_FETCH_MAX_WAIT_MS``).
"""

from __future__ import annotations

FETCH_MAX_WAIT_MS = 150


def limit_fetch_wait(ms: int = FETCH_MAX_WAIT_MS) -> None:
    """Make faust's worker consumers wait at most ``ms`` per fetch (idempotent)."""
    from faust.transport.drivers import aiokafka as driver

    thread = driver.AIOKafkaConsumerThread
    create = thread._create_worker_consumer
    if getattr(create, "fetch_max_wait_ms", None) == ms:
        return
    original = getattr(create, "original", create)

    def create_worker_consumer(self, transport):
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = ms  # read by AIOKafkaConsumer.start()
        return consumer

    create_worker_consumer.original = original  # type: ignore[attr-defined]
    create_worker_consumer.fetch_max_wait_ms = ms  # type: ignore[attr-defined]
    thread._create_worker_consumer = create_worker_consumer
