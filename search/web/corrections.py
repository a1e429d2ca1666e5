"""The listed person's pages: apply for correction (SPC Art. 11), follow the application and
ask for reconsideration (Art. 12), obtain a printable removal certificate with its QR code,
and the page the QR code opens, where anyone checks a certificate.

Each page calls the same service as the JSON API (`registry.corrections`), so the page and
the API accept and refuse the same things; problem codes are put into words here. Forms post
to this site only (CSP `form-action 'self'`); no script; the QR code is inline SVG.
"""

from __future__ import annotations

import base64
import secrets
from typing import Annotated, Any

import msgspec
import segno
from litestar import Controller, Request, get, post
from litestar.datastructures import UploadFile
from litestar.enums import RequestEncodingType
from litestar.exceptions import TooManyRequestsException
from litestar.params import Body, FromQuery
from litestar.response import Template

from registry.calendar import today_in_china
from registry.corrections.controllers import (
    APPLICATION_BODY_BYTES,
    issue_certificate,
    submit_application,
    verify_certificate,
)
from registry.corrections.schemas import (
    ATTACHMENT_TYPES,
    GROUNDS,
    ApplicationIn,
    AttachmentIn,
    CertificateIn,
    ListingRef,
)
from registry.corrections.services import application_status, request_reconsideration
from registry.corrections.wording import ACTIONS, OUTCOMES, STAGES, STATUSES
from registry.corrections.wording import GROUNDS as GROUND_WORDS
from registry.http.body import DOCUMENT_BODY_BYTES
from registry.http.dependencies import Injected
from registry.ids import is_id
from registry.listings.wording import cn_date
from registry.problems import Problem
from registry.runtime import Services
from registry.text import check_text
from registry.timeutil import utcnow
from search.web.controllers import _page, rate_limited_page

MESSAGES: dict[str, tuple[str, str]] = {
    "listing_not_found": (
        "未找到与所填案号或信息编号及证件号码相符的失信信息。请核对后重新填写；证件号码须为被纳入名单的"
        "被执行人本人（或单位）的完整号码。",
        "listing",
    ),
    "invalid_id_number": ("该身份证号码无效（校验位、出生日期或行政区划代码不符），请核对。", "number"),
    "invalid_credit_code": ("该统一社会信用代码无效（校验位不符），请核对。", "number"),
    "listing_not_active": ("该失信信息已不再公布，无需申请纠正；可申请删除证明。", "listing"),
    "correction_pending": ("该失信信息已有正在审查的纠正申请，请凭申请编号和查询码查看进度。", "listing"),
    "too_many_attachments": ("附件数量超过上限。", "attachments"),
    "attachment_too_large": ("附件过大，请压缩后重新上传。", "attachments"),
    "attachment_type_refused": ("附件只接受 PDF、JPEG 或 PNG 文件。", "attachments"),
    "correction_budget_exhausted": ("今日从本网络地址提交的申请次数已达上限，请明日再试。", "listing"),
    # Either may be the wrong one: both fields are marked.
    "correction_not_found": ("申请编号或查询码不正确。", "form"),
    "reconsideration_too_late": ("已超过申请复议的期限（驳回决定作出之日起十日内）。", "statement"),
    "reconsideration_not_available": ("该申请当前不能申请复议。", "statement"),
    "no_superior_court": ("本系统未登记执行法院的上一级人民法院，请直接向其申请复议。", "statement"),
    "listing_still_published": ("该失信信息仍在公布中，删除后方可出具删除证明。", "listing"),
    "invalid_field": ("所填内容含有无法识别的字符或格式不正确，请检查后重新提交。", "form"),
    "too_long": ("所填内容过长，请精简后重新提交。", "form"),
    "missing_listing": ("请填写失信信息编号或执行案号。", "listing"),
    "missing_name": ("请填写申请人姓名或名称。", "name"),
    "missing_number": ("请填写被执行人的完整证件号码。", "number"),
    "missing_nonce": ("请填写证明持有人提供的身份核对码。", "nonce"),
    "missing_ground": ("请选择申请事由。", "ground"),
    "missing_statement": ("请填写申请理由。", "statement"),
    "missing_contact": ("请填写联系方式。", "contact"),
    "missing_reconsideration_statement": ("请填写复议理由。", "statement"),
    "missing_application": ("请填写申请编号和查询码。", "form"),
    "missing_application_number": ("请填写申请编号。", "number"),
    "missing_code": ("请填写查询码。", "code"),
    "missing_token": ("请填写核验码。", "token"),
}


class PageError(Exception):
    def __init__(self, code: str) -> None:
        message, field = MESSAGES.get(code, ("提交的内容有误，请检查后重新提交。", "form"))
        super().__init__(message)
        self.code = code
        self.message = message
        self.field = field


def _status_of(problem: Problem) -> int:
    return problem.status if 400 <= problem.status < 500 else 400


def _text(form: dict[str, Any], name: str) -> str:
    value = form.get(name, "")
    # Browsers send a textarea's line breaks as CR LF (HTML's form encoding): one LF each.
    return value.replace("\r\n", "\n").strip() if isinstance(value, str) else ""


