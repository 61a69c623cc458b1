"""faust's hard-coded 1.5 s fetch wait is bounded for the embedded broker."""

from faust.transport.drivers import aiokafka as driver

from streams.kafka_tuning import FETCH_MAX_WAIT_MS, limit_fetch_wait


def test_worker_consumers_get_the_shorter_fetch_wait(monkeypatch):
    class FakeConsumer:
        _fetch_max_wait_ms = 1500

    monkeypatch.setattr(driver.AIOKafkaConsumerThread, "_create_worker_consumer",
                        lambda self, transport: FakeConsumer())
    limit_fetch_wait()
    limit_fetch_wait()  # idempotent: wraps once
    consumer = driver.AIOKafkaConsumerThread._create_worker_consumer(None, None)
    assert consumer._fetch_max_wait_ms == FETCH_MAX_WAIT_MS
    limit_fetch_wait(250)  # a new value re-wraps the original, not the wrapper
    assert driver.AIOKafkaConsumerThread._create_worker_consumer(
        None, None)._fetch_max_wait_ms == 250
