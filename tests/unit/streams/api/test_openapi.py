"""Every route a worker serves is in ``schemas/openapi.json``, and nothing else is."""

import json
import subprocess
import sys

from tests.openapi_check import documented_routes

_ROUTES = """
import json
from streams.app import create_worker
worker = create_worker()
routes = set()
for route in worker.app.web.web_app.router.routes():
    info = route.resource.get_info() if route.resource else {}
    path = info.get("path") or info.get("formatter")
    if path and route.method in ("GET", "POST", "PUT", "DELETE"):
        routes.add((route.method, path))
print(json.dumps(sorted(routes)))
"""


def test_the_document_names_exactly_the_routes_a_worker_serves():
    # A process of its own: building a worker installs faust patches and tunes threads.
    result = subprocess.run([sys.executable, "-c", _ROUTES], capture_output=True, text=True,
                            timeout=120, check=True)
    served = {tuple(r) for r in json.loads(result.stdout.strip().splitlines()[-1])}
    documented = documented_routes()
    assert served - documented == set(), "served but not documented"
    assert documented - served <= {("GET", "/dashboard")}, "documented but not served"
