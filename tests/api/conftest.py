"""Fixtures for the staff API: a tree, staff accounts with tokens, and a JSON client that sends
``Authorization: Bearer <token>`` through the whole middleware stack."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import pytest
from django.test import Client

from huzhu.members.models import Member
from huzhu.orgs.models import User
from huzhu.orgs.services import create_api_token
from tests import factories


@dataclass
class Answer:
    status: int
    body: Any
    text: str
    headers: Any


class ApiClient:
    def __init__(self, token: str | None) -> None:
        self.client = Client()
        self.token = token

    def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        raw: str | bytes | None = None,
        token: str | None = None,
        **query: Any,
    ) -> Answer:
        headers = {}
        bearer = token if token is not None else self.token
        if bearer is not None:
            headers["Authorization"] = f"Bearer {bearer}"
        url = path if path.startswith("/") else "/api/v1/" + path
        data: Any
        if raw is not None:
            data = raw
        elif body is not None:
            data = json.dumps(body, ensure_ascii=False)
        else:
            data = None
        if method == "GET":
            response = self.client.get(url, query, headers=headers)
        else:
            response = self.client.generic(
                method, url, data or "", content_type="application/json", headers=headers
            )
        text = response.content.decode()
        parsed = (
            json.loads(text) if response["Content-Type"].startswith("application/json") else None
        )
        return Answer(response.status_code, parsed, text, response.headers)

    def get(self, path: str, **query: Any) -> Answer:
        return self.call("GET", path, **query)

    def post(self, path: str, body: Any = None, **kw: Any) -> Answer:
        return self.call("POST", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Answer:
        return self.call("PUT", path, body, **kw)


@dataclass
class World:
    tree: factories.Tree
    clerk: User
    auditor: User
    secadmin: User
    clerk_api: ApiClient
    auditor_api: ApiClient
    secadmin_api: ApiClient
    member_1: Member  # in the clerk's subtree (grassroots_1, unit_1)
    member_2: Member  # a sibling county's (grassroots_2, unit_2)
    plain_ids: list[str]


def api_for(user: User) -> ApiClient:
    return ApiClient(create_api_token(acting_user=None, user=user))


@pytest.fixture
def world(tree: factories.Tree) -> World:
    clerk = factories.staff(tree.county_a1, "clerk", username="county_clerk")
    auditor = factories.staff(tree.county_a1, "auditor", username="county_auditor")
    secadmin = factories.staff(tree.province, "secadmin", username="secadmin")
    id_1 = factories.id_number()
    id_2 = factories.id_number()
    member_1 = factories.member(
        tree.grassroots_1,
        tree.unit_1,
        name="李娜",
        number=id_1,
        phone="13812345678",
        bank_account="6222020200112233445",
    )
    member_2 = factories.member(tree.grassroots_2, tree.unit_2, name="王芳", number=id_2)
    return World(
        tree=tree,
        clerk=clerk,
        auditor=auditor,
        secadmin=secadmin,
        clerk_api=api_for(clerk),
        auditor_api=api_for(auditor),
        secadmin_api=api_for(secadmin),
        member_1=member_1,
        member_2=member_2,
        plain_ids=[id_1, id_2],
    )
