"""The school network: Muye's units as data, walked and paged through the API."""

from __future__ import annotations

import httpx

from accounts.network.service import muye_network


async def _all_units(client: httpx.AsyncClient, **params: str) -> list[dict]:
    units: list[dict] = []
    cursor = None
    while True:
        query = {"limit": "37", **params, **({"cursor": cursor} if cursor else {})}
        response = await client.get("/api/v1/units", params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        units.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return units


async def test_paging_walks_every_unit_exactly_once(client: httpx.AsyncClient) -> None:
    units = await _all_units(client)
    keys = [u["key"] for u in units]
    assert len(keys) == len(set(keys)) == len(muye_network()["units"])
    assert keys[0] == "410711"  # the college is the root of the depth-first walk


async def test_named_towns_carry_their_division_codes(client: httpx.AsyncClient) -> None:
    for code, town in (("410711100", "王村镇"), ("410711101", "牧野镇")):
        response = await client.get(f"/api/v1/units/{code}")
        assert response.status_code == 200
        unit = response.json()
        assert unit["division_code"] == code
        assert unit["division_name"] == town
        assert unit["level"] == "town_school"
        assert unit["parent_key"] == "410711"


async def test_under_filter_returns_a_subtree(client: httpx.AsyncClient) -> None:
    units = await _all_units(client, under="410711100")
    assert units[0]["key"] == "410711100"
    assert len(units) > 1
    assert all(u["path"].startswith("/410711/410711100/") for u in units)
    assert all(u["level"] == "learning_point" for u in units[1:])
    assert all(u["division_code"].startswith("410711100") for u in units[1:] if u["division_code"])


async def test_levels_are_data_ordered_top_down(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/unit-levels")
    assert [lv["code"] for lv in response.json()] == [
        "district_college",
        "town_school",
        "learning_point",
    ]


async def test_unknown_unit_is_a_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/units/999999")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["type"].endswith("/unit-not-found")
    assert body["detail_zh"]


async def test_forged_cursor_is_a_400_problem(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/units", params={"cursor": "%%%not-ours"})
    assert response.status_code == 400
    assert response.json()["type"].endswith("/invalid-cursor")


async def test_page_size_over_100_is_refused(client: httpx.AsyncClient) -> None:
    response = await client.get("/api/v1/units", params={"limit": "101"})
    assert response.status_code == 422
    assert response.json()["errors"][0]["location"] == ["query", "limit"]


def test_shipped_network_data_is_consistent() -> None:
    data = muye_network()
    by_key = {u["key"]: u for u in data["units"]}
    assert len(by_key) == len(data["units"])
    levels = {lv["code"] for lv in data["levels"]}
    for unit in data["units"]:
        assert unit["level"] in levels
        parent = by_key.get(unit["parent"]) if unit["parent"] else None
        assert (parent is None) == (unit["key"] == "410711")
        code = unit.get("division_code")
        if code and parent and parent.get("division_code"):
            assert code.startswith(parent["division_code"]), unit
        # anything without a real division code must say it is invented
        if unit["level"] == "learning_point" and not code:
            assert unit["demo"], unit
    assert "demo" in data["source"]["note"].lower() or "invented" in data["source"]["note"].lower()


def test_learning_points_are_the_nbs_village_divisions() -> None:
    """Each learning point is one 12-digit NBS village/community division under its town."""
    units = muye_network()["units"]
    by_key = {u["key"]: u for u in units}
    points = [u for u in units if u["level"] == "learning_point"]
    assert len(points) == 94  # every 410711 row of villages.csv (see data/SOURCE.md)
    for point in points:
        code = point["division_code"]
        assert len(code) == 12 and code.isdigit() and point["key"] == code, point
        assert by_key[point["parent"]]["division_code"] == code[:9], point
        assert "委员会" in point["division_name"] or "居委会" in point["division_name"], point
        assert point["name"].endswith(("村学习点", "社区学习点")), point
        assert "unit" not in point["demo"], point  # the unit is real; only its population is not
    towns = [u for u in units if u["level"] == "town_school"]
    assert all(any(p["parent"] == t["key"] for p in points) for t in towns)
    assert by_key["410711100200"]["division_name"] == "李庄村民委员会"
    assert by_key["410711100200"]["name"] == "李庄村学习点"
