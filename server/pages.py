"""Server-rendered pages (templates in ``web/templates``): programme, session, register, sign in,
profile and invitations. Forms post back here with a CSRF token; every page works without
JavaScript, which only adds local-time display."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route, WebSocketRoute
from starlette.templating import Jinja2Templates

from server import accounts, attendance, geo, i18n, programme, transcripts
from server.errors import ForumliveError, InvalidInput, NotSignedIn
from server.http import authenticate, csrf_protected, csrf_token, current_person, db_of, read_query, sign_in, sign_out
from server.lite import LiteSocket
from server.reports import output, privacy
from server.reports.figures import compute
from server.rooms.store import role_of, transcript
from server.schemas import (
    InvitationCreate,
    ProfileUpdate,
    ProgrammeQuery,
    RegisterRequest,
    ReportQuery,
    TranscriptQuery,
    TranscriptTrackQuery,
    parse,
)
from server.settings import Settings
from server.vocab import (
    ACTION_LINES,
    GENDER_LABELS,
    SDGS,
    SESSION_TYPE_LABELS,
    STAKEHOLDER_LABELS,
    TRACK_LABELS,
)
from web import TEMPLATES_DIR

PROFILE_TEXT_FIELDS = ("name", "organisation", "title", "country", "gender", "stakeholder_type")
PROFILE_FLAGS = ("country_consent", "gender_consent", "stakeholder_consent", "high_level")


def make_templates(settings: Settings) -> Jinja2Templates:
    templates = Jinja2Templates(directory=str(TEMPLATES_DIR))
    env = templates.env
    env.filters["zoneinfo"] = ZoneInfo
    env.filters["isotime"] = lambda epoch: datetime.fromtimestamp(epoch, UTC).isoformat()
    env.filters["clock"] = _clock
    env.filters["when"] = i18n.format_when
    env.filters["day"] = i18n.format_day
    env.filters["hour"] = i18n.format_hour
    env.filters["number"] = i18n.format_number
    env.filters["label"] = i18n.gettext  # a label from data: translated when catalogued, never %-formatted
    env.filters["reason"] = i18n.field_reason  # why a form field was refused
    catalogues = i18n.catalogues()
    english_countries = geo.country_choices()
    env.add_extension("jinja2.ext.i18n")
    env.install_gettext_callables(catalogues.gettext, catalogues.ngettext, newstyle=True)  # type: ignore[attr-defined]
    env.globals.update(
        session_types=SESSION_TYPE_LABELS,
        tracks=TRACK_LABELS,
        action_lines=ACTION_LINES,
        sdgs=SDGS,
        genders=GENDER_LABELS,
        stakeholders=STAKEHOLDER_LABELS,
        country_choices=lambda: i18n.country_names(english_countries),
        country_name=geo.country_name,
        language_name=lambda code: i18n.language_name(code) or geo.language_name(code),
        region_labels={r.value: label for r, label in geo.REGION_LABELS.items()},
        languages=i18n.LANGUAGES,
        caption_display=accounts.caption_display,
        page_catalogue=i18n.page_catalogue,
    )
    return templates


def _clock(seconds: float) -> str:
    """Seconds into a session as m:ss or h:mm:ss."""
    whole = max(0, int(seconds))
    hours, rest = divmod(whole, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def use_language(request: Request) -> str:
    """The request's language, set for what runs next in this request (templates, labels, messages)."""
    language = i18n.negotiate(request.cookies.get(i18n.COOKIE), request.headers.get("accept-language"))
    i18n.current.set(language)
    return language


def render(request: Request, name: str, context: dict[str, Any] | None = None, status_code: int = 200) -> Response:
    templates: Jinja2Templates = request.app.state.templates
    flash = request.session.pop("flash", None)
    language = use_language(request)
    base = {
        "person": getattr(request.state, "person", None),
        "csrf_token": csrf_token(request),
        "flash": flash,
        "language": language,
        "direction": i18n.direction(language),
        "here": request.url.path,
    }
    return templates.TemplateResponse(request, name, {**base, **(context or {})}, status_code=status_code)


def error_page(request: Request, status: int, message: str) -> Response:
    return render(request, "error.html", {"status": status, "message": message}, status_code=status)


