"""Real frameworks on phaseloop: uvicorn serving an ASGI app, aiohttp server and client.

Skipped, with the reason, where uvicorn, httpx or aiohttp is not installed
(``pip install phaseloop[compat]``). Traffic stays on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import phaseloop

REPO = Path(__file__).resolve().parents[1]


def _missing(*modules: str) -> str | None:
    absent = [m for m in modules if importlib.util.find_spec(m) is None]
    return f"needs {', '.join(absent)} (pip install phaseloop[compat])" if absent else None


needs_uvicorn_httpx = pytest.mark.skipif(
    bool(_missing("uvicorn", "httpx")), reason=_missing("uvicorn", "httpx") or ""
)
needs_aiohttp = pytest.mark.skipif(bool(_missing("aiohttp")), reason=_missing("aiohttp") or "")

Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]


async def echo_app(scope: dict[str, Any], receive: Receive, send: Send) -> None:
    """ASGI: answers with the loop it runs on, the path, and the request body, after a short sleep."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await asyncio.sleep(0.001)
    loop = type(asyncio.get_running_loop())
    payload = {"loop": f"{loop.__module__}.{loop.__qualname__}", "path": scope["path"], "body": body.decode()}
    data = json.dumps(payload).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": data})


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_for_port(port: int, timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listening on 127.0.0.1:{port}")


async def _fetch_all(base: str, count: int, concurrency: int) -> list[dict[str, Any]]:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=20) as client:

        async def one(i: int) -> dict[str, Any]:
            response = await client.post(f"/item/{i}", content=f"body-{i}")
            assert response.status_code == 200
            result: dict[str, Any] = response.json()
            return result

        return await asyncio.gather(*(one(i) for i in range(count)))


def _check_answers(answers: list[dict[str, Any]], loop_name: str) -> None:
    assert [a["path"] for a in answers] == [f"/item/{i}" for i in range(len(answers))]
    assert [a["body"] for a in answers] == [f"body-{i}" for i in range(len(answers))]
    assert {a["loop"] for a in answers} == {loop_name}


@pytest.fixture
def uvicorn_in_thread() -> Iterator[int]:
    """uvicorn.Server on its own thread, its loop chosen by import string as a user would."""
    import uvicorn

    port = _free_port()
    config = uvicorn.Config(
        echo_app,
        host="127.0.0.1",
        port=port,
        loop="phaseloop:new_event_loop",
        log_level="warning",
        lifespan="on",
        # The httpx client below takes ~5-7 s on phaseloop (docs/performance.md, "httpx's
        # connection pool"); uvicorn's default 5 s keep-alive then closed a pooled
        # connection as the client reused it now and then (httpx.ReadError).
        timeout_keep_alive=120,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, name="uvicorn", daemon=True)
    thread.start()
    try:
        _wait_for_port(port)
        yield port
    finally:
        server.should_exit = True
        thread.join(10)
    assert not thread.is_alive()


@needs_uvicorn_httpx
def test_uvicorn_config_loop_serves_concurrent_requests_on_phaseloop(uvicorn_in_thread: int) -> None:
    answers = phaseloop.run(_fetch_all(f"http://127.0.0.1:{uvicorn_in_thread}", count=200, concurrency=20))
    _check_answers(answers, "phaseloop.loop.EventLoop")


@needs_uvicorn_httpx
def test_uvicorn_command_line_loop_option(tmp_path: Path) -> None:
    """``uvicorn --loop phaseloop:new_event_loop`` (uvicorn >= 0.36 takes a loop factory's import string)."""
    (tmp_path / "echo_app_module.py").write_text(
        f"import sys\nsys.path.insert(0, {str(REPO / 'tests')!r})\nfrom test_frameworks import echo_app\n"
    )
    port = _free_port()
    cmd = [sys.executable, "-m", "uvicorn", "echo_app_module:echo_app", "--app-dir", str(tmp_path)]
    cmd += [
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--loop",
        "phaseloop:new_event_loop",
        "--log-level",
        "warning",
    ]
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))
    )
    proc = subprocess.Popen(cmd, env=env)
    try:
        _wait_for_port(port)
        answers = asyncio.run(_fetch_all(f"http://127.0.0.1:{port}", count=50, concurrency=10))
        _check_answers(answers, "phaseloop.loop.EventLoop")
    finally:
        proc.terminate()
        # uvicorn shuts down gracefully, then re-raises the captured SIGTERM.
        assert proc.wait(10) in (0, -signal.SIGTERM)


@needs_aiohttp
def test_aiohttp_server_and_client_round_trip() -> None:
    from aiohttp import ClientSession, TCPConnector, WSMsgType, web

    async def handle(request: web.Request) -> web.Response:
        body = await request.text()
        await asyncio.sleep(0.001)
        loop = type(asyncio.get_running_loop())
        return web.json_response({"loop": loop.__module__, "n": request.match_info["n"], "body": body})

    async def websocket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            await ws.send_str(message.data.upper())
        return ws

    async def main() -> tuple[list[dict[str, Any]], list[str]]:
        app = web.Application()
        app.router.add_post("/n/{n}", handle)
        app.router.add_get("/ws", websocket)
        runner = web.AppRunner(app)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = runner.addresses[0][1]
        try:
            async with ClientSession(connector=TCPConnector(limit=10)) as session:

                async def one(i: int) -> dict[str, Any]:
                    async with session.post(f"http://127.0.0.1:{port}/n/{i}", data=f"x{i}") as response:
                        assert response.status == 200
                        result: dict[str, Any] = await response.json()
                        return result

                answers = await asyncio.gather(*(one(i) for i in range(100)))
                echoed = []
                async with session.ws_connect(f"http://127.0.0.1:{port}/ws") as ws:
                    for word in ("tick", "microtask", "immediate"):
                        await ws.send_str(word)
                        reply = await ws.receive()
                        assert reply.type is WSMsgType.TEXT
                        echoed.append(reply.data)
        finally:
            await runner.cleanup()
        return answers, echoed

    answers, echoed = phaseloop.run(main())
    assert [(a["n"], a["body"]) for a in answers] == [(str(i), f"x{i}") for i in range(100)]
    assert {a["loop"] for a in answers} == {"phaseloop.loop"}
    assert echoed == ["TICK", "MICROTASK", "IMMEDIATE"]
