"""An operator raises a day's AI cap while the worker runs (PUT /api/budget/caps).

The tests change a far day so that today's budget of the other tests stays as configured.
"""

from __future__ import annotations

import requests

from tests.conftest import API_KEY
from tests.polling import wait_for

DAY = "2099-12-31"


def _costs(worker) -> dict:
    return requests.get(worker.base_url + "/api/stats/costs", params={"day": DAY},
                        timeout=10).json()


def _put(worker, body, key: str | None = API_KEY) -> requests.Response:
    headers = {"X-API-Key": key} if key else {}
    return requests.put(worker.base_url + "/api/budget/caps", json=body, headers=headers,
                        timeout=10)


def test_raising_the_cap_reaches_the_days_owner_and_shows_in_the_costs(worker):
    before = _costs(worker)
    new_cap = before["cap_usd"] + 15.5
    response = _put(worker, {"daily_cap_usd": new_cap, "day": DAY,
                             "operation_caps_usd": {"background": 12.25},
                             "reason": "holiday sale"})
    assert response.status_code == 202, response.text
    assert response.json()["budget_day"] == before["day"] == DAY
    after = wait_for(lambda: (c := _costs(worker))["cap_usd"] == new_cap and c, 30)
    assert after["operation_caps_usd"]["background"] == 12.25
    assert after["remaining_usd"] == new_cap - after["reserved_usd"] - after["settled_usd"]


def test_a_bad_cap_change_is_refused_with_the_reason(worker):
    assert _put(worker, {"daily_cap_usd": 5}, key=None).status_code == 401
    bad = _put(worker, {"daily_cap_usd": -1})
    assert bad.status_code == 400 and "daily_cap_usd" in bad.json()["reason"]
    assert _put(worker, {"daily_cap_usd": 5, "day": "tomorrow"}).status_code == 400
    assert _put(worker, {}).status_code == 400
    assert _put(worker, ["not", "an", "object"]).status_code == 400