def _flash(request: Request, message: str, **values: str) -> None:
    """A notice for the next page, in the request's language (message: an English msgid, %(name)s values)."""
    use_language(request)
    request.session["flash"] = i18n.gettext(message) % values


def _safe_next(value: object, default: str = "/") -> str:
    """Only local paths are followed after sign-in (no open redirects)."""
    if isinstance(value, str) and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    return default


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _form_dict(form: FormData, text_fields: tuple[str, ...], flags: tuple[str, ...]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name in text_fields:
        value = form.get(name)
        if isinstance(value, str) and value.strip():
            data[name] = value.strip() if name != "password" else value
    for name in flags:
        data[name] = form.get(name) == "on"
    return data


def _field_errors(exc: ForumliveError) -> dict[str, str]:
    return {f.field: f.reason for f in exc.fields} or {"form": exc.message}


def _invalid_page(request: Request, exc: ForumliveError) -> Response:
    """A 422 page naming what was wrong with the query."""
    return error_page(request, 422, "; ".join(f"{k}: {v}" for k, v in _field_errors(exc).items()))


# Programme ----------------------------------------------------------------------------------------


async def programme_page(request: Request) -> Response:
    await current_person(request)
    errors: dict[str, str] = {}
    try:
        query = read_query(request, ProgrammeQuery)
    except InvalidInput as exc:
        errors = _field_errors(exc)
        query = ProgrammeQuery()
    data = await db_of(request).read(programme.programme, query)
    days: list[date] = []
    if data.forum is not None:
        span = (data.forum.end_date - data.forum.start_date).days
        days = [data.forum.start_date + timedelta(days=i) for i in range(min(span, 90) + 1)]
    context = {"programme": data, "query": query, "days": days, "errors": errors}
    return render(request, "programme.html", context, status_code=422 if errors else 200)


async def session_page(request: Request) -> Response:
    person = await current_person(request)
    session_id = int(request.path_params["session_id"])
    db = db_of(request)
    session = await db.read(programme.session_public, session_id)
    forum = await db.read(programme.get_forum, session.forum_id)
    registered = bool(person) and await db.read(programme.is_registered, person.id, session_id)
    context = {
        "s": session,
        "forum": forum,
        "registered": registered,
        "invitation_link": request.session.pop("invitation_link", None),
    }
    return render(request, "session.html", context)


async def room_page(request: Request) -> Response:
    """The live room of a session (signed-in people only; the socket re-checks everything)."""
    person = await current_person(request)
    session_id = int(request.path_params["session_id"])
    if person is None:
        return _redirect(f"/signin?next=/sessions/{session_id}/room")
    db = db_of(request)
    session = await db.read(programme.session_public, session_id)
    role = await db.read(role_of, person, session_id)
    return render(request, "room.html", {"s": session, "role": role.value})


async def lite_page(request: Request) -> Response:
    """The lite page of a session for poor connections: captions, Q&A, optional audio, no video."""
    person = await current_person(request)
    session_id = int(request.path_params["session_id"])
    if person is None:
        return _redirect(f"/signin?next=/sessions/{session_id}/lite")
    session = await db_of(request).read(programme.session_public, session_id)
    return render(request, "lite.html", {"s": session, "lite": True})


async def cafe_page(request: Request) -> Response:
    """A knowledge café's floor: tables, rounds, the table's chat and notes (the socket re-checks everything)."""
    person = await current_person(request)
    session_id = int(request.path_params["session_id"])
    if person is None:
        return _redirect(f"/signin?next=/sessions/{session_id}/cafe")
    db = db_of(request)
    session = await db.read(programme.session_public, session_id)
    if session.type != "knowledge_cafe":
        return _redirect(f"/sessions/{session_id}/room")
    role = await db.read(role_of, person, session_id)
    return render(request, "cafe.html", {"s": session, "role": role.value})


async def transcript_page(request: Request) -> Response:
    """A session's transcript: what each speaker said, in order, with downloads."""
    person = await current_person(request)
    session_id = int(request.path_params["session_id"])
    db = db_of(request)
    session = await db.read(programme.session_public, session_id)
    try:
        track = read_query(request, TranscriptTrackQuery).track.value
    except InvalidInput as exc:
        return _invalid_page(request, exc)
    captions = await db.read(transcript, session_id, track)
    if person is not None:  # reading the transcript is attending on the transcript channel
        await db.write(_transcript_view, session_id, person.id)
    context = {"s": session, "blocks": transcripts.blocks(captions), "count": len(captions), "track": track}
    return render(request, "transcript.html", context)


def _transcript_view(db: Any, session_id: int, person_id: int) -> None:  # noqa: ANN401 - a database session
    now = datetime.now(UTC)
    visit = attendance.open_visit(db, session_id, person_id, "transcript", now)
    attendance.close_visit(db, visit, now)


async def transcript_search_page(request: Request) -> Response:
    """Search what was said across the forum's sessions."""
    await current_person(request)
    errors: dict[str, str] = {}
    hits: list[transcripts.Hit] = []
    q = request.query_params.get("q", "")
    if q.strip():
        try:
            query = read_query(request, TranscriptQuery)
            hits = await db_of(request).read(transcripts.search, query.q, query.forum, query.limit)
        except InvalidInput as exc:
            errors = _field_errors(exc)
    context = {"q": q, "hits": hits, "errors": errors}
    return render(request, "transcripts.html", context, status_code=422 if errors else 200)


async def report_page(request: Request) -> Response:
    """A forum's key figures laid out like the forum's key-figures slides, charts as SVG. Published
    (small cells hidden) for everyone; raw for organizers who ask (``?raw=true``)."""
    person = await current_person(request)
    forum_id = int(request.path_params["forum_id"])
    try:
        query = read_query(request, ReportQuery)
    except InvalidInput as exc:
        return _invalid_page(request, exc)
    if query.raw:
        accounts.require_organizer(person)
    figures = await db_of(request).read(compute, query.scope(forum_id))
    data = figures.as_dict() if query.raw else privacy.publish(figures)
    use_language(request)  # the charts' labels are translated in report_context
    return render(request, "report.html", report_context(data, raw=query.raw, query=query))


def report_context(data: dict[str, Any], raw: bool = False, query: ReportQuery | None = None) -> dict[str, Any]:
    """What report.html needs (also used by ``forumlive report`` to write the page to a file)."""
    tr = i18n.gettext  # in the page's language (English for the command line)
    undisclosed = i18n.gettext("Not disclosed")
    sdg = i18n.gettext("SDG %(number)s")
    region_labels = {r.value: tr(label) for r, label in geo.REGION_LABELS.items()}
    labels = {
        "by_region": {**region_labels, "not_disclosed": undisclosed},
        "by_gender": {**{g.value: tr(label) for g, label in GENDER_LABELS.items()}, "not_disclosed": undisclosed},
        "by_stakeholder": {
            **{k.value: tr(label) for k, label in STAKEHOLDER_LABELS.items()},
            "not_disclosed": undisclosed,
        },
        "sessions_by_track": {t.value: tr(label) for t, label in TRACK_LABELS.items()},
        "sessions_by_type": {t.value: tr(label) for t, label in SESSION_TYPE_LABELS.items()},
        "sessions_by_action_line": {k: f"{k} {tr(v)}" for k, v in ACTION_LINES.items()},
        "sessions_by_sdg": {str(k): f"{sdg % {'number': k}} {tr(v)}" for k, v in SDGS.items()},
        "by_country": {
            c: i18n.country_label(c, geo.country_name(c)) for c in data["by_country"] if c != "not_disclosed"
        }
        | {"not_disclosed": undisclosed},
    }
    charts = {key: output.bars(data[key], labels.get(key)) for key in output.DISTRIBUTIONS}
    return {"r": data, "raw": raw, "charts": charts, "query": query or ReportQuery()}


async def dashboard_page(request: Request) -> Response:
    """Organizers' live dashboard (the figures come from /api/forums/{id}/live, refreshed every 5 s)."""
    person = await current_person(request)
    forum_id = int(request.path_params["forum_id"])
    if person is None:
        return _redirect(f"/signin?next=/forums/{forum_id}/dashboard")
    accounts.require_organizer(person)
    forum = await db_of(request).read(programme.get_forum, forum_id)
    return render(request, "dashboard.html", {"forum": forum})


async def session_registration(request: Request) -> Response:
    person = await current_person(request)
    session_id = int(request.path_params["session_id"])
    if person is None:
        return _redirect(f"/signin?next=/sessions/{session_id}")
    form = await request.form()
    db = db_of(request)
    if form.get("action") == "unregister":
        await db.write(programme.unregister_from_session, person, session_id)
        _flash(request, i18n.N_("Removed from your agenda."))
    else:
        await db.write(programme.register_for_session, person, session_id)
        _flash(request, i18n.N_("Added to your agenda."))
    return _redirect(f"/sessions/{session_id}")


async def session_invitation(request: Request) -> Response:
    """Organizers create a speaker or moderator link from the session page; it is shown once."""
    person = await current_person(request)
    session_id = int(request.path_params["session_id"])
    form = await request.form()
    role = str(form.get("role") or "")
    try:
        data = parse(InvitationCreate, {"role": role})
        ttl = timedelta(hours=request.app.state.settings.invitation_ttl_h)
        token, invitation = await db_of(request).write(accounts.create_invitation, person, session_id, data.role, ttl)
    except ForumliveError as exc:
        return error_page(request, exc.status, exc.message)
    url = f"{request.app.state.settings.effective_public_url}/invitations/{token}"
    request.session["invitation_link"] = {"url": url, "role": role, "expires_at": invitation.expires_at.isoformat()}
    return _redirect(f"/sessions/{session_id}#invite")


# Accounts -----------------------------------------------------------------------------------------


async def register_page(request: Request) -> Response:
    person = await current_person(request)
    next_url = _safe_next(request.query_params.get("next"))
    if request.method == "GET":
        if person is not None:
            return _redirect(next_url)
        return render(request, "register.html", {"values": {}, "errors": {}, "next": next_url})
    form = await request.form()
    next_url = _safe_next(form.get("next"))
    values = _form_dict(form, ("email", "password", *PROFILE_TEXT_FIELDS), PROFILE_FLAGS)
    try:
        data = parse(RegisterRequest, values)
        created = await db_of(request).write(accounts.register, data)
    except ForumliveError as exc:
        values.pop("password", None)
        context = {"values": values, "errors": _field_errors(exc), "next": next_url}
        return render(request, "register.html", context, status_code=exc.status)
    sign_in(request, created)
    _flash(request, i18n.N_("Welcome, %(name)s. Your account is ready."), name=created.name)
    return _redirect(next_url)


async def signin_page(request: Request) -> Response:
    await current_person(request)
    next_url = _safe_next(request.query_params.get("next"))
    if request.method == "GET":
        return render(request, "signin.html", {"values": {}, "errors": {}, "next": next_url})
    form = await request.form()
    next_url = _safe_next(form.get("next"))
    email = str(form.get("email") or "")
    try:
        person = await authenticate(request, email, str(form.get("password") or ""))
    except ForumliveError as exc:
        context = {"values": {"email": email}, "errors": {"form": exc.message}, "next": next_url}
        return render(request, "signin.html", context, status_code=exc.status)
    sign_in(request, person)
    _flash(request, i18n.N_("Signed in as %(name)s."), name=person.name)
    return _redirect(next_url)


async def signout_page(request: Request) -> Response:
    sign_out(request)
    _flash(request, i18n.N_("Signed out."))
    return _redirect("/")


async def profile_page(request: Request) -> Response:
    person = await current_person(request)
    if person is None:
        return _redirect("/signin?next=/profile")
    db = db_of(request)
    errors: dict[str, str] = {}
    status = 200
    if request.method == "POST":
        form = await request.form()
        values = _form_dict(form, PROFILE_TEXT_FIELDS, PROFILE_FLAGS)
        # A blank select means "not stated"; an unticked consent withdraws it. Either way the answer is erased.
        for name in ("country", "gender", "stakeholder_type"):
            consent = "stakeholder_consent" if name == "stakeholder_type" else f"{name}_consent"
            if not values[consent]:
                values[name] = None
            values.setdefault(name, None)
        try:
            data = parse(ProfileUpdate, values)
            await db.write(accounts.update_profile, person.id, data)
            _flash(request, i18n.N_("Profile saved."))
            return _redirect("/profile")
        except ForumliveError as exc:
            errors, status = _field_errors(exc), exc.status
    public = await db.read(accounts.profile, await db.read(accounts.get_person, person.id))
    agenda = await db.read(programme.agenda, person.id)
    return render(request, "profile.html", {"profile": public, "agenda": agenda, "errors": errors}, status)


async def caption_display_save(request: Request) -> Response:
    """Keep the signed-in person's caption display settings in their profile (JSON body, from captionprefs.js)."""
    person = await current_person(request)
    if person is None:
        raise NotSignedIn(i18n.N_("sign in first"))
    try:
        values = await request.json()
    except ValueError:
        raise InvalidInput.field("body", "is not valid JSON") from None
    saved = await db_of(request).write(accounts.set_caption_display, person.id, values)
    return JSONResponse(saved)


async def profile_export(request: Request) -> Response:
    person = await current_person(request)
    if person is None:
        return _redirect("/signin?next=/profile")
    data = await db_of(request).read(accounts.export_data, person.id)
    return JSONResponse(data, headers={"Content-Disposition": 'attachment; filename="forumlive-my-data.json"'})


async def profile_delete(request: Request) -> Response:
    person = await current_person(request)
    if person is None:
        return _redirect("/signin?next=/profile")
    form = await request.form()
    try:
        await db_of(request).write(accounts.delete_account, person.id, str(form.get("password") or ""))
    except ForumliveError as exc:
        _flash(request, i18n.N_("Not deleted: %(reason)s"), reason=i18n.gettext(exc.message))
        return _redirect("/profile#delete")
    sign_out(request)
    _flash(request, i18n.N_("Your account and your data were deleted."))
    return _redirect("/")


async def invitation_page(request: Request) -> Response:
    person = await current_person(request)
    token = request.path_params["token"]
    db = db_of(request)
    try:
        invitation, session = await db.read(accounts.find_invitation, token)
    except ForumliveError as exc:
        return error_page(request, exc.status, exc.message)
    if request.method == "POST":
        if person is None:
            return _redirect(f"/signin?next=/invitations/{token}")
        await db.write(accounts.accept_invitation, person, token)
        _flash(request, i18n.N_("You are now %(role)s of this session."), role=i18n.gettext(str(invitation.role)))
        return _redirect(f"/sessions/{session.id}")
    context = {"invitation": invitation, "session": session, "token": token}
    return render(request, "invitation.html", context)


async def language_choice(request: Request) -> Response:
    """Remember the chosen interface language in a cookie and go back to the page it was chosen on."""
    language = request.query_params.get("lang", "")
    response = _redirect(_safe_next(request.query_params.get("next")))
    if language in i18n.LANGUAGES:
        response.set_cookie(i18n.COOKIE, language, max_age=i18n.COOKIE_MAX_AGE_S, samesite="lax")
    return response


def routes() -> list[BaseRoute]:
    protected = csrf_protected
    return [
        Route("/", programme_page, methods=["GET"]),
        Route("/sessions/{session_id:int}", session_page, methods=["GET"]),
        Route("/sessions/{session_id:int}/room", room_page, methods=["GET"]),
        Route("/sessions/{session_id:int}/cafe", cafe_page, methods=["GET"]),
        Route("/sessions/{session_id:int}/lite", lite_page, methods=["GET"]),
        WebSocketRoute("/ws/sessions/{session_id:int}/lite", LiteSocket()),
        Route("/sessions/{session_id:int}/transcript", transcript_page, methods=["GET"]),
        Route("/transcripts", transcript_search_page, methods=["GET"]),
        Route("/language", language_choice, methods=["GET"]),
        Route("/forums/{forum_id:int}/report", report_page, methods=["GET"]),
        Route("/forums/{forum_id:int}/dashboard", dashboard_page, methods=["GET"]),
        Route("/sessions/{session_id:int}/registration", protected(session_registration), methods=["POST"]),
        Route("/sessions/{session_id:int}/invitations", protected(session_invitation), methods=["POST"]),
        Route("/register", protected(register_page), methods=["GET", "POST"]),
        Route("/signin", protected(signin_page), methods=["GET", "POST"]),
        Route("/signout", protected(signout_page), methods=["POST"]),
        Route("/profile", protected(profile_page), methods=["GET", "POST"]),
        Route("/profile/export", profile_export, methods=["GET"]),
        Route("/profile/caption-display", protected(caption_display_save), methods=["POST"]),
        Route("/profile/delete", protected(profile_delete), methods=["POST"]),
        Route("/invitations/{token}", protected(invitation_page), methods=["GET", "POST"]),
    ]
