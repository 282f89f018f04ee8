"""The search page and the nav's search box: results with highlighted snippets and links, filters, errors in place,
nothing from another organization, and user text escaped."""

from __future__ import annotations

from tests.web.test_pages import browser, soup, team, text  # noqa: F401 — fixtures


def _incident(client, who, title, services=("checkout",)):
    r = client.post("/api/v1/incidents", json={"title": title, "services": list(services)}, headers=who.headers)
    assert r.status_code == 201, r.text
    return r.json()["id"]


def test_the_nav_box_leads_to_ranked_highlighted_results(browser, team, client):
    t = team()
    iid = _incident(client, t["owner"], "Checkout <script>alert(1)</script> pool exhausted")
    client.post(f"/api/v1/incidents/{iid}/updates", json={"body": "The pool hit its limit of 50."},
                headers=t["owner"].headers)
    other = team()
    _incident(client, other["owner"], "Checkout pool exhausted elsewhere")
    c = browser(t["viewer"])
    home = soup(c.get("/incidents"))
    box = home.select_one("form.nav-search")
    assert box["action"] == "/search" and box.select_one("input[name=q]")
    page = soup(c.get("/search", params={"q": "pool"}))
    hits = page.select("li.search-hit")
    assert {h["data-kind"] for h in hits} == {"incident", "update"}
    assert all(h.select_one(".search-snippet mark") for h in hits)
    assert page.select_one("#nav-search-q")["value"] == "pool"
    assert not page.select("script:-soup-contains('alert(1)')")  # the title is text, never markup
    assert "elsewhere" not in page.text  # another organization's incident never shows
    link = next(h for h in hits if h["data-kind"] == "update").select_one("a.search-hit-title")["href"]
    assert link.startswith(f"/incidents/{iid}#upd_")
    assert c.get(link.split("#")[0]).status_code == 200

    only = soup(c.get("/search", params={"q": "pool", "kind": "update"}))
    assert {h["data-kind"] for h in only.select("li.search-hit")} == {"update"}
    none = soup(c.get("/search", params={"q": "pool", "service": "billing"}))
    assert "Nothing matches" in text(none.select_one("#search-none"))
    empty = soup(c.get("/search"))
    assert empty.select("li.search-hit") == [] and "All the words must appear" in empty.text


def test_bad_filters_are_shown_on_the_page(browser, team):
    c = browser(team()["member"])
    r = c.get("/search", params={"q": "pool", "from": "last week"})
    assert r.status_code == 422
    assert "from must be a date" in text(soup(r).select_one("#search-errors"))
    assert soup(r).select_one("#search-q")["value"] == "pool"
