"""Noticing a broker that came back without our topics, and the re-drive window (pure)."""

from streams.broker_loss import (
    LOST_AT_ENV,
    UNFINISHED,
    BrokerLossWatch,
    lost_at_from,
    orphaned_topics,
    settle_seconds,
    stranded_age,
)

TOPICS = frozenset({"p.images.uploaded", "p.images.assessed", "p.images.completed"})


def test_topics_missing_before_they_were_declared_or_seen_mean_nothing():
    watch = BrokerLossWatch(TOPICS)
    assert watch.observe(set()) == frozenset()          # a fresh broker, a worker starting
    assert watch.observe({"p.images.uploaded"}) == frozenset()
    assert not watch.armed


def test_a_broker_that_answers_without_topics_once_seen_lost_them():
    watch = BrokerLossWatch(TOPICS)
    assert watch.observe(set(TOPICS) | {"someone.else"}) == frozenset()
    assert watch.armed
    assert watch.observe({"p.images.uploaded"}) == {"p.images.assessed", "p.images.completed"}
    assert watch.observe(set()) == TOPICS


def test_declared_arms_the_watch_before_any_listing():
    # The broker may crash between the worker declaring its topics and the first listing.
    watch = BrokerLossWatch(TOPICS)
    watch.declared()
    assert watch.observe(set()) == TOPICS


def test_a_broker_that_does_not_answer_is_down_not_lost():
    watch = BrokerLossWatch(TOPICS)
    watch.declared()
    assert watch.observe(None) == frozenset()
    assert watch.observe(set(TOPICS)) == frozenset()


def test_an_epoch_changed_under_present_topics_is_a_loss():
    # Several workers: another one noticed first, started again and recreated every topic
    # with a new epoch before this worker listed them.
    watch = BrokerLossWatch(TOPICS)
    watch.declared("e1")
    assert watch.observe(set(TOPICS), "e1") == frozenset()
    assert watch.observe(set(TOPICS), "e2") == TOPICS
    assert "e1" in watch.cause and "e2" in watch.cause


def test_an_empty_epoch_topic_once_an_epoch_was_known_is_a_loss():
    # Recreated by another worker's new life that has not written its epoch yet.
    watch = BrokerLossWatch(TOPICS)
    watch.declared("e1")
    assert watch.observe(set(TOPICS), "") == TOPICS


def test_an_epoch_that_could_not_be_read_means_nothing():
    watch = BrokerLossWatch(TOPICS)
    watch.declared("e1")
    assert watch.observe(set(TOPICS), None) == frozenset()
    assert watch.epoch == "e1"


def test_the_first_epoch_known_is_remembered():
    # Not established at the start (the broker slow): learnt from the first reading.
    watch = BrokerLossWatch(TOPICS)
    watch.declared(None)
    assert watch.observe(set(TOPICS), "") == frozenset()   # not written yet
    assert watch.observe(set(TOPICS), "e1") == frozenset()
    assert watch.epoch == "e1"
    watch.remember("e9")                                    # the first one wins
    assert watch.observe(set(TOPICS), "e9") == TOPICS


def test_missing_topics_are_reported_before_the_epoch_is_looked_at():
    watch = BrokerLossWatch(TOPICS)
    watch.declared("e1")
    assert watch.observe({"p.images.uploaded"}, "e1") == {"p.images.assessed",
                                                          "p.images.completed"}
    assert "missing" in watch.cause


def test_the_loss_time_handed_to_the_next_life():
    assert lost_at_from({LOST_AT_ENV: "1764950400.25"}) == 1764950400.25
    # Anything else is ignored: it must never stop a worker from starting.
    for raw in ("", "soon", "nan", "inf", "-5", "0"):
        assert lost_at_from({LOST_AT_ENV: raw}) is None
    assert lost_at_from({}) is None


def test_everything_unfinished_at_the_loss_is_old_enough_to_drive_again():
    # Lost at t=1000, swept at t=1030: photos unchanged for 29 s (margin 1 s) or more,
    # i.e. last changed up to a second after the loss, are driven again.
    assert stranded_age(1000.0, 1030.0) == 29.0
    assert stranded_age(1000.0, 1000.5) == 0.0       # never negative
    assert stranded_age(1000.0, 1030.0, margin=0.0) == 30.0


def test_final_statuses_are_never_stranded():
    assert not {"completed", "skipped", "failed"} & set(UNFINISHED)
    assert {"uploaded", "analyzed"} <= set(UNFINISHED)


UNKNOWN_TOPIC = 3


def test_records_of_a_topic_the_broker_does_not_have_are_orphans():
    # tansu 0.6.0: ListOffsets(latest) of a topic it does not list answers from batches
    # stored under that name (a produce from the previous life after the loss).
    listed = {"app-budget-days-changelog": {0: (0, 0), 1: (0, 2), 2: (0, 0), 3: (0, 0)},
              "p.images.assessed": {0: (0, 0), 1: (0, 0), 2: (0, 0), 3: (0, 3)},
              "p.images.uploaded": {0: (0, 0), 1: (0, 0), 2: (0, 0), 3: (0, 0)}}
    assert orphaned_topics(listed) == ["app-budget-days-changelog", "p.images.assessed"]


def test_a_broker_that_does_not_know_the_topic_holds_nothing_of_it():
    # Apache Kafka: an unknown topic is an error, whatever the offset field says.
    assert orphaned_topics({"p.images.ai": {0: (UNKNOWN_TOPIC, -1), 1: (UNKNOWN_TOPIC, 5)},
                            "p.images.completed": {}}) == []
    assert orphaned_topics({}) == []


def test_a_new_life_waits_a_watch_interval_and_a_probe_for_the_others():
    assert settle_seconds(2.0) == 5.0
    assert settle_seconds(1.0, probe_seconds=2.0) == 3.0
    assert settle_seconds(0.0) == 0.0  # no watch: nobody would notice


def test_a_paid_call_is_refused_once_the_epoch_was_superseded():
    watch = BrokerLossWatch(TOPICS)
    assert not watch.superseded("e1")        # no epoch known yet: nothing to compare
    watch.declared("e1")
    assert not watch.superseded("e1")
    assert not watch.superseded(None)        # unreadable: not concluded
    assert watch.superseded("e2") and "e2" in watch.cause
    assert watch.superseded("")              # emptied: recreated, not written yet
