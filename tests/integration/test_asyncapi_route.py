"""``GET /asyncapi.yaml`` serves the committed AsyncAPI document."""

from __future__ import annotations

import httpx
import pytest

from rwi import asyncapi
from tests.support.service import make_config, running_service

pytestmark = pytest.mark.integration


async def test_the_service_serves_its_asyncapi_document(db_url: str) -> None:
    async with running_service(make_config(db_url)) as svc, httpx.AsyncClient() as http:
        response = await http.get(f"{svc.http}/asyncapi.yaml")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/yaml")
    assert response.text == asyncapi.DOCUMENT.read_text()
