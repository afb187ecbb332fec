"""Sessions, CSRF tokens and login throttling of the review screen.

* A session is a signed cookie (itsdangerous, HMAC-SHA1 over a server secret) holding a random
  session id, the user name and the language; it is HttpOnly and SameSite=Strict and expires
  after ``idle`` seconds without a request (the signature carries its time; every response
  signs it again). Signing out revokes the session id on the server.
* Every form carries a CSRF token: an HMAC of the session id under the server secret, checked
  on every POST with a constant-time comparison.
* After :data:`MAX_FAILURES` failed sign-ins for one name or one client address, further
  attempts are refused for a time that doubles with every further failure (capped).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from itsdangerous import BadSignature, URLSafeTimedSerializer

COOKIE = "coupler_session"
MAX_FAILURES = 5
BASE_LOCK_SECONDS = 30.0
MAX_LOCK_SECONDS = 900.0


@dataclass
class Sessions:
    """Signs and reads session cookies; remembers revoked session ids."""

    secret: bytes
    idle: float = 1800.0
    revoked: set[str] = field(default_factory=set)

    def __post_init__(self) -> None:
        self._signer = URLSafeTimedSerializer(self.secret, salt="coupler-session")

    def new(self, user: str | None = None, lang: str = "nl") -> dict[str, Any]:
        """A fresh session (a new id: sign-in always starts a new session)."""
        return {"sid": secrets.token_urlsafe(24), "user": user, "lang": lang}

    def dump(self, session: dict[str, Any]) -> str:
        return self._signer.dumps(session)

    def load(self, cookie: str | None) -> dict[str, Any] | None:
        """The session in ``cookie``, or None when absent, forged, idle too long or revoked."""
        if not cookie:
            return None
        try:
            data = self._signer.loads(cookie, max_age=int(self.idle))
        except BadSignature:  # includes SignatureExpired
            return None
        if not isinstance(data, dict) or data.get("sid") in self.revoked:
            return None
        return data

    def revoke(self, session: dict[str, Any]) -> None:
        self.revoked.add(str(session.get("sid")))

    def csrf(self, session: dict[str, Any]) -> str:
        """The CSRF token of a session."""
        return hmac.new(self.secret, str(session["sid"]).encode(), hashlib.sha256).hexdigest()

    def check_csrf(self, session: dict[str, Any] | None, token: str | None) -> bool:
        if session is None or not token:
            return False
        return hmac.compare_digest(self.csrf(session), str(token))


@dataclass
class Throttle:
    """Failed sign-ins per key (a user name, a client address) and when each key may try again."""

    max_failures: int = MAX_FAILURES
    base: float = BASE_LOCK_SECONDS
    cap: float = MAX_LOCK_SECONDS
    _failures: dict[str, int] = field(default_factory=dict)
    _until: dict[str, float] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def wait(self, *keys: str, now: float | None = None) -> float:
        """Seconds until any of ``keys`` may try again (0: now)."""
        t = time.monotonic() if now is None else now
        with self._lock:
            return max([0.0] + [self._until.get(k, 0.0) - t for k in keys])

    def fail(self, *keys: str, now: float | None = None) -> None:
        t = time.monotonic() if now is None else now
        with self._lock:
            for k in keys:
                n = self._failures.get(k, 0) + 1
                self._failures[k] = n
                if n >= self.max_failures:
                    extra = n - self.max_failures
                    self._until[k] = t + min(self.cap, self.base * 2**extra)

    def success(self, *keys: str) -> None:
        with self._lock:
            for k in keys:
                self._failures.pop(k, None)
                self._until.pop(k, None)


__all__ = ["COOKIE", "Sessions", "Throttle"]
