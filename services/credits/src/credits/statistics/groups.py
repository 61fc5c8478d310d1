"""Hours by learner group (老年人, 青少年, ...): per-learner totals from credits, groups from
accounts, summed here.

Groups are the accounts service's data about residents (``disabled`` is sensitive personal
information) and the credits service keeps no copy. A report sums each participant's countable
minutes and records in SQL (:func:`credits.statistics.service.learner_totals`), asks the
accounts service with the caller's own token which of those learners are in which group
(``POST /api/v1/learner-groups/lookup``: places in the list, per group; chunks of
``LOOKUP_CHUNK``), and adds the totals up per group. When accounts cannot answer, the report
says so (``hours_by_group`` null, a ``missing`` note) rather than giving empty groups.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any

import httpx

from credits.statistics.schemas import GroupHours, MissingFigure
from credits.statistics.service import LearnerTotal, hours
from kernel import servicecalls

log = logging.getLogger("credits.statistics.groups")

LOOKUP_PATH = "/api/v1/learner-groups/lookup"
# learner ids per lookup: the accounts service's limit (a district's participants at once)
LOOKUP_CHUNK = 400_000
GROUP_ZH = {
    "elderly": "老年人",
    "youth": "青少年",
    "disabled": "残疾人",
    "unemployed": "失业人员",
    "migrant_workers": "进城务工人员",
    "rural_residents": "农村居民",
    "veterans": "退役士兵",
    "left_behind": "留守妇女儿童",
}


class GroupsUnavailable(Exception):
    """The accounts service did not answer the group lookup."""


def group_name(group: str) -> str:
    """The group's Chinese name (its code when unknown here)."""
    return GROUP_ZH.get(group, group)


async def group_places(
    accounts: httpx.AsyncClient,
    authorization: str,
    unit: str,
    learners: Sequence[Any],
    *,
    service_key: bytes | None,
) -> dict[str, list[int]]:
    """Per group, the places in ``learners`` of those in it, as the accounts service says.

    One request per ``LOOKUP_CHUNK`` learners, one after the other (the chunks' places are
    shifted back onto the whole list), each signed with the service call key (accounts answers
    nobody else). Raises :class:`GroupsUnavailable` if any fails or there is no key.
    """
    if service_key is None:
        raise GroupsUnavailable("no service call key")
    places: dict[str, list[int]] = {}
    for start in range(0, len(learners), LOOKUP_CHUNK):
        chunk = [str(learner) for learner in learners[start : start + LOOKUP_CHUNK]]
        body = json.dumps({"unit": unit, "learners": chunk}).encode()
        try:
            response = await accounts.post(
                LOOKUP_PATH,
                content=body,
                headers={
                    "authorization": authorization,
                    "content-type": "application/json",
                    servicecalls.HEADER: servicecalls.sign(service_key, "POST", LOOKUP_PATH, body),
                },
                timeout=30.0,
            )
        except httpx.HTTPError as error:
            raise GroupsUnavailable(f"{type(error).__name__}") from None
        if response.status_code != 200:
            raise GroupsUnavailable(f"HTTP {response.status_code}")
        for group, found in response.json()["groups"].items():
            places.setdefault(str(group), []).extend(start + int(n) for n in found)
    return places


def sum_by_group(totals: Sequence[LearnerTotal], places: dict[str, list[int]]) -> list[GroupHours]:
    """Each group's learners, minutes and records: the sum of its learners' totals."""
    lines = []
    for group, found in places.items():
        minutes = sum(totals[n].minutes for n in found)
        lines.append(
            GroupHours(
                group=group,
                group_name=group_name(group),
                learners=len(found),
                minutes=minutes,
                hours=hours(minutes),
                records=sum(totals[n].records for n in found),
            )
        )
    return lines


async def hours_by_group(
    accounts: httpx.AsyncClient,
    authorization: str,
    unit: str,
    totals: Sequence[LearnerTotal],
    *,
    service_key: bytes | None,
) -> tuple[list[GroupHours] | None, list[MissingFigure]]:
    """The report's hours by group, or None and the note saying why they are missing."""
    if not totals:
        return [GroupHours.empty(g, n) for g, n in GROUP_ZH.items()], []
    try:
        places = await group_places(
            accounts,
            authorization,
            unit,
            [t.learner_id for t in totals],
            service_key=service_key,
        )
    except GroupsUnavailable as error:
        log.warning("group lookup for the statistics of %s failed: %s", unit, error)
        return None, [
            MissingFigure(
                figure="hours_by_group",
                reason="The accounts service could not say who is in which group; the rest of "
                "the report is complete. Ask again later.",
                reason_zh="暂时无法从账户服务获取学习者所属人群，按人群学时暂缺；报表其余数据完整，"
                "请稍后重新获取。",
            )
        ]
    return sum_by_group(totals, places), []
