"""Helpers of the web tests: CSRF tokens from pages, signed-in clients, free ports, a live
server."""

from __future__ import annotations

import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import uvicorn


def free_port() -> int:
    """A free TCP port on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


CSRF = re.compile(r'name="csrf" value="([^"]+)"')


def csrf_of(html: str) -> str:
    m = CSRF.search(html)
    assert m, "the page has no CSRF token"
    return m.group(1)


@contextmanager
def sign_in(url: str, name: str, password: str) -> Iterator[httpx.Client]:
    """An HTTP client signed in as ``name`` (through the real sign-in form)."""
    client = httpx.Client(base_url=url, follow_redirects=True, timeout=120)
    try:
        page = client.get("/login")
        r = client.post(
            "/login", data={"csrf": csrf_of(page.text), "name": name, "password": password}
        )
        assert r.status_code == 200 and 'id="whoami"' in r.text, r.status_code
        yield client
    finally:
        client.close()


@contextmanager
def serving(config: Any) -> Iterator[str]:
    """A real uvicorn server with ``config`` (e.g. :func:`coupler.web.app.server_config`), run
    in a thread for the block; its base URL."""
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield f"http://{config.host}:{config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=15)
