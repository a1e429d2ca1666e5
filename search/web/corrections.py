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
import unicodedata
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
    VerifyIn,
)
from registry.corrections.services import application_status, request_reconsideration
from registry.corrections.wording import ACTIONS, OUTCOMES, STAGES, STATUSES
from registry.corrections.wording import GROUNDS as GROUND_WORDS
from registry.http.body import DOCUMENT_BODY_BYTES
from registry.http.dependencies import Injected
from registry.http.params import refuse_repeated
from registry.identity.types import ID_TYPE_NAMES, ID_TYPES, ORGANIZATION_ID_TYPES
from registry.ids import is_id
from registry.listings.wording import cn_date
from registry.problems import Problem
from registry.runtime import Services
from registry.text import check_text, without_forbidden
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
    "invalid_organization_code": ("该组织机构代码无效（校验位不符），请核对。", "number"),
    "invalid_registration_number": (
        "该境外注册号无效（应为 1 至 40 位字母、数字或“.”“/”“-”），请核对。",
        "number",
    ),
    "invalid_nationality": (
        "国籍须为三位字母的国家或地区代码（如加拿大为 CAN、美国为 USA），请核对。",
        "country",
    ),
    "invalid_registration_country": (
        "注册地国家或地区须为三位字母的代码（如英国为 GBR、美国为 USA），请核对。",
        "country",
    ),
    "unknown_id_type": ("请从列表中选择证件类型。", "id_kind"),
    "subject_identifier": ("请选择证件类型，并只填写一个完整的证件号码。", "number"),
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
    "missing_country": (
        "证件类型为护照或境外注册号的，请填写国籍或注册地国家或地区的三位字母代码（如 CAN）。",
        "country",
    ),
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


# A person's number that is not valid, in the words of its document (a resident ID's are
# MESSAGES' own).
INVALID_NUMBER: dict[str, str] = {
    "hk_macao_travel_permit": (
        "该港澳居民来往内地通行证号码无效（应为字母 H 或 M 加 8 位或 10 位数字），请核对。"
    ),
    "taiwan_travel_permit": "该台湾居民来往大陆通行证号码无效（应为 8 位数字），请核对。",
    "foreign_permanent_residence": (
        "该外国人永久居留身份证号码无效（应为 3 位字母加 12 位数字，或以 9 开头的 18 位号码），请核对。"
    ),
    "passport": "该护照号码无效（应为 5 至 20 位字母或数字），请核对。",
}
# The query parameters the pages read from a link, by their fields' labels.
PARAMETER_LABELS = {"listing": "失信信息编号或执行案号", "token": "核验码"}


class PageError(Exception):
    def __init__(self, code: str, message: str | None = None, field: str | None = None) -> None:
        default, default_field = MESSAGES.get(code, ("提交的内容有误，请检查后重新提交。", "form"))
        super().__init__(message or default)
        self.code = code
        self.message = message or default
        self.field = field or default_field


def _refusal(problem: Problem, form: dict[str, Any] | None = None) -> PageError:
    """The service's refusal in the visitor's words (a number in its document's)."""
    if problem.code == "invalid_id_number" and form is not None:
        message = INVALID_NUMBER.get(_kind(form))
        if message is not None:
            return PageError(problem.code, message)
    return PageError(problem.code)


def _repeated(request: Request[Any, Any, Any], name: str) -> PageError | None:
    """A parameter the link gives more than once (which was meant is a guess), as the search
    page refuses one: in words, at its field."""
    try:
        refuse_repeated(request, (name,))
    except Problem as problem:
        message = (
            f"“{PARAMETER_LABELS[name]}”在网址中出现了不止一次，无法确定应使用哪一个："
            "请核对链接后重新打开本页。"
        )
        return PageError(problem.code, message, name)
    return None


def _status_of(problem: Problem) -> int:
    return problem.status if 400 <= problem.status < 500 else 400


def _text(form: dict[str, Any], name: str) -> str:
    value = form.get(name, "")
    # Browsers send a textarea's line breaks as CR LF (HTML's form encoding): one LF each.
    return value.replace("\r\n", "\n").strip() if isinstance(value, str) else ""


