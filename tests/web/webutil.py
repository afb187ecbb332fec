"""Helpers of the web tests: CSRF tokens from pages, signed-in clients, free ports."""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from contextlib import contextmanager

import httpx


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
