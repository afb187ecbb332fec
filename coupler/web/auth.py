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

    def secret(self, fresh: bool = False) -> bytes:
        """The signing secret (as recently read as the store likes, or ``fresh``ly)."""
        ...

    def lookup(self, sid: str) -> tuple[bytes, bool]:
        """The signing secret now and whether session ``sid`` was revoked."""
        ...

    def revoke(self, sid: str, until: float) -> None:
        """Refuse session ``sid`` from now on (at least until ``until``, epoch seconds)."""
        ...


@dataclass
class MemoryStore:
    """A secret and revocations held by one process only (tests, throw-away apps)."""

    key: bytes
    revoked: set[str] = field(default_factory=set)

    def secret(self, fresh: bool = False) -> bytes:
        return self.key

    def lookup(self, sid: str) -> tuple[bytes, bool]:
        return self.key, sid in self.revoked

    def revoke(self, sid: str, until: float) -> None:
        self.revoked.add(sid)


#: Seconds a :class:`LedgerStore` signs new cookies with the secret it read last, without reading
#: it again. Reading a session always checks it against the ledger's secret of that moment.
FRESH_SECONDS = 1.0


@dataclass
class LedgerStore:
    """The secret and revocations in the ledger, shared by every server process on it.

    Every session read (:meth:`Sessions.load`) checks, in one query, that its secret is still
    the ledger's and that it did not sign out, so a rotation (``coupler user rotate-secret``) or
    a sign-out in any process takes effect at the next request everywhere. With a ``pepper`` the
    signing key is HMAC-SHA256(pepper, the ledger's secret): every server on the ledger needs the
    same pepper.
    """

    ledger: Ledger
    pepper: bytes | None = None

    def __post_init__(self) -> None:
        self._last = (self._key(sessions.prepare(self.ledger)), time.monotonic())

    def _key(self, secret: bytes | None) -> bytes:
        if secret is None:  # the row was removed by hand: make a new one (everyone signs in again)
            secret = sessions.prepare(self.ledger)
        key = (
            secret
            if self.pepper is None
            else hmac.new(self.pepper, secret, hashlib.sha256).digest()
        )
        self._last = (key, time.monotonic())
        return key

    def secret(self, fresh: bool = False) -> bytes:
        key, at = self._last
        if fresh or time.monotonic() - at > FRESH_SECONDS:
            return self._key(sessions.current_secret(self.ledger))
        return key

    def lookup(self, sid: str) -> tuple[bytes, bool]:
        secret, revoked = sessions.lookup(self.ledger, sid)
        return self._key(secret), revoked

    def revoke(self, sid: str, until: float) -> None:
        sessions.revoke(self.ledger, sid, until)


@dataclass
class Sessions:
    """Signs and reads session cookies with the secret of ``store``; revokes session ids."""

    store: SessionStore
    idle: float = 1800.0

    def _signer(self, key: bytes) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(key, salt="coupler-session")

    def new(self, user: str | None = None, lang: str = "nl") -> dict[str, Any]:
        """A fresh session (a new id: sign-in always starts a new session)."""
        return {"sid": secrets.token_urlsafe(24), "user": user, "lang": lang}

    def dump(self, session: dict[str, Any]) -> str:
        return self._signer(self.store.secret()).dumps(session)

    def _verify(self, cookie: str, key: bytes) -> Any:
        try:
            return self._signer(key).loads(cookie, max_age=int(self.idle))
        except BadSignature:  # includes SignatureExpired
            return None

    def load(self, cookie: str | None) -> dict[str, Any] | None:
        """The session in ``cookie``, or None when absent, forged, signed with another secret
        than the store's now, idle too long or revoked."""
        if not cookie:
            return None
        key = self.store.secret()
        data = self._verify(cookie, key)
        if data is None:
            # Signed after a rotation this process has not read yet?
            newer = self.store.secret(fresh=True)
            if newer == key:
                return None
            key, data = newer, self._verify(cookie, newer)
        if not isinstance(data, dict):
            return None
        current, revoked = self.store.lookup(str(data.get("sid")))
        if revoked or not hmac.compare_digest(current, key):
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