def _identifier(form: dict[str, Any]) -> dict[str, str | None]:
    number = _text(form, "number")
    kind = _text(form, "id_kind")
    return {
        "id_number": number if kind != "credit_code" else None,
        "credit_code": number if kind == "credit_code" else None,
    }


def _listing_ref(form: dict[str, Any]) -> ListingRef:
    ref = _text(form, "listing")
    # The page's one field takes the entry's number (from its page) or the case number.
    if is_id(ref.upper()):
        return ListingRef(id=ref.upper())
    return ListingRef(case_number=ref[:64] or None)


async def _files(form: dict[str, Any]) -> list[AttachmentIn]:
    uploads = form.get("attachments") or []
    if not isinstance(uploads, list):
        uploads = [uploads]
    files = []
    for upload in uploads:
        if not isinstance(upload, UploadFile) or not upload.filename:
            continue
        content = await upload.read()
        if not content:
            continue
        files.append(
            AttachmentIn(
                filename=upload.filename[:200],
                media_type=upload.content_type[:64] or "application/octet-stream",
                content_base64=base64.b64encode(content).decode(),
            )
        )
    return files


def _values(form: dict[str, Any]) -> dict[str, str]:
    """What the visitor typed, shown back in the form (escaped); never the number itself."""
    return {
        k: _text(form, k) for k in ("listing", "name", "id_kind", "ground", "statement", "contact", "role")
    }


def _apply_page(status: int = 200, key: str | None = None, **context: Any) -> Template:
    # A key of its own for each form shown (kept when the form comes back with an error): a
    # form sent again after its answer was lost is recognised, and its number given again
    # (`submit_application`, docs/corrections.md).
    base = {"values": {}, "error": None, "grounds": GROUND_WORDS, "types": ATTACHMENT_TYPES}
    return _page(
        "correction_apply.html",
        status=status,
        idempotency_key=key or secrets.token_urlsafe(24),
        **(base | context),
    )


def _status_page(status_: Any, code: str, status: int = 200, error: PageError | None = None) -> Template:
    return _page(
        "correction_status.html",
        status=status,
        app=status_,
        code=code,
        error=error,
        statuses=STATUSES,
        grounds=GROUND_WORDS,
        outcomes=OUTCOMES,
        stages=STAGES,
        actions=ACTIONS,
    )


def qr_svg(url: str) -> str:
    """The QR code as inline SVG markup (no image request: the CSP allows none from elsewhere).
    A viewBox and no width or height: the stylesheet fits it to a phone's screen."""
    code = segno.make(url, error="m")
    return str(code.svg_inline(scale=3, omitsize=True, title="删除证明核验二维码"))


def _missing_tracking(number: str, code: str) -> str | None:
    """The code of what the status form left empty, or None when both are filled (an empty
    field asked for, not looked up and called wrong)."""
    if not number and not code:
        return "missing_application"
    if not number:
        return "missing_application_number"
    if not code:
        return "missing_code"
    return None


