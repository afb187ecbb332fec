"""The review screen: a Starlette application over the ledger (server-rendered, no JavaScript).

Every page reads through :mod:`coupler.ledger.review` with the signed-in user's municipality, so
a ``gemeente:`` user's view is limited in the queries themselves; every write goes through the
ledger's own functions with a :class:`~coupler.ledger.Ledger` that names the user in the audit.
An ``analist`` or ``gemeente:`` user gets 403 on every POST that decides.

Logging: the application logs method, route template, status and time of each request — never a
path with a household id, a form field, a password or a cookie.
"""

from __future__ import annotations

import io
import logging
import os
import secrets
import shutil
import tempfile
import time
from collections.abc import Awaitable, Callable
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pandas as pd
import sqlalchemy as sa
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.base import BaseHTTPMiddleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import Match, Mount, Route
from starlette.staticfiles import StaticFiles

from coupler.errors import CouplerError
from coupler.excel import safe_frame
from coupler.ledger import Ledger, LedgerError, approve, withdraw
from coupler.ledger import schema as t
from coupler.ledger.housing import (
    EVENTS,
    municipality_couplings,
    overdue,
    parse_date,
    realised_taakstelling,
    record_event,
    today_utc,
)
from coupler.ledger.kansrijk import permit as kansrijk_permit
from coupler.ledger.omkoppeling import decide as omkoppeling_decide
from coupler.ledger.review import (
    Filters,
    NotVisible,
    audit_view,
    batch_view,
    export_review,
    household_view,
    kansrijk_queue,
    omkoppeling_queue,
    period_overview,
    set_override,
)
from coupler.ledger.review import names as review_names
from coupler.ledger.users import User, authenticate, get_user
from coupler.web.auth import COOKIE, LedgerStore, Sessions, Throttle
from coupler.web.i18n import DEFAULT, LANGUAGES, translate
from coupler.web.svgmap import household_map

log = logging.getLogger("coupler.web")

