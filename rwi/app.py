"""The Starlette application: ``/rwi/v1`` WebSocket, ``/healthz``, ``/readyz``,
``/asyncapi.yaml`` (the protocol's AsyncAPI document) and ``/metrics`` (Prometheus)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from prometheus_client import CONTENT_TYPE_LATEST
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route, WebSocketRoute

from rwi import asyncapi
from rwi.gateway.endpoint import rwi_endpoint
from rwi.runtime import Runtime


async def healthz(request: Request) -> JSONResponse:
    return JSONResponse({"status": "ok"})


async def readyz(request: Request) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    ok, checks = await runtime.ready()
    return JSONResponse({"status": "ready" if ok else "not ready", **checks}, 200 if ok else 503)


async def asyncapi_document(request: Request) -> Response:
    # generated from the same specs the service validates with, so it cannot drift
    return Response(request.app.state.asyncapi, media_type="application/yaml")


async def metrics(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    return Response(runtime.metrics.render(), media_type=CONTENT_TYPE_LATEST)


def create_app(runtime: Runtime) -> Starlette:
    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        app.state.service = await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    app = Starlette(
        routes=[
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/asyncapi.yaml", asyncapi_document),
            Route("/metrics", metrics),
            WebSocketRoute("/rwi/v1", rwi_endpoint),
        ],
        lifespan=lifespan,
    )
    app.state.runtime = runtime
    app.state.asyncapi = asyncapi.render()
    return app
