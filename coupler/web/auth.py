"""Sessions, CSRF tokens and login throttling of the review screen.

* A session is a signed cookie (itsdangerous, HMAC-SHA1 over a server secret) holding a random
  session id, the user name and the language; it is HttpOnly and SameSite=Strict and expires
  after ``idle`` seconds without a request (the signature carries its time; every response
  signs it again). Signing out revokes the session id.
* The secret and the revoked ids live in a :class:`SessionStore`: for a server the ledger
  (:class:`LedgerStore`, :mod:`coupler.ledger.sessions`), so a restart signs nobody out, every
  server process on one ledger accepts the others' sessions, and rotating the secret in the
  ledger signs everyone out everywhere at their next request. An optional *pepper* (``serve
  --secret-file`` or ``$COUPLER_SECRET``) is mixed in, so that reading the ledger alone is not
  enough to forge a session.
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
from typing import Any, Protocol

from itsdangerous import BadSignature, URLSafeTimedSerializer

from coupler.ledger import Ledger, sessions

COOKIE = "coupler_session"
MAX_FAILURES = 5
BASE_LOCK_SECONDS = 30.0
MAX_LOCK_SECONDS = 900.0


class SessionStore(Protocol):
    """Where :class:`Sessions` keeps the signing secret and the signed-out session ids."""

    def secret(self) -> bytes:
        """The secret that signs cookies and CSRF tokens now."""
        ...

    def revoke(self, sid: str, until: float) -> None:
        """Refuse session ``sid`` from now on (at least until ``until``, epoch seconds)."""
        ...

    def is_revoked(self, sid: str) -> bool:
        """True when session ``sid`` was revoked."""
        ...


@dataclass
class MemoryStore:
    """A secret and revocations held by one process only (tests, throw-away apps)."""

    key: bytes
    revoked: set[str] = field(default_factory=set)

    def secret(self) -> bytes:
        return self.key

    def revoke(self, sid: str, until: float) -> None:
        self.revoked.add(sid)

    def is_revoked(self, sid: str) -> bool:
        return sid in self.revoked


@dataclass
class LedgerStore:
    """The secret and revocations in the ledger, shared by every server process on it.

    The secret is read at every use, so a rotation (``coupler user rotate-secret``) takes effect
    at once in every process. With a ``pepper`` the signing key is HMAC-SHA256(pepper, the
    ledger's secret): every server on the ledger needs the same pepper.
    """

    ledger: Ledger
    pepper: bytes | None = None

    def __post_init__(self) -> None:
        sessions.prepare(self.ledger)

    def secret(self) -> bytes:
        key = sessions.current_secret(self.ledger)
        if key is None:  # the row was removed by hand: make a new one (everyone signs in again)
            key = sessions.prepare(self.ledger)
        if self.pepper is None:
            return key
        return hmac.new(self.pepper, key, hashlib.sha256).digest()

    def revoke(self, sid: str, until: float) -> None:
        sessions.revoke(self.ledger, sid, until)

    def is_revoked(self, sid: str) -> bool:
        return sessions.is_revoked(self.ledger, sid)


@dataclass
class Sessions:
    """Signs and reads session cookies with the secret of ``store``; revokes session ids."""

    store: SessionStore
    idle: float = 1800.0

    def _signer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self.store.secret(), salt="coupler-session")

    def new(self, user: str | None = None, lang: str = "nl") -> dict[str, Any]:
        """A fresh session (a new id: sign-in always starts a new session)."""
        return {"sid": secrets.token_urlsafe(24), "user": user, "lang": lang}

    def dump(self, session: dict[str, Any]) -> str:
        return self._signer().dumps(session)

    def load(self, cookie: str | None) -> dict[str, Any] | None:
        """The session in ``cookie``, or None when absent, forged, signed with another secret,
        idle too long or revoked."""
        if not cookie:
            return None
        try:
            data = self._signer().loads(cookie, max_age=int(self.idle))
        except BadSignature:  # includes SignatureExpired
            return None
        if not isinstance(data, dict) or self.store.is_revoked(str(data.get("sid"))):
            return None
        return data

    def revoke(self, session: dict[str, Any]) -> None:
        """Refuse this session from now on, in every process that shares the store."""
        self.store.revoke(str(session.get("sid")), time.time() + self.idle)

    def csrf(self, session: dict[str, Any]) -> str:
        """The CSRF token of a session."""
        key = self.store.secret()
        return hmac.new(key, str(session["sid"]).encode(), hashlib.sha256).hexdigest()

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


__all__ = ["COOKIE", "LedgerStore", "MemoryStore", "SessionStore", "Sessions", "Throttle"]
