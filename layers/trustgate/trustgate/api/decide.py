"""The approval-page routes (function `decide`, no IAM auth): GET /decide/{token} shows, POST decides.

The token in the path is the credential. This module parses and guards the HTTP side — body formats,
CSRF and cross-site checks, HTML or JSON answers — and `link_decisions` does the rest. The token is
never logged; at most the first characters of its hash.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
from collections.abc import Callable
from typing import Any, Literal

from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic import ValidationError as PydanticValidationError

from trustgate.adapters.observability import count, logger
from trustgate.adapters.throttling import throttling_in
from trustgate.api.common import DEFAULT_RETRY_AFTER_SECONDS, use_dependencies
from trustgate.api.common import deps as common_deps
from trustgate.app import link_decisions
from trustgate.app.approval_links import ExpiredLinkError
from trustgate.app.link_decisions import LinkRefused
from trustgate.core import approval_page
from trustgate.core.approval_page import SECURITY_HEADERS, Page
from trustgate.core.errors import ForbiddenError, NotFoundError, ThrottledError, TrustGateError, ValidationError
from trustgate.core.models import AccessRequest, RequestView
from trustgate.core.ports import Dependencies

FORM = "application/x-www-form-urlencoded"
JSON = "application/json"
MAX_BODY = 8192


class DecisionBody(BaseModel):
    """A decision, from the page's form or a JSON client."""

    # defer_build: the schema is built when a route first needs it, not in every cold start.
    model_config = ConfigDict(extra="ignore", str_strip_whitespace=True, defer_build=True)

    decision: Literal["approve", "deny"]
    comment: str | None = Field(default=None, max_length=1000)
    csrf: str | None = Field(default=None, max_length=200)
    request_id: str | None = Field(default=None, max_length=80)


class CrossSiteError(ForbiddenError):
    """A POST whose Origin or Referer names another site (or an opaque origin)."""

    code = "cross_site"


class UnsupportedMediaError(TrustGateError):
    status = 415
    code = "unsupported_media_type"


def build_decide_app(dependencies: Callable[[], Dependencies]) -> APIGatewayRestResolver:
    """The resolver of the `decide` function: two routes, every answer an HTML page or a JSON body; `dependencies`
    gives them theirs (on Lambda: `wiring.dependencies`)."""
    use_dependencies(dependencies)
    app = APIGatewayRestResolver()

    @app.get("/decide/<token>")
    def show(token: str) -> Response[str]:
        deps = common_deps()
        try:
            view = link_decisions.open_link(deps, token)
        except LinkRefused as refused:
            return _refused(app, deps, token, refused)
        page = approval_page.decision_page(
            view.request, view.approver_arn, view.csrf, deps.clock.now(), nonconforming=view.nonconforming
        )
        return _html(page)

    @app.post("/decide/<token>")
    def decide(token: str) -> Response[str]:
        deps = common_deps()
        headers = app.current_event.headers
        media = _media_type(headers.get("content-type"))
        wants_json = _wants_json(headers.get("accept"), default=media == JSON)
        try:
            _check_same_site(app, deps)
            body = _parse(media, _body_text(app))
            outcome = link_decisions.decide_by_link(
                deps,
                token,
                body.decision,
                body.comment or None,
                csrf=body.csrf,
                # A plain HTML form cannot send application/json, so JSON clients need no CSRF value.
                require_csrf=media != JSON,
                request_id=body.request_id,
            )
        except LinkRefused as refused:
            return _refused(app, deps, token, refused, wants_json)
        except TrustGateError as error:
            count("ApprovalLinkRefused")
            return _problem(deps, error.status, error.code, error.message, None, wants_json, _retry_after(error))
        count("ApprovalLinkDecided")
        if wants_json:
            return _json(200, RequestView.of(outcome.request).model_dump(mode="json", exclude_none=True))
        return _html(
            approval_page.result_page(outcome.request, outcome.decision, deps.clock.now(), missing=outcome.missing)
        )

    @app.not_found
    def not_found(_: Exception) -> Response[str]:
        deps = common_deps()
        return _problem(deps, 404, "not_found", "there is no such page; open the link from your notification", None)

    @app.exception_handler(Exception)
    def unexpected(error: Exception) -> Response[str]:
        deps = common_deps()
        if throttling_in(error) is not None:  # AWS throttled a call beyond its retries: 429, never a 5xx
            logger.warning("approval page throttled by AWS", exc_info=error)
            count("Throttled")
            busy = ThrottledError()
            wants_json = _wants_json(app.current_event.headers.get("accept"), default=False)
            return _problem(deps, busy.status, busy.code, busy.message, None, wants_json, busy.retry_after_seconds)
        logger.exception("approval page failed")
        message = "TrustGate failed unexpectedly and nothing may have been recorded; the error is logged. Try again."
        return _problem(deps, 500, "internal", message, None)

    return app


# -- request side --------------------------------------------------------------------------------


def _media_type(content_type: str | None) -> str:
    return (content_type or "").split(";", 1)[0].strip().lower()


def _body_text(app: APIGatewayRestResolver) -> str:
    """The body as text; bytes that are not UTF-8 are refused before anything reads them (or the token)."""
    event = app.current_event
    raw = event.body or ""
    if not event.is_base64_encoded:
        return raw
    try:
        return base64.b64decode(raw).decode("utf-8")
    except ValueError as error:  # not base64, or not UTF-8
        raise ValidationError(
            "the form could not be read (it is not UTF-8 text); send it from the approval page"
        ) from error


