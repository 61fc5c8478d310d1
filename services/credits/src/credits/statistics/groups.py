"""What the accounts service knows of the learners a report counts: hours by learner group
(老年人, 青少年, ...), and which of the unit's residents they are.

Groups and residences are the accounts service's data about residents (``disabled`` is
sensitive personal information) and the credits service keeps no copy. A report sums each
learner's countable minutes and records at the unit's activities in SQL
(:func:`credits.statistics.service.learner_totals`) and asks the accounts service with the
caller's own token (``POST /api/v1/learner-groups/lookup``; chunks of ``LOOKUP_CHUNK``) which
of those learners are in which group (places in the list, per group), how many of them live in
the unit, and which of the unit's residents it did not list. It adds the totals up per group;
the residents not listed are looked for at other units' activities
(:func:`credits.statistics.service.learning_elsewhere`), so that the participation rate counts
the unit's residents wherever they learned. When accounts cannot answer, the report says so
(``hours_by_group`` and ``participants`` null, ``missing`` notes) rather than giving empty
groups or a count of the wrong people.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from typing import Any, NamedTuple

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


class Residents(NamedTuple):
    """The unit's residents as the lookup tells them apart: how many of the learners it was
    asked about live there, and the ids (as text) of those who live there and were not asked."""

    listed: int
    others: list[str]


class Answer(NamedTuple):
    """The accounts service's answer for the learners a report counts."""

    places: dict[str, list[int]]
    residents: Residents


class Lookup(NamedTuple):
    """Hours by group and the unit's residents, or None and the notes saying why not."""

    by_group: list[GroupHours] | None
    residents: Residents | None
    missing: list[MissingFigure]


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
) -> Answer:
    """Per group, the places in ``learners`` of those in it, and the unit's residents among
    and beside them, as the accounts service says.

    One request per ``LOOKUP_CHUNK`` learners, one after the other (the chunks' places are
    shifted back onto the whole list; the residents listed are added up, and a resident was
    not listed when no chunk listed them), each signed with the service call key (accounts
    answers nobody else); one request with no learners when there are none. Raises
    :class:`GroupsUnavailable` if any fails or there is no key.
    """
    if service_key is None:
        raise GroupsUnavailable("no service call key")
    places: dict[str, list[int]] = {}
    listed = 0
    others: set[str] | None = None
    for start in range(0, max(len(learners), 1), LOOKUP_CHUNK):
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
        answer = response.json()
        for group, found in answer["groups"].items():
            places.setdefault(str(group), []).extend(start + int(n) for n in found)
        listed += int(answer["listed_residents"])
        given = {str(resident) for resident in answer["other_residents"]}
        others = given if others is None else others & given
    return Answer(places, Residents(listed, list(others or ())))


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


# what a report says when the accounts service did not answer its lookup
UNANSWERED = [
    MissingFigure(
        figure="participants",
        reason="The accounts service could not say who lives in the unit, so its participants "
        "(residents who learned anywhere) and participation rate are missing; the rest of the "
        "report is complete. Ask again later.",
        reason_zh="暂时无法从账户服务获取本单位常住居民名单，参与人数和参与率暂缺；报表其余数据完整，"
        "请稍后重新获取。",
    ),
    MissingFigure(
        figure="hours_by_group",
        reason="The accounts service could not say who is in which group; the rest of "
        "the report is complete. Ask again later.",
        reason_zh="暂时无法从账户服务获取学习者所属人群，按人群学时暂缺；报表其余数据完整，"
        "请稍后重新获取。",
    ),
]


async def look_up(
    accounts: httpx.AsyncClient,
    authorization: str,
    unit: str,
    totals: Sequence[LearnerTotal],
    *,
    service_key: bytes | None,
) -> Lookup:
    """The report's hours by group and the unit's residents, or None and the notes saying why
    they are missing."""
    try:
        answer = await group_places(
            accounts,
            authorization,
            unit,
            [t.learner_id for t in totals],
            service_key=service_key,
        )
    except GroupsUnavailable as error:
        log.warning("group lookup for the statistics of %s failed: %s", unit, error)
        return Lookup(None, None, list(UNANSWERED))
    if not totals:
        return Lookup([GroupHours.empty(g, n) for g, n in GROUP_ZH.items()], answer.residents, [])
    return Lookup(sum_by_group(totals, answer.places), answer.residents, [])
