"""The sinks' handlers: MySQL writes, dead letters, CDN alias paths."""

from types import SimpleNamespace

from agents.cdn_sink import alias_paths
from agents.dead_letters import record_dead_letter
from agents.mysql_sink import record_ai_usage, record_completion
from streams.records import DeadLetter, deterministic_id
from tests.unit.agents.fakes import FakeWorker


def _letter(image_id):
    return DeadLetter.new(
        event_id=deterministic_id("dl"), stage="assess", error_class="ObjectMissing",
        error_message="gone", source_topic="images.uploaded", source_partition=0,
        source_offset=3, source_key=None, image_id=image_id, attempts=1,
        original_event="{}")


async def test_a_dead_letter_is_recorded_and_its_photo_marked_failed(tmp_path):
    worker = FakeWorker(tmp_path)
    await record_dead_letter(_letter("a" * 32), worker)
    [insert, update] = worker.resources.db.statements
    assert insert[0].startswith("INSERT IGNORE INTO dead_letters")
    assert "status = 'failed'" in update[0] and update[1][1] == "a" * 32
    assert "completed" not in update[1] and "skipped" not in update[1]  # never overwritten
    assert update[1][0] == "assess: ObjectMissing: gone"


async def test_a_dead_letter_without_a_photo_touches_no_photo(tmp_path):
    worker = FakeWorker(tmp_path)
    await record_dead_letter(_letter(None), worker)
    assert len(worker.resources.db.statements) == 1


async def test_the_mysql_sinks_hand_the_event_to_the_records_module(tmp_path, monkeypatch):
    worker, seen = FakeWorker(tmp_path), []

    async def save(db, event):
        seen.append((db, event))

    monkeypatch.setattr("agents.mysql_sink.save_completion", save)
    monkeypatch.setattr("agents.mysql_sink.save_ai_usage", save)
    completed = SimpleNamespace(image_id="a" * 32, outputs=[])
    await record_completion(completed, worker)
    await record_ai_usage("settlement", worker)
    assert seen == [(worker.resources.db, completed),
                    (worker.resources.db, "settlement")]


async def test_a_completion_of_a_deleted_photo_removes_what_it_published(tmp_path,
                                                                         monkeypatch):
    worker, seen = FakeWorker(tmp_path), []
    bucket = worker.settings.enhanced_bucket
    image_id = "b" * 32
    own = f"s3://{bucket}/enhanced/{image_id}/current-large.jpg"
    foreign = f"s3://{bucket}/enhanced/{'c' * 32}/current-large.jpg"
    elsewhere = f"s3://{worker.settings.originals_bucket}/originals/x.jpg"
    for uri in (own, foreign, elsewhere):
        worker.resources.store.objects[uri] = b"bytes"
    worker.resources.db.deleted.add(image_id)

    async def save(db, event):
        seen.append(event)

    monkeypatch.setattr("agents.mysql_sink.save_completion", save)
    completed = SimpleNamespace(image_id=image_id, outputs=[
        {"uri": own}, {"uri": foreign}, {"uri": elsewhere}])
    await record_completion(completed, worker)
    assert seen == []  # not recorded
    # Only the photo's own renditions go: a forged event cannot delete other objects.
    assert set(worker.resources.store.objects) == {foreign, elsewhere}


def test_only_alias_outputs_are_invalidated():
    class Completed:
        outputs = [
            {"uri": "s3://b/enhanced/x/large-abc-p2.1.0.jpg", "alias": False},
            {"uri": "s3://b/enhanced/x/current-large.jpg", "alias": True},
            {"uri": "s3://b/enhanced/x/current-thumb.webp", "alias": True},
        ]

    assert alias_paths(Completed()) == ["/enhanced/x/current-large.jpg",
                                        "/enhanced/x/current-thumb.webp"]


def test_the_same_result_emitted_again_keeps_its_token():
    from agents.cdn_sink import source_token

    class Completed:
        def __init__(self, occurred_at, size):
            self.event_id, self.occurred_at = "e" * 32, occurred_at
            self.outputs = [{"uri": "s3://b/enhanced/x/current-large.jpg", "alias": True,
                             "size_bytes": size}]

    first, again = Completed("2026-12-05T10:00:00Z", 100), Completed("2026-12-05T11:00:00Z", 100)
    assert source_token(first) == source_token(again)  # a re-run after a crash
    assert source_token(first) != source_token(Completed("2026-12-05T10:00:00Z", 101))
