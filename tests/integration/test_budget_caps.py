"""An operator raises a day's AI cap while the worker runs (PUT /api/budget/caps).

The tests change a far day so that today's budget of the other tests stays as configured.
"""

from __future__ import annotations

import requests

from tests.conftest import ADMIN_KEY, API_KEY
from tests.polling import wait_for

DAY = "2099-12-31"


def _costs(worker) -> dict:
    return requests.get(worker.base_url + "/api/stats/costs", params={"day": DAY},
                        headers={"X-API-Key": ADMIN_KEY}, timeout=10).json()


def _put(worker, body, key: str | None = ADMIN_KEY) -> requests.Response:
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
    assert _put(worker, {"daily_cap_usd": 5}, key=API_KEY).status_code == 401  # uploader
    bad = _put(worker, {"daily_cap_usd": -1})
    assert bad.status_code == 400 and "daily_cap_usd" in bad.json()["reason"]
    for body in ({"daily_cap_usd": 5, "day": "tomorrow"}, {}, ["not", "an", "object"],
                 {"daily_cap_usd": 1e9, "day": DAY}, {"daily_cap_usd": 1e308, "day": DAY},
                 {"daily_cap_usd": True, "day": DAY},
                 {"daily_cap_usd": 5, "day": "2001-01-01"},
                 {"daily_cap_usd": 5, "day": DAY, "operation_caps_usd": {"teleport": 1}},
                 {"daily_cap_usd": 5, "day": DAY, "operation_caps_usd": {"background": -2}},
                 {"daily_cap_usd": 5, "day": DAY, "surprise": 1}):
        response = _put(worker, body)
        assert response.status_code == 400, (body, response.text)
    nan = requests.put(worker.base_url + "/api/budget/caps", timeout=10,
                       data='{"daily_cap_usd": NaN, "day": "' + DAY + '"}',
                       headers={"X-API-Key": ADMIN_KEY, "Content-Type": "application/json"})
    assert nan.status_code == 400, nan.text


def test_stats_need_an_admin_key_and_faust_views_are_off(worker):
    url = worker.base_url + "/api/stats/costs"
    assert requests.get(url, timeout=10).status_code == 401
    assert requests.get(url, headers={"X-API-Key": API_KEY}, timeout=10).status_code == 401
    assert requests.get(url, headers={"X-API-Key": ADMIN_KEY}, timeout=10).status_code == 200
    for path in ("/router/", "/table/"):
        assert requests.get(worker.base_url + path, timeout=10).status_code == 404
