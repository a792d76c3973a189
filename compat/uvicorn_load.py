"""uvicorn + httpx under load: N requests over C concurrent connections, every answer checked.

    python compat/uvicorn_load.py                         # phaseloop, then uvloop
    python compat/uvicorn_load.py --loop phaseloop:new_event_loop --requests 1000 --concurrency 50

For each loop, uvicorn runs in a subprocess as ``uvicorn --loop MODULE:FACTORY`` (the
import-string form uvicorn >= 0.36 accepts) on 127.0.0.1; the httpx client runs on the same
kind of loop in this process. Each request carries its number in the path and the body and
the answer must echo both (and name the server's loop). Prints the counts and requests/s;
exits non-zero if any answer is missing or wrong. Needs uvicorn and httpx (phaseloop[compat]).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))  # phaseloop from this checkout when it is not installed
DEFAULT_LOOPS = ["phaseloop:new_event_loop", "uvloop:new_event_loop"]

APP = """
import asyncio, json


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    loop = type(asyncio.get_running_loop())
    data = json.dumps({"path": scope["path"], "body": body.decode(), "loop": loop.__module__}).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": data})
"""


def resolve(spec: str) -> Callable[[], asyncio.AbstractEventLoop]:
    module, _, name = spec.partition(":")
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    factory: Callable[[], asyncio.AbstractEventLoop] = obj
    return factory


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, proc: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"uvicorn exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"uvicorn is not listening on 127.0.0.1:{port}")


async def hammer(port: int, requests: int, concurrency: int, expect_loop: str) -> dict[str, int]:
    import httpx

    counts = {"ok": 0, "wrong": 0, "failed": 0}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    next_id = iter(range(requests))
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits, timeout=30) as client:

        async def worker() -> None:
            for i in next_id:
                try:
                    response = await client.post(f"/r/{i}", content=f"payload-{i}")
                    answer = response.json()
                except Exception:
                    counts["failed"] += 1
                    continue
                good = response.status_code == 200 and answer == {
                    "path": f"/r/{i}",
                    "body": f"payload-{i}",
                    "loop": expect_loop,
                }
                counts["ok" if good else "wrong"] += 1

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return counts


def run_one(spec: str, requests: int, concurrency: int) -> bool:
    factory = resolve(spec)
    expect_loop = type(factory()).__module__
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="uvicorn-load-") as tmp:
        (Path(tmp) / "load_app.py").write_text(APP)
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        cmd = [sys.executable, "-m", "uvicorn", "load_app:app", "--app-dir", tmp, "--host", "127.0.0.1"]
        cmd += ["--port", str(port), "--loop", spec, "--log-level", "warning", "--no-access-log"]
        proc = subprocess.Popen(cmd, env=env)
        try:
            wait_for_port(port, proc)
            runner = asyncio.Runner(loop_factory=factory)
            with runner:
                runner.run(hammer(port, min(50, requests), concurrency, expect_loop))  # warm-up
                started = time.perf_counter()
                counts = runner.run(hammer(port, requests, concurrency, expect_loop))
                elapsed = time.perf_counter() - started
        finally:
            proc.send_signal(signal.SIGTERM)
            proc.wait(15)
    rate = requests / elapsed if elapsed else 0.0
    print(
        f"{spec}: requests={requests} concurrency={concurrency} ok={counts['ok']} wrong={counts['wrong']} "
        f"failed={counts['failed']} seconds={elapsed:.2f} requests/s={rate:.0f}",
        flush=True,
    )
    return counts["ok"] == requests


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--loop", action="append", help="MODULE:FACTORY; repeat for several (default: phaseloop, uvloop)"
    )
    parser.add_argument("--requests", type=int, default=1000)
    parser.add_argument("--concurrency", type=int, default=50)
    opts = parser.parse_args(argv)
    results = [run_one(spec, opts.requests, opts.concurrency) for spec in (opts.loop or DEFAULT_LOOPS)]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
