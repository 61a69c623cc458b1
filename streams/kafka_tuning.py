"""How long a consumer's fetch may wait at the broker (faust hard-codes 1.5 s).

faust-streaming 0.15.3 creates its aiokafka consumer with ``fetch_max_wait_ms=1500`` and no
setting to change it. Apache Kafka answers a waiting fetch as soon as data arrives, so the
value only bounds idle polling there; tansu, the embedded broker, does not: a record
produced while a fetch waits is delivered when that fetch times out. Measured with
aiokafka against tansu, produce -> consume latency: 1500 ms wait -> median 484 ms, up to
1.24 s; 150 ms -> median 16 ms, up to 46 ms (100 ms: 14 / 39). A photo crosses four topics
between upload and completion, which was most of its ~3 s latency, and at the start and
end of a batch the stages wait for each other rather than work. The price is idle
polling: an idle consumer spent ~3 ms CPU per second at 1500 ms, ~9 at 150, ~13 at 100.
tansu itself spends ~1.5 ms of CPU per fetch whatever it holds (a bare aiokafka consumer of
one idle partition: 22 ms/s at a 50 ms wait, 10 at 150, 4 at 500, 2 at 1500; +0.3 ms/s per
partition polled), so two idle workers cost it ~40 ms/s at 150 ms. The wait is a setting
(``IMGSTREAM_FETCH_MAX_WAIT_MS``): against a broker that answers early, such as Apache
Kafka, a long wait costs nothing in latency.
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