def _shown(text: str, *, multiline: bool = False) -> str:
    """`text` to show back in a field: less the control and format characters (a bidi
    override would garble the page), line breaks kept where they mean something."""
    if multiline:
        return "\n".join(without_forbidden(line) for line in text.split("\n"))
    return without_forbidden(text)


# The former form's value for a resident ID number (a page opened before every type was offered).
_FORMER_KINDS = {"id_number": "resident_id"}
# The documents whose number goes with a country: a passport's nationality, a foreign
# entity's country of registration (the form's one `country` field).
WITH_COUNTRY = ("passport", "registration")


def _kind(form: dict[str, Any]) -> str:
    """The form's document type (`registry.identity.types.ID_TYPES`), or "" when unknown."""
    kind = _text(form, "id_kind") or "resident_id"
    kind = _FORMER_KINDS.get(kind, kind)
    return kind if kind in ID_TYPES else ""


def _identifier(form: dict[str, Any]) -> dict[str, Any]:
    """The listed party's identifier as the API takes it (`Applicant`'s fields), from the
    form's type, number and country (read for a passport or a foreign registration only)."""
    kind = _kind(form)
    if not kind:
        raise PageError("unknown_id_type")
    number, country = _text(form, "number"), _text(form, "country")
    if kind in WITH_COUNTRY and not country:
        raise PageError("missing_country")
    if kind == "registration":
        return {"registration": {"country": country, "number": number}}
    if kind in ORGANIZATION_ID_TYPES:
        return {kind: number}
    return {"id_number": number, "id_type": kind} | ({"nationality": country} if kind == "passport" else {})


def _listing_ref(form: dict[str, Any]) -> ListingRef:
    ref = _text(form, "listing")
    # The page's one field takes the entry's number (from its page, any case) or the case number.
    entry = unicodedata.normalize("NFKC", ref).upper()
    if is_id(entry):
        return ListingRef(id=entry)
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
    """What the visitor typed, shown back in the form (escaped, less control and format
    characters); never the number itself. The choices only pick one of their options."""
    return {
        **{k: _shown(_text(form, k)) for k in ("listing", "name", "contact", "country")},
        "statement": _shown(_text(form, "statement"), multiline=True),
        "id_kind": _kind(form),
        "ground": _text(form, "ground") if _text(form, "ground") in GROUNDS else "",
        "role": "representative" if _text(form, "role") == "representative" else "debtor",
    }


def _apply_page(status: int = 200, key: str | None = None, **context: Any) -> Template:
    # A key of its own for each form shown (kept when the form comes back with an error): a
    # form sent again after its answer was lost is recognised, and its number given again
    # (`submit_application`, docs/corrections.md).
    base = {
        "values": {},
        "error": None,
        "grounds": GROUND_WORDS,
        "types": ATTACHMENT_TYPES,
        "id_types": ID_TYPE_NAMES,
    }
    return _page(
        "correction_apply.html",
        status=status,
        idempotency_key=key or secrets.token_urlsafe(24),
        **(base | context),
    )


def _certificate_page(status: int = 200, **context: Any) -> Template:
    return _page("certificate_request.html", status=status, **({"id_types": ID_TYPE_NAMES} | context))