class CorrectionPages(Controller):
    request_max_body_size = DOCUMENT_BODY_BYTES  # forms of a few fields (registry.http.body)
    include_in_schema = False
    # Past the public rate limit a person gets the reason in Chinese, as on the search page.
    exception_handlers = {TooManyRequestsException: rate_limited_page}  # noqa: RUF012

    @get("/corrections/apply")
    async def apply_form(self, listing: FromQuery[str | None] = None) -> Template:
        values = {"listing": listing[:32]} if listing else {}
        return _apply_page(values=values)

    # The attachments, as files (raw bytes): within the API's cap for their base64.
    @post("/corrections/apply", status_code=201, request_max_body_size=APPLICATION_BODY_BYTES)
    async def apply(self, request: Request[Any, Any, Any], services: Injected[Services]) -> Template:
        # Read here, not as a `data` parameter: a field that is not UTF-8, or declares a
        # charset Python does not know, fails the decoding (Litestar lets it out as a 500).
        try:
            form = await request.form()
        except (UnicodeDecodeError, LookupError):
            return _apply_page(status=400, error=PageError("invalid_field"))
        # One value a name, a list where a name is repeated (the attachments), as Litestar gives.
        data = {name: items[0] if len(items) == 1 else items for name, items in form.dict().items()}
        values = _values(data)
        ground = _text(data, "ground")
        # The form's own key (`_apply_page`); the schema checks its form.
        key = _text(data, "idempotency_key") or None
        try:
            for field in ("listing", "name", "number", "statement", "contact"):
                if not _text(data, field):
                    raise PageError(f"missing_{field}")
            if ground not in GROUNDS:
                raise PageError("missing_ground")
            try:
                application = msgspec.convert(
                    {
                        "listing": msgspec.to_builtins(_listing_ref(data)),
                        "applicant": {
                            "name": _text(data, "name"),
                            "role": "representative" if _text(data, "role") == "representative" else "debtor",
                            **{k: v for k, v in _identifier(data).items() if v is not None},
                        },
                        "ground": ground,
                        "statement": _text(data, "statement"),
                        "contact": _text(data, "contact"),
                        "attachments": [msgspec.to_builtins(f) for f in await _files(data)],
                        **({"idempotency_key": key} if key else {}),
                    },
                    ApplicationIn,
                )
            except msgspec.ValidationError as exc:
                raise PageError("too_long" if "length" in str(exc) else "invalid_field") from exc
            receipt = await submit_application(services, request, application)
        except PageError as exc:
            return _apply_page(status=422, key=key, values=values, error=exc)
        except Problem as problem:
            return _apply_page(
                status=_status_of(problem), key=key, values=values, error=PageError(problem.code)
            )
        return _page("correction_receipt.html", status=201, receipt=receipt)

    @get("/corrections/status")
    async def status_form(self) -> Template:
        return _page("correction_track.html", values={}, error=None)

    @post("/corrections/status", status_code=200)
    async def status(
        self,
        services: Injected[Services],
        data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        number, code = _text(data, "number"), _text(data, "code")
        missing = _missing_tracking(number, code)
        if missing is not None:
            return _page(
                "correction_track.html", status=422, values={"number": number[:32]}, error=PageError(missing)
            )
        try:
            found = await services.db.read(
                application_status, number[:32], code[:64], services.secrets.keyring, today_in_china()
            )
        except Problem as problem:
            return _page(
                "correction_track.html",
                status=_status_of(problem),
                values={"number": number[:32]},
                error=PageError(problem.code),
            )
        return _status_page(found, code)

    @post("/corrections/reconsider", status_code=200)
    async def reconsider(
        self,
        services: Injected[Services],
        data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        number, code, statement = (
            _text(data, "number")[:32],
            _text(data, "code")[:64],
            _text(data, "statement"),
        )
        keyring = services.secrets.keyring
        try:
            if not statement:
                raise Problem(422, "missing_reconsideration_statement", "statement is empty")
            check_text(statement, "/statement", multiline=True)
            found = await services.db.write(
                request_reconsideration, number, code, statement[:5000], keyring, now=utcnow()
            )
        except Problem as problem:
            try:
                current = await services.db.read(application_status, number, code, keyring, today_in_china())
            except Problem:
                return _page(
                    "correction_track.html", status=404, values={}, error=PageError("correction_not_found")
                )
            return _status_page(current, code, status=_status_of(problem), error=PageError(problem.code))
        return _status_page(found, code)

    @get("/certificates")
    async def certificate_form(self, listing: FromQuery[str | None] = None) -> Template:
        return _page("certificate_request.html", values={"listing": (listing or "")[:32]}, error=None)

    @post("/certificates", status_code=201)
    async def certificate(
        self,
        request: Request[Any, Any, Any],
        services: Injected[Services],
        data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        values = {"listing": _text(data, "listing")[:64], "id_kind": _text(data, "id_kind")}
        # What is missing first, as `apply` does: the service would call an empty listing
        # unreadable and an empty number a wrong check digit.
        missing = next((f"missing_{name}" for name in ("listing", "number") if not _text(data, name)), None)
        if missing is not None:
            return _page("certificate_request.html", status=422, values=values, error=PageError(missing))
        try:
            issued = await issue_certificate(
                services, request, CertificateIn(listing=_listing_ref(data), **_identifier(data))
            )
        except Problem as problem:
            return _page(
                "certificate_request.html",
                status=_status_of(problem),
                values=values,
                error=PageError(problem.code),
            )
        return _page(
            "certificate.html",
            status=201,
            cert=issued,
            qr=qr_svg(issued.verification_url),
            issued_on=cn_date(today_in_china()),
        )

    @get("/certificates/verify")
    async def verify(self, services: Injected[Services], token: FromQuery[str | None] = None) -> Template:
        if token is None:
            return _page("certificate_verify.html", verdict=None, error=None)
        if not token.strip():
            # The form sent empty: ask for the code rather than show the same blank form.
            error = PageError("missing_token")
            return _page("certificate_verify.html", status=400, verdict=None, error=error)
        verdict = verify_certificate(services, token[:8192])
        return _page(
            "certificate_verify.html",
            status=200 if verdict.genuine else 400,
            verdict=verdict,
            token=token[:8192],
            values={},
            error=None,
        )

    @post("/certificates/verify", status_code=200)
    async def verify_holder(
        self,
        services: Injected[Services],
        data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        """The verification page's second step: the holder's number and nonce, posted (never in
        an address, where logs and browser histories would keep them)."""
        token = _text(data, "token")[:8192]
        number, nonce = _text(data, "number"), _text(data, "nonce")
        verdict, error, status = None, None, 422
        if not number:
            error = PageError("missing_number")
        elif not nonce:
            error = PageError("missing_nonce")
        else:
            try:
                verdict = verify_certificate(services, token, nonce=nonce[:64], **_identifier(data))
                status = 200 if verdict.genuine else 400
            except Problem as problem:
                error, status = PageError(problem.code), _status_of(problem)
        return _page(
            "certificate_verify.html",
            status=status,
            verdict=verdict or verify_certificate(services, token),
            token=token,
            values={"id_kind": _text(data, "id_kind")},
            error=error,
        )