def _parse(media: str, raw: str | None) -> DecisionBody:
    """The decision from a form or a JSON body; anything else is refused before it can matter."""
    text = raw or ""
    if len(text) > MAX_BODY:
        raise ValidationError("the form is too large")
    try:
        if media == FORM:
            fields = urllib.parse.parse_qs(text, keep_blank_values=True, max_num_fields=20)
            return DecisionBody.model_validate({key: values[0] for key, values in fields.items() if values})
        if media == JSON:
            data = json.loads(text or "null")
            if not isinstance(data, dict):
                raise ValidationError('the body must be a JSON object such as {"decision": "approve"}')
            return DecisionBody.model_validate(data)
    except PydanticValidationError as error:
        raise ValidationError(_describe(error)) from error
    except (ValueError, RecursionError) as error:  # malformed or absurdly nested JSON, or too many form fields
        raise ValidationError("the body could not be read; send the form from the approval page") from error
    raise UnsupportedMediaError(f"send the decision as {FORM} (the approval page's form) or as {JSON}")


def _describe(error: PydanticValidationError) -> str:
    problems = []
    for problem in error.errors():
        where = ".".join(str(part) for part in problem.get("loc", ())) or "body"
        problems.append(
            "choose Approve or Deny" if where == "decision" else f"{where}: {problem.get('msg', 'invalid')}"
        )
    return "; ".join(problems)


def _check_same_site(app: APIGatewayRestResolver, deps: Dependencies) -> None:
    """Refuse a POST that a browser says came from another site (the CSRF value is the main defence)."""
    headers = app.current_event.headers
    context = app.current_event.raw_event.get("requestContext") or {}
    allowed = {
        host.lower()
        for host in (
            headers.get("host"),
            context.get("domainName"),
            urllib.parse.urlsplit(deps.settings.approval_base_url).netloc,
        )
        if host
    }
    if (headers.get("sec-fetch-site") or "").lower() == "cross-site":
        raise CrossSiteError("this form was sent from another site; nothing was changed")
    origin = headers.get("origin")
    source = origin if origin is not None else headers.get("referer")
    if source is None:
        return  # non-browser clients send neither
    # `Origin: null` (opaque origin: sandboxed frame, data: URL) is never our page: the page sets
    # Referrer-Policy same-origin so its own posts carry a real Origin.
    if urllib.parse.urlsplit(source.strip()).netloc.lower() not in allowed:
        raise CrossSiteError("this form was sent from another site; nothing was changed")


def _wants_json(accept: str | None, *, default: bool) -> bool:
    """JSON if Accept prefers application/json over HTML; otherwise answer in the body's own format."""
    weights: dict[str, float] = {}
    for part in (accept or "").split(","):
        media, *params = part.strip().split(";")
        weight = 1.0
        for param in params:
            name, _, value = param.strip().partition("=")
            if name.strip() == "q":
                try:
                    weight = float(value)
                except ValueError:
                    weight = 0.0
        key = media.strip().lower()
        if key:
            weights[key] = max(weights.get(key, 0.0), weight)
    json_q = weights.get(JSON, 0.0)
    html_q = max(weights.get("text/html", 0.0), weights.get("application/xhtml+xml", 0.0))
    if json_q or html_q:
        return json_q > html_q
    return default


# -- response side -------------------------------------------------------------------------------


def _refused(
    app: APIGatewayRestResolver, deps: Dependencies, token: str, refused: LinkRefused, wants_json: bool = False
) -> Response[str]:
    error = refused.error
    logger.info(
        "approval link refused",
        extra={
            "code": error.code,
            "method": app.current_event.http_method,
            "token_hash_prefix": link_decisions.hash_prefix(token),
        },
    )
    count("ApprovalLinkRefused")
    request = refused.request
    if request is None and isinstance(error, ExpiredLinkError) and error.request_id:
        request = _request_of(deps, error.request_id)  # an expired link still shows how its request ended
    return _problem(deps, error.status, error.code, error.message, request, wants_json, _retry_after(error))


def _request_of(deps: Dependencies, request_id: str) -> AccessRequest | None:
    try:
        return deps.store.get_request(request_id)
    except NotFoundError:
        return None


def _retry_after(error: TrustGateError) -> int | None:
    seconds = getattr(error, "retry_after_seconds", None)
    return int(seconds) if seconds is not None else None


def _problem(
    deps: Dependencies,
    status: int,
    code: str,
    message: str,
    request: AccessRequest | None,
    wants_json: bool = False,
    retry_after: int | None = None,
) -> Response[str]:
    """An error as a page or a JSON body; a 429 or 503 always says when to retry (`Retry-After`)."""
    if retry_after is None and status in (429, 503):
        retry_after = DEFAULT_RETRY_AFTER_SECONDS
    if wants_json:
        response = _json(status, {"error": {"code": code, "message": message}})
    else:
        response = _html(approval_page.problem_page(status, code, message, request, deps.clock.now()))
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def _html(page: Page) -> Response[str]:
    return Response(
        status_code=page.status, content_type=approval_page.HTML_CONTENT_TYPE, body=page.html, headers=page.headers
    )


def _json(status: int, body: dict[str, Any]) -> Response[str]:
    headers = {k: v for k, v in SECURITY_HEADERS.items() if k in ("Cache-Control", "X-Content-Type-Options")}
    return Response(status_code=status, content_type=JSON, body=json.dumps(body), headers=headers)
