"""Importing any module of the project declares things and does nothing else: no faust
app is built and no faust method is patched until a worker starts."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("streams", "agents", "imaging", "services", "schemas", "infra", "profiles")

PROBE = r"""
import importlib, pkgutil, sys
import faust
from faust.events import Event
from faust.transport.consumer import Consumer
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from mode.utils.queues import FlowControlEvent
built = []
original_init = faust.App.__init__
def spy(self, *a, **k):
    built.append(a[:1])
    original_init(self, *a, **k)
faust.App.__init__ = spy
def patchable():
    names = ("ack", "_new_offset", "perform_seek", "wait_empty", "_add_gap", "getmany",
             "commit")
    return ([getattr(Consumer, n) for n in names]
            + [Event.ack, FlowControlEvent.clear,
               AIOKafkaConsumerThread._create_worker_consumer])
before = patchable()
modules = []
for package in sys.argv[1:]:
    pkg = importlib.import_module(package)
    modules.append(package)
    for info in pkgutil.walk_packages(pkg.__path__, package + "."):
        if info.name.endswith("__main__"):
            continue
        importlib.import_module(info.name)
        modules.append(info.name)
after = patchable()
print(len(modules), "modules;", "apps built:", built, "; patched:", before != after)
assert not built, built
assert before == after, "a faust method was patched at import"
"""


def test_importing_every_module_builds_no_app_and_patches_nothing():
    done = subprocess.run([sys.executable, "-c", PROBE, *PACKAGES], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "apps built: [] ; patched: False" in done.stdout
