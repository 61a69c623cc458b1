"""The dashboard's files fit together (without a browser: tests/browser runs the page)."""

from __future__ import annotations

import re

from streams.dashboard import ASSETS, asset


def test_every_element_the_script_looks_up_is_on_the_page():
    html = asset("dashboard.html").decode()
    script = asset("dashboard.js").decode()
    wanted = set(re.findall(r'getElementById\("([\w-]+)"\)', script))
    wanted |= set(re.findall(r'fill\("([\w-]+)"', script))
    wanted |= set(re.findall(r'panelError\("([\w-]+)"', script))
    present = set(re.findall(r'id="([\w-]+)"', html))
    assert wanted and wanted <= present, sorted(wanted - present)


def test_the_page_loads_only_its_own_assets():
    html = asset("dashboard.html").decode()
    sources = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert sorted(s for s in sources if not s.startswith("data:")) == sorted(
        f"/dashboard/{name}" for name in ASSETS)
    # The page's policy refuses inline code: nothing inline to refuse.
    assert "<script>" not in html and "style=" not in html
    assert not re.search(r"\son[a-z]+=", html)  # no inline event handlers
