"""``imgstream replay``: reprocess the catalog (images.uploaded) under another profile.

A plain confluent-kafka client rather than an agent, because a replay is a bounded job
that an operator starts, watches, interrupts and resumes. It reads a fixed range of
images.uploaded under a consumer group of its own (live consumers never notice) and its
only effect is one ``ReplayRequested`` per photo on images.replay: the workers'
``assess_replay`` agent handles those apart from live uploads, everything downstream
carries the replay's profile, and the sinks keep each version's rows.

* A photo whose job for this profile version already completed is skipped: replaying an
  unchanged profile over unchanged photos does no work and pays nothing.
* Offsets are committed once the broker confirmed the requests, so an interrupted replay
  resumes where it stopped (a request sent twice is harmless: its ids are deterministic).
  A replay that reaches the end of its range deletes its group's offsets, so the next run
  scans its range again (skipping what is done) instead of finding nothing to resume.
* ``--dry-run`` assesses and routes in-process with the workers' pure functions, writes
  nothing, and compares with the current results: tier moves, plan changes and projected
  AI spend against the day's remaining budget.

Modules: ``options`` (what a replay covers, the request per photo), ``upload_log`` (Kafka
reading and sending), ``queries`` (MySQL), ``comparisons`` and ``projection`` (pure: tier
moves, plan changes, the dry run), ``command`` (the run itself).
"""

from streams.replay.command import run_replay
from streams.replay.options import ReplayOptions

__all__ = ["ReplayOptions", "run_replay"]
