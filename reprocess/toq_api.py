"""The one TOQ API call toqdash makes: ask TOQ to process a listing's media again.

`POST {TOQ_API_BASE_URL}/api/v2/listings/media/uploads/process` with `{"listingIdentityId": L}`,
`Authorization: Bearer <TOQ_API_TOKEN>` and `Content-Type: application/json` — what TOQ's own
clients send (projeto-toq/toq_server, internal/adapter/left/http/handlers/listing_handlers/
process_media_handler.go; DTO `ProcessMediaInput` in internal/core/domain/dto). TOQ answers
202 `{"status":"processing_started"}`; its errors are `{"code": <status>, "message": …, "details": …}`
(400 invalid payload / no assets to process / a raw file missing, 401 token, 403 permission,
404 listing, 409 listing not awaiting media processing, 500).

Standard library only (urllib). The request is never retried and redirects are not followed (a
redirect would carry the token elsewhere): TOQ's /process is not idempotent, so a blind retry could
make two jobs. The token is read from settings at call time, sent only in the header, and scrubbed
from anything this module returns or raises.
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any

from django.conf import settings
from django.utils.translation import gettext as _

from .aws import ReprocessAwsError

PROCESS_PATH = "/api/v2/listings/media/uploads/process"
OPERATION = "TOQ.ProcessMedia"
# How the Authorization header is shown and recorded.
MASKED_AUTHORIZATION = "Bearer ***"
# TOQ's answer is kept up to this many bytes (its answers are a few hundred bytes).
BODY_LIMIT = 4000


class ToqApiError(ReprocessAwsError):
    """The call to TOQ failed: `code` is `HTTP <status>`, `Timeout` or the connection error's name."""

    def __init__(self, code: str, message: str, *, status: int | None = None, body: Any = None) -> None:
        super().__init__(OPERATION, code, message)
        self.status = status
        self.body = body

    def as_dict(self) -> dict[str, Any]:  # type: ignore[override]
        out: dict[str, Any] = {"operation": self.operation, "code": self.code, "message": self.message}
        if self.status is not None:
            out["status"] = self.status
            out["body"] = self.body
        return out


def base_url() -> str:
    return str(settings.TOQ_API_BASE_URL or "").strip().rstrip("/")


def configuration_problems() -> list[str]:
    """Why the process action cannot be used ([] = configured). Plain language; never the token."""
    problems: list[str] = []
    base = base_url()
    if not base:
        problems.append(_("TOQ's API is not configured (TOQ_API_BASE_URL is empty)."))
    else:
        parts = urllib.parse.urlsplit(base)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            problems.append(_("TOQ_API_BASE_URL is not an http(s) address."))
    if not str(settings.TOQ_API_TOKEN or "").strip():
        problems.append(_("No TOQ API token is configured (TOQ_API_TOKEN is empty)."))
    return problems


def sends_token_in_clear() -> bool:
    """Plain http to another host than this one's loopback."""
    parts = urllib.parse.urlsplit(base_url())
    if parts.scheme != "http":
        return False
    host = parts.hostname or ""
    if host == "localhost":
        return False
    try:
        return not ipaddress.ip_address(host).is_loopback
    except ValueError:
        return True


def process_url() -> str:
    return base_url() + PROCESS_PATH


def _scrub(text: str) -> str:
    token = str(settings.TOQ_API_TOKEN or "").strip()
    return text.replace(token, "***") if token else text


def _scrub_value(value: Any) -> Any:
    if isinstance(value, str):
        return _scrub(value)
    if isinstance(value, dict):
        return {_scrub(str(k)): _scrub_value(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub_value(v) for v in value]
    return value


def _read_body(raw: bytes) -> Any:
    """TOQ's answer as JSON when it is (and fits), else its text, cut at BODY_LIMIT."""
    truncated = len(raw) > BODY_LIMIT
    text = raw[:BODY_LIMIT].decode("utf-8", errors="replace")
    if not truncated:
        try:
            return _scrub_value(json.loads(text)) if text.strip() else ""
        except ValueError:
            pass
    return _scrub(text) + ("…" if truncated else "")


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # the 3xx is raised as an HTTPError instead


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_NoRedirect())


def post_process(*, url: str, headers: dict[str, str], body: str) -> dict[str, Any]:
    """POST `body` (JSON text, sent as is) to `url` with `headers` as planned, the masked
    Authorization replaced by the configured token.

    Returns {"operation", "status", "body"} for a 2xx answer; raises ToqApiError otherwise."""
    token = str(settings.TOQ_API_TOKEN or "").strip()
    if not token:
        raise ToqApiError("NotConfigured", _("No TOQ API token is configured (TOQ_API_TOKEN is empty)."))
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ToqApiError("InvalidURL", _("TOQ_API_BASE_URL is not an http(s) address."))
    sent_headers = {k: v for k, v in headers.items() if k.lower() != "authorization"}
    sent_headers["Authorization"] = f"Bearer {token}"
    # S310: the scheme is checked just above (http or https only).
    request = urllib.request.Request(url, data=body.encode("utf-8"), method="POST", headers=sent_headers)  # noqa: S310
    timeout = float(settings.TOQ_API_TIMEOUT_SECONDS)
    try:
        with _opener().open(request, timeout=timeout) as response:
            status = int(response.status)
            answer = _read_body(response.read(BODY_LIMIT + 1))
    except urllib.error.HTTPError as exc:
        answer = _read_body(exc.read(BODY_LIMIT + 1) if exc.fp is not None else b"")
        message = answer.get("message") if isinstance(answer, dict) else answer
        raise ToqApiError(
            f"HTTP {exc.code}",
            _scrub(str(message or exc.reason or "")),
            status=exc.code,
            body=answer,
        ) from None
    except TimeoutError:
        raise ToqApiError("Timeout", _timeout_message(timeout)) from None
    except urllib.error.URLError as exc:
        if isinstance(exc.reason, TimeoutError):
            raise ToqApiError("Timeout", _timeout_message(timeout)) from None
        reason = exc.reason
        name = type(reason).__name__ if isinstance(reason, BaseException) else "URLError"
        raise ToqApiError(name, _("Could not reach TOQ: %s") % _scrub(str(reason))) from None
    except (OSError, http.client.HTTPException) as exc:
        raise ToqApiError(type(exc).__name__, _("Could not reach TOQ: %s") % _scrub(str(exc))) from None
    if not 200 <= status < 300:  # 1xx/3xx that urllib returned instead of raising
        raise ToqApiError(f"HTTP {status}", _("Unexpected answer from TOQ."), status=status, body=answer)
    return {"operation": OPERATION, "status": status, "body": answer}


def _timeout_message(timeout: float) -> str:
    return _(
        "TOQ did not answer within %(s)s s. It may still have received the request: check the "
        "listing's jobs before asking again."
    ) % {"s": f"{timeout:g}"}
