"""One module per stage. Agents stay thin: decode the event, call pure code, emit.

Each module has plain handlers of ``(event, worker)`` and a ``register(worker)`` that
attaches its faust agents to a built worker (``streams.app.create_worker``).
"""

from agents import (
    assess,
    budget_gate,
    cdn_sink,
    dead_letters,
    enhance_ai,
    enhance_local,
    finalize,
    mysql_sink,
    route,
)

ALL_STAGES = (assess, route, budget_gate, enhance_local, enhance_ai, finalize, mysql_sink,
              cdn_sink, dead_letters)