def _verify_page(status: int = 200, **context: Any) -> Template:
    base = {"id_types": ID_TYPE_NAMES, "values": {}, "error": None, "token": ""}
    return _page("certificate_verify.html", status=status, **(base | context))


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
        today=today_in_china(),
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
    async def apply_form(
        self, request: Request[Any, Any, Any], listing: FromQuery[str | None] = None
    ) -> Template:
        repeated = _repeated(request, "listing")
        if repeated is not None:
            return _apply_page(status=400, error=repeated)
        values = {"listing": _shown(listing)[:32]} if listing else {}
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
            identifier = _identifier(data)
            if ground not in GROUNDS:
                raise PageError("missing_ground")
            try:
                application = msgspec.convert(
                    {
                        "listing": msgspec.to_builtins(_listing_ref(data)),
                        "applicant": {
                            "name": _text(data, "name"),
                            "role": "representative" if _text(data, "role") == "representative" else "debtor",
                            **identifier,
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
                status=_status_of(problem), key=key, values=values, error=_refusal(problem, data)
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
        # Shown back as typed (the service reads it case-insensitively), less what no field may hold.
        values = {"number": _shown(number)[:32]}
        missing = _missing_tracking(number, code)
        if missing is not None:
            return _page("correction_track.html", status=422, values=values, error=PageError(missing))
        try:
            found = await services.db.read(
                application_status, number[:32], code[:64], services.secrets.keyring, today_in_china()
            )
        except Problem as problem:
            return _page(
                "correction_track.html",
                status=_status_of(problem),
                values=values,
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
    async def certificate_form(
        self, request: Request[Any, Any, Any], listing: FromQuery[str | None] = None
    ) -> Template:
        repeated = _repeated(request, "listing")
        if repeated is not None:
            return _certificate_page(status=400, values={}, error=repeated)
        return _certificate_page(values={"listing": _shown(listing or "")[:32]}, error=None)

    @post("/certificates", status_code=201)
    async def certificate(
        self,
        request: Request[Any, Any, Any],
        services: Injected[Services],
        data: Annotated[dict[str, Any], Body(media_type=RequestEncodingType.URL_ENCODED)],
    ) -> Template:
        values = {
            "listing": _shown(_text(data, "listing"))[:64],
            "id_kind": _kind(data),
            "country": _shown(_text(data, "country"))[:8],
        }
        # What is missing first, as `apply` does: the service would call an empty listing
        # unreadable and an empty number a wrong check digit.
        missing = next((f"missing_{name}" for name in ("listing", "number") if not _text(data, name)), None)
        if missing is not None:
            return _certificate_page(status=422, values=values, error=PageError(missing))
        try:
            try:
                asked = msgspec.convert(
                    {"listing": msgspec.to_builtins(_listing_ref(data)), **_identifier(data)}, CertificateIn
                )
            except msgspec.ValidationError as exc:
                raise PageError("too_long" if "length" in str(exc) else "invalid_field") from exc
            issued = await issue_certificate(services, request, asked)
        except PageError as exc:
            return _certificate_page(status=422, values=values, error=exc)
        except Problem as problem:
            return _certificate_page(status=_status_of(problem), values=values, error=_refusal(problem, data))
        return _page(
            "certificate.html",
            status=201,
            cert=issued,
            qr=qr_svg(issued.verification_url),
            issued_on=cn_date(today_in_china()),
        )

    @get("/certificates/verify")
    async def verify(
        self,
        request: Request[Any, Any, Any],
        services: Injected[Services],
        token: FromQuery[str | None] = None,
    ) -> Template:
        repeated = _repeated(request, "token")
        if repeated is not None:
            # Two codes, two verdicts: which one the link meant is a guess.
            return _verify_page(status=400, verdict=None, error=repeated)
        if token is None:
            return _verify_page(verdict=None)
        if not token.strip():
            # The form sent empty: ask for the code rather than show the same blank form.
            return _verify_page(status=400, verdict=None, error=PageError("missing_token"))
        verdict = verify_certificate(services, token[:8192])
        return _verify_page(
            status=200 if verdict.genuine else 400, verdict=verdict, token=_shown(token[:8192])
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
        try:
            if not number:
                raise PageError("missing_number")
            identifier = _identifier(data)
            if not nonce:
                raise PageError("missing_nonce")
            try:
                holder = msgspec.convert(
                    {"certificate": token or "-", "nonce": nonce[:64], **identifier}, VerifyIn
                )
            except msgspec.ValidationError as exc:
                raise PageError("too_long" if "length" in str(exc) else "invalid_field") from exc
            verdict = verify_certificate(services, token, holder, holder.nonce)
            status = 200 if verdict.genuine else 400
        except PageError as exc:
            error = exc
        except Problem as problem:
            error, status = _refusal(problem, data), _status_of(problem)
        return _verify_page(
            status=status,
            verdict=verdict or verify_certificate(services, token),
            token=_shown(token),
            values={"id_kind": _kind(data), "country": _shown(_text(data, "country"))[:8]},
            error=error,
        )