CSP = (
    "default-src 'none'; script-src 'none'; style-src 'self'; img-src 'self' data:; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}


def _package_dir(name: str) -> Path:
    return Path(str(resources.files("coupler.web") / name))


class _Forbidden(Exception):
    pass


class _BadCsrf(Exception):
    pass


class ReviewApp:
    """The application's state: the ledger's engine, sessions, throttle and templates."""

    def __init__(
        self,
        ledger: Ledger,
        *,
        pepper: bytes | None = None,
        idle_seconds: float = 1800.0,
        secure_cookie: bool = False,
    ) -> None:
        self.ledger = ledger
        self.sessions = Sessions(LedgerStore(ledger, pepper), idle=idle_seconds)
        self.throttle = Throttle()
        self.secure_cookie = secure_cookie
        self.env = Environment(
            loader=FileSystemLoader(str(_package_dir("templates"))),
            autoescape=select_autoescape(default=True, default_for_string=True),
            trim_blocks=True,
            lstrip_blocks=True,
        )

    # -- plumbing ------------------------------------------------------------------------------
    def as_user(self, user: User) -> Ledger:
        """A ledger handle that writes the audit in ``user``'s name (shares the engine)."""
        return Ledger(self.ledger.engine, user=user.name)

    def session(self, request: Request) -> dict[str, Any] | None:
        """The request's session (read from its cookie once per request)."""
        if not hasattr(request.state, "session"):
            request.state.session = self.sessions.load(request.cookies.get(COOKIE))
        session: dict[str, Any] | None = request.state.session
        return session

    def user(self, request: Request) -> User | None:
        s = self.session(request)
        if s is None or not s.get("user"):
            return None
        return get_user(self.ledger, str(s["user"]))

    def render(
        self,
        request: Request,
        template: str,
        session: dict[str, Any],
        user: User | None,
        status: int = 200,
        **context: Any,
    ) -> HTMLResponse:
        lang = session.get("lang", DEFAULT)

        def t(key: str, **values: Any) -> str:
            return translate(key, lang, **values)

        html = self.env.get_template(template).render(
            t=t,
            lang=lang,
            user=user,
            csrf=self.sessions.csrf(session),
            path=request.url.path,
            query=request.url.query,
            **context,
        )
        response = HTMLResponse(html, status_code=status)
        self.set_cookie(response, session)
        return response

    def set_cookie(self, response: Response, session: dict[str, Any]) -> None:
        response.set_cookie(
            COOKIE,
            self.sessions.dump(session),
            max_age=int(self.sessions.idle),
            httponly=True,
            samesite="strict",
            secure=self.secure_cookie,
            path="/",
        )

    async def form(self, request: Request, session: dict[str, Any] | None) -> FormData:
        form = await request.form()
        token = form.get("csrf")
        if not self.sessions.check_csrf(session, token if isinstance(token, str) else None):
            raise _BadCsrf
        return form


def _text(form: FormData, key: str) -> str:
    v = form.get(key)
    return v.strip() if isinstance(v, str) else ""


def _flag(request: Request, key: str) -> bool:
    return request.query_params.get(key, "") in ("1", "on", "true")


def create_app(
    ledger: Ledger,
    *,
    pepper: bytes | None = None,
    idle_seconds: float = 1800.0,
    secure_cookie: bool = False,
) -> Starlette:
    """The review application over ``ledger`` (see the module docstring).

    Sessions are signed with the ledger's secret (:mod:`coupler.ledger.sessions`, made on the
    first start), mixed with ``pepper`` when given; every app on the same ledger with the same
    pepper accepts the same sessions.
    """
    state = ReviewApp(ledger, pepper=pepper, idle_seconds=idle_seconds, secure_cookie=secure_cookie)

    def page(
        fn: Callable[[Request, dict[str, Any], User], Awaitable[Response]],
    ) -> Callable[[Request], Awaitable[Response]]:
        """A page that needs a signed-in user; renders 403 / error pages for ledger errors."""

        async def handler(request: Request) -> Response:
            session = state.session(request)
            user = state.user(request)
            if session is None or user is None:
                target = "/login?" + urlencode({"expired": "1"}) if session is None else "/login"
                return RedirectResponse(target, status_code=303)
            try:
                return await fn(request, session, user)
            except (NotVisible, _Forbidden):
                return state.render(
                    request,
                    "error.html",
                    session,
                    user,
                    403,
                    message=translate("error.forbidden", session.get("lang", DEFAULT)),
                )
            except _BadCsrf:
                return state.render(
                    request,
                    "error.html",
                    session,
                    user,
                    403,
                    message=translate("error.csrf", session.get("lang", DEFAULT)),
                )
            except LedgerError as exc:
                return state.render(request, "error.html", session, user, 400, message=str(exc))

        return handler

    def decider(user: User) -> None:
        if not user.can_decide:
            raise _Forbidden

    # -- sign in -------------------------------------------------------------------------------
    async def login(request: Request) -> Response:
        session = state.session(request) or state.sessions.new()
        if request.method == "GET":
            msg = "login.expired" if request.query_params.get("expired") else None
            return state.render(request, "login.html", session, None, message=msg)
        try:
            form = await state.form(request, session)
        except _BadCsrf:
            session = state.sessions.new(lang=session.get("lang", DEFAULT))
            return state.render(request, "login.html", session, None, 403, message="error.csrf")
        name = _text(form, "name")[:64]
        password = form.get("password")
        password = password if isinstance(password, str) else ""
        client = request.client.host if request.client else "?"
        keys = (f"name:{name.casefold()}", f"addr:{client}")
        wait = state.throttle.wait(*keys)
        if wait > 0:
            log.warning("sign-in refused: throttled")
            return state.render(
                request,
                "login.html",
                session,
                None,
                429,
                message="login.throttled",
                seconds=int(wait) + 1,
            )
        user = authenticate(state.ledger, name, password)
        if user is None:
            state.throttle.fail(*keys)
            log.warning("sign-in failed")
            return state.render(request, "login.html", session, None, 401, message="login.failed")
        state.throttle.success(*keys)
        state.sessions.revoke(session)
        fresh = state.sessions.new(user.name, session.get("lang", DEFAULT))
        response = RedirectResponse("/", status_code=303)
        state.set_cookie(response, fresh)
        log.info("sign-in succeeded")
        return response

    async def logout(request: Request) -> Response:
        session = state.session(request)
        await state.form(request, session) if session else None
        response = RedirectResponse("/login", status_code=303)
        if session is not None:
            state.sessions.revoke(session)
        response.delete_cookie(COOKIE, path="/")
        return response

    async def language(request: Request) -> Response:
        session = state.session(request) or state.sessions.new()
        lang = request.path_params["lang"]
        session["lang"] = lang if lang in LANGUAGES else DEFAULT
        back = request.query_params.get("next", "/")
        if not back.startswith("/") or back.startswith("//"):
            back = "/"
        response = RedirectResponse(back, status_code=303)
        state.set_cookie(response, session)
        return response

    async def home(request: Request) -> Response:
        return RedirectResponse("/periode", status_code=303)

    # -- pages ---------------------------------------------------------------------------------
    @page
    async def period(request: Request, session: dict[str, Any], user: User) -> Response:
        view = period_overview(state.ledger, user.municipality)
        lang = session.get("lang", DEFAULT)
        figures = [] if view is None else period_maps(state.ledger, view, user.municipality, lang)
        if user.municipality is None or view is None:
            return state.render(request, "period.html", session, user, view=view, maps=figures)
        return state.render(
            request,
            "period_gemeente.html",
            session,
            user,
            view=view,
            maps=figures,
            housing=municipality_view(state.ledger, user.municipality),
            events=EVENTS,
            today=today_utc().isoformat(),
            ok=request.query_params.get("ok"),
        )

    @page
    async def housing_event(request: Request, session: dict[str, Any], user: User) -> Response:
        """A ``gemeente:`` user records a housing event for one of its own couplings."""
        form = await state.form(request, session)
        own = user.municipality
        if own is None:
            raise _Forbidden  # only a municipality reports its own housing events
        household_id = _text(form, "household_id")
        mine = municipality_couplings(state.ledger, own)
        if household_id not in set(mine["household_id"].astype(str)):
            raise _Forbidden  # another municipality's household (or none at all)
        event = _text(form, "event")
        if event not in EVENTS:
            raise LedgerError("choose an event: offered, housed, refused or inburgering")
        when = parse_date(_text(form, "date"))
        if when is None:
            raise LedgerError("give the date as YYYY-MM-DD")
        try:
            record_event(
                state.as_user(user),
                household_id,
                own,
                event,
                when,
                reason=_text(form, "reason")[:500] or None,
            )
        except CouplerError as exc:
            problems = getattr(exc, "problems", [])
            raise LedgerError("; ".join(p.message for p in problems) or str(exc)) from None
        return RedirectResponse(f"/periode?ok={event}#housing", status_code=303)

    def _filters(request: Request) -> Filters:
        q = request.query_params
        size = q.get("persons", "")
        try:
            page_no = int(q.get("page", "1"))
        except ValueError:
            page_no = 1
        try:
            per_page = int(q.get("per_page", "100"))
        except ValueError:
            per_page = 100
        return Filters(
            broken=_flag(request, "broken"),
            conflicts=_flag(request, "conflicts"),
            overridden=_flag(request, "overridden"),
            municipality=q.get("municipality") or None,
            province=q.get("province") or None,
            azc=q.get("azc") or None,
            persons=int(size) if size.isdigit() else None,
            sort=q.get("sort", "household_id"),
            descending=q.get("dir") == "desc",
            page=page_no,
            per_page=per_page,
        )

    def _batch_id(request: Request) -> int:
        try:
            return int(request.path_params["batch"])
        except ValueError:
            raise HTTPException(404) from None

    @page
    async def batch(request: Request, session: dict[str, Any], user: User) -> Response:
        f = _filters(request)
        view = batch_view(state.ledger, _batch_id(request), user.municipality, f)
        params = {k: v for k, v in request.query_params.items() if k != "page"}
        return state.render(
            request,
            "batch.html",
            session,
            user,
            view=view,
            f=f,
            page_link=lambda n: urlencode({**params, "page": n}),
            provinces=sorted(view["names"]["province"].unique()),
            ok=request.query_params.get("ok"),
        )

    @page
    async def batch_approve(request: Request, session: dict[str, Any], user: User) -> Response:
        form = await state.form(request, session)
        decider(user)
        b = _batch_id(request)
        try:
            approve(state.as_user(user), b, reason=_text(form, "reason") or None)
        except LedgerError as exc:
            raise LedgerError(str(exc).replace("--reason", "a reason")) from None
        return RedirectResponse(f"/batch/{b}?ok=approved", status_code=303)

    @page
    async def batch_withdraw(request: Request, session: dict[str, Any], user: User) -> Response:
        form = await state.form(request, session)
        decider(user)
        b = _batch_id(request)
        withdraw(state.as_user(user), b, reason=_text(form, "reason") or None)
        return RedirectResponse(f"/batch/{b}?ok=withdrawn", status_code=303)

    @page
    async def batch_export(request: Request, session: dict[str, Any], user: User) -> Response:
        b = _batch_id(request)
        batch_view(state.ledger, b, user.municipality, Filters(per_page=1))  # 403 if not visible
        tmp = Path(os.environ.get("TMPDIR", "/tmp")) / f"coupler-review-{secrets.token_hex(8)}.xlsx"
        try:
            export_review(state.ledger, b, tmp, user.municipality)
            data = tmp.read_bytes()
        finally:
            tmp.unlink(missing_ok=True)
        return Response(
            data,
            media_type="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="batch-{b}-review.xlsx"'},
        )

    @page
    async def household(request: Request, session: dict[str, Any], user: User) -> Response:
        b = _batch_id(request)
        hid = request.path_params["household"]
        view = household_view(state.ledger, b, hid, user.municipality)
        svg = household_map(view)
        housing = None
        if user.municipality is not None:
            mine = municipality_couplings(state.ledger, user.municipality)
            match = mine[mine["coupling_id"] == view["coupling"]["id"]]
            housing = match.to_dict("records")[0] if len(match) else None
        return state.render(
            request,
            "household_gemeente.html" if housing else "household.html",
            session,
            user,
            view=view,
            svg=svg,
            housing=housing,
            events=EVENTS,
            today=today_utc().isoformat(),
            ok=request.query_params.get("ok"),
        )

    @page
    async def override(request: Request, session: dict[str, Any], user: User) -> Response:
        form = await state.form(request, session)
        decider(user)
        b = _batch_id(request)
        hid = request.path_params["household"]
        household_view(state.ledger, b, hid, user.municipality)
        set_override(
            state.as_user(user), b, hid, _text(form, "municipality"), _text(form, "reason")
        )
        return RedirectResponse(f"/batch/{b}/household/{_quote(hid)}?ok=override", status_code=303)

    def queue_page(queue: str) -> Callable[[Request], Awaitable[Response]]:
        read = omkoppeling_queue if queue == "omkoppeling" else kansrijk_queue

        @page
        async def handler(request: Request, session: dict[str, Any], user: User) -> Response:
            rows = read(state.ledger, user.municipality)
            return state.render(
                request,
                f"{queue}.html",
                session,
                user,
                rows=rows.to_dict("records"),
                ok=request.query_params.get("ok"),
                replan=request.query_params.get("batch"),
            )

        return handler

    def _item(request: Request) -> int:
        try:
            return int(request.path_params["item"])
        except ValueError:
            raise HTTPException(404) from None

    @page
    async def decide(request: Request, session: dict[str, Any], user: User) -> Response:
        """Approve or reject an omkoppeling proposal through the ledger: an approved move
        re-couples the household and moves the quota (:func:`coupler.ledger.omkoppeling.decide`).
        """
        form = await state.form(request, session)
        decider(user)
        queue = request.path_params["queue"]
        if queue == "kansrijk":
            return await permit_decision(request, form, user)
        if queue != "omkoppeling":
            raise HTTPException(404)
        item = _item(request)
        decision = _text(form, "decision")
        if decision not in ("approved", "rejected"):
            raise LedgerError("a decision is approved or rejected")
        reason = _text(form, "reason")[:500] or None
        try:
            omkoppeling_decide(
                state.as_user(user), [item], approve=decision == "approved", reason=reason
            )
        except LedgerError as exc:
            raise LedgerError(str(exc).replace("--reason", "a reason")) from None
        done = "recoupled" if decision == "approved" else "declined"
        return RedirectResponse(f"/omkoppeling?ok={done}", status_code=303)

    async def permit_decision(request: Request, form: FormData, user: User) -> Response:
        """Settle a Kansrijke Koppeling with the IND's permit decision through
        :func:`coupler.ledger.kansrijk.permit`: granted confirms (or re-plans) the coupling,
        refused releases the reservation."""
        item = _item(request)
        decision = _text(form, "decision")
        if decision not in ("granted", "refused"):
            raise LedgerError("a permit decision is granted or refused")
        with state.ledger.read() as conn:
            row = conn.execute(
                sa.select(t.provisional.c.household_id, t.provisional.c.status).where(
                    t.provisional.c.id == item
                )
            ).first()
        if row is None:
            raise HTTPException(404)
        if row.status != "active":
            raise LedgerError(f"this Kansrijke Koppeling is {row.status}; it was settled before")
        folder = Path(tempfile.mkdtemp(prefix="coupler-permit-"))
        path = folder / "permit.csv"
        try:
            pd.DataFrame({"household_id": [row.household_id], "decision": [decision]}).to_csv(
                path, index=False
            )
            report = kansrijk_permit(state.as_user(user), path)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        outcome = str(report["outcome"].iloc[0]) if len(report) else decision
        query = {"ok": outcome}
        if "batch" in report.columns and pd.notna(report["batch"].iloc[0]):
            query["batch"] = str(int(report["batch"].iloc[0]))
        return RedirectResponse("/kansrijk?" + urlencode(query), status_code=303)

    def _audit(request: Request, user: User, limit: int | None) -> pd.DataFrame:
        if user.municipality is not None:
            raise _Forbidden  # the audit names households of every municipality
        q = request.query_params
        return audit_view(
            state.ledger,
            who=q.get("who"),
            action=q.get("action"),
            subject=q.get("subject"),
            since=q.get("since"),
            limit=limit,
        )

    @page
    async def audit(request: Request, session: dict[str, Any], user: User) -> Response:
        rows = _audit(request, user, 500)
        return state.render(
            request,
            "audit.html",
            session,
            user,
            rows=rows.to_dict("records"),
            q=request.query_params,
            query_string=request.url.query,
        )

    @page
    async def audit_csv(request: Request, session: dict[str, Any], user: User) -> Response:
        rows = _audit(request, user, None)
        buf = io.StringIO()
        safe_frame(rows).to_csv(buf, index=False, lineterminator="\n")
        return Response(
            buf.getvalue(),
            media_type="text/csv; charset=utf-8",
            headers={"Content-Disposition": 'attachment; filename="audit.csv"'},
        )

    routes = [
        Route("/", home),
        Route("/login", login, methods=["GET", "POST"]),
        Route("/logout", logout, methods=["POST"]),
        Route("/lang/{lang}", language),
        Route("/periode", period),
        Route("/gemeente/event", housing_event, methods=["POST"]),
        Route("/batch/{batch}", batch),
        Route("/batch/{batch}/approve", batch_approve, methods=["POST"]),
        Route("/batch/{batch}/withdraw", batch_withdraw, methods=["POST"]),
        Route("/batch/{batch}/review.xlsx", batch_export),
        # Household ids may hold any character, a slash too: the override route comes first.
        Route("/batch/{batch}/household/{household:path}/override", override, methods=["POST"]),
        Route("/batch/{batch}/household/{household:path}", household),
        Route("/omkoppeling", queue_page("omkoppeling")),
        Route("/kansrijk", queue_page("kansrijk")),
        Route("/{queue}/{item}/decide", decide, methods=["POST"]),
        Route("/audit", audit),
        Route("/audit.csv", audit_csv),
        Mount("/static", StaticFiles(directory=str(_package_dir("static"))), name="static"),
    ]
    app = Starlette(routes=routes, middleware=[Middleware(_Headers)])
    app.state.review = state
    return app


def period_maps(
    ledger: Ledger, view: dict[str, Any], municipality: str | None, lang: str
) -> list[dict[str, str]]:
    """Inline-SVG choropleths for the Periode page (:mod:`coupler.analysis.maps`, no script):
    the fill share (coupled / target) of each municipality the reader may see, and the realised
    share (housed / target) once the ledger holds housing events."""
    from coupler.analysis import maps
    from coupler.scenario import load_scenario

    with ledger.read() as conn:
        period = ledger.period(conn, view["status"]["period"])
    cities = maps.largest_cities(load_scenario(period.scenario, None)[0].to_dict("records"))
    m = view["municipalities"]
    fill = {
        str(r["code"]): (None if pd.isna(r["fill"]) else float(r["fill"]))
        for r in m.to_dict("records")
    }
    tips = {
        str(r["code"]): translate(
            "map.fill_tip", lang, name=r["municipality"], coupled=r["coupled"], target=r["target"]
        )
        for r in m.to_dict("records")
    }
    out = [
        {
            "id": "map-fill",
            "title": translate("map.fill", lang),
            "svg": maps.choropleth(
                fill,
                maps.share_scale(translate("map.fill_scale", lang)),
                tips=tips,
                cities=cities,
                label=translate("map.fill", lang),
            ),
        }
    ]
    realised = realised_taakstelling(ledger, period.name, municipality=municipality)
    if int(realised["housed"].sum()) > 0:
        share = {
            str(r.municipality): (r.housed / r.target if r.target > 0 else None)
            for r in realised.itertuples(index=False)
        }
        tips = {
            str(r.municipality): translate(
                "map.realised_tip", lang, name=r.name, housed=r.housed, target=r.target
            )
            for r in realised.itertuples(index=False)
        }
        out.append(
            {
                "id": "map-realised",
                "title": translate("map.realised", lang),
                "svg": maps.choropleth(
                    share,
                    maps.realised_scale(translate("map.realised_scale", lang)),
                    tips=tips,
                    cities=cities,
                    label=translate("map.realised", lang),
                ),
            }
        )
    return out


def municipality_view(ledger: Ledger, municipality: str) -> dict[str, Any]:
    """One municipality's housing follow-up, every query filtered to ``municipality``: its
    couplings (size, composition, hard criteria, expected arrival, events), its realised
    taakstelling against the quota and its overdue list."""
    couplings = municipality_couplings(ledger, municipality)
    with ledger.read() as conn:
        period = ledger.period(conn, None)
        nm = review_names(conn, period.id)["name"].to_dict()
    rows = []
    for r in couplings.to_dict("records"):
        r["criteria"] = [
            (part.split(":")[0], nm.get(part.split(":")[1], part.split(":")[1]))
            for part in str(r["hard_criteria"] or "").split(";")
            if ":" in part
        ]
        rows.append(r)
    realised = realised_taakstelling(ledger, period.name, municipality=municipality)
    late = overdue(ledger, municipality=municipality)
    return {
        "municipality": municipality,
        "name": nm.get(municipality, municipality),
        "period": period.name,
        "couplings": rows,
        "realised": realised.to_dict("records"),
        "overdue": late.to_dict("records"),
    }


def server_config(app: Starlette, host: str, port: int, **options: Any) -> Any:
    """The uvicorn configuration the review screen runs with.

    uvicorn's access log is off: its lines carry full paths, and paths carry household ids. The
    application logs each request by its route template instead (:class:`_Headers`).
    """
    import uvicorn

    config = uvicorn.Config(app, host=host, port=port, access_log=False, **options)
    # uvicorn writes access lines whenever its access logger has a handler; disable the logger.
    logging.getLogger("uvicorn.access").disabled = True
    return config


def _quote(text: str) -> str:
    from urllib.parse import quote

    return quote(text, safe="")


class _Headers(BaseHTTPMiddleware):
    """Security headers on every response; one log line per request without personal values."""

    async def dispatch(
        self, request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        start = time.perf_counter()
        response = await call_next(request)
        for k, v in SECURITY_HEADERS.items():
            response.headers.setdefault(k, v)
        route = "?"
        for r in request.app.routes:
            match, _ = r.matches(request.scope)
            if match == Match.FULL:
                route = getattr(r, "path", "?")
                break
        log.info(
            "%s %s %d %.0f ms",
            request.method,
            route,
            response.status_code,
            1000 * (time.perf_counter() - start),
        )
        return response


__all__ = ["CSP", "SECURITY_HEADERS", "create_app", "municipality_view", "server_config"]
