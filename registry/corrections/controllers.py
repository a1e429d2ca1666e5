"""HTTP of the correction procedure: the applicant's public routes and the deciding courts'."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

import msgspec
from litestar import Controller, Request, Response, get, post
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import Body, Parameter, QueryParameter, RequestBody

from registry.calendar import today_in_china
from registry.clients.services import Principal
from registry.corrections.budget import budget_of
from registry.corrections.certificates import (
    SIGNER,
    CertificateSigner,
    certificate_claims,
    holder_subject,
    subject_matches,
)
from registry.corrections.metrics import prometheus_text
from registry.corrections.schemas import (
    ApplicationIn,
    ApplicationReceipt,
    ApplicationStatus,
    CertificateClaims,
    CertificateIn,
    CertificateOut,
    CorrectionEventPage,
    CorrectionPage,
    CorrectionRead,
    DecisionEnvelope,
    DecisionResult,
    FindingEnvelope,
    ReconsiderationIn,
    TrackingIn,
    VerifyIn,
    VerifyOut,
)
from registry.corrections.services import (
    application_status,
    correction_events,
    decide,
    file_application,
    list_corrections,
    overdue_counts,
    read_attachment,
    read_correction,
    record_finding,
    request_reconsideration,
)
from registry.db import Database
from registry.http.auth import roles
from registry.http.body import DOCUMENT_BODY_BYTES, KIB, SignedBody, decode_signed_json
from registry.http.dependencies import Injected
from registry.http.openapi import (
    BEARER_KEY,
    BODY,
    GUARDED,
    PARAMETER,
    PROMETHEUS_TEXT,
    PUBLIC,
    QUERY,
    Codes,
    problems,
)
from registry.http.params import Id, PathNumber, court_parameter, path_number, refuse_repeated
from registry.http.ratelimit import client_key
from registry.identity.crypto import Secrets
from registry.listings.controllers import ENVELOPE
from registry.problems import Problem
from registry.runtime import Services
from registry.text import IDENTIFIER_PATTERN
from registry.timeutil import utcnow

# The exact bytes a court sent (its signature is checked over them).
SignedDecision = Annotated[bytes, Body(title="DecisionEnvelope")]

SignedFinding = Annotated[bytes, Body(title="FindingEnvelope")]

# The refusals of the listed party's identifier, as a bank's check words them.
IDENTIFIER_CODES = (
    "invalid_id_number",
    "unknown_id_type",
    "invalid_nationality",
    "invalid_credit_code",
    "invalid_organization_code",
    "invalid_registration_country",
    "invalid_registration_number",
    "subject_identifier",
)
APPLY: Codes = {
    404: "listing_not_found",
    409: ("listing_not_active", "correction_pending"),
    413: "attachment_too_large",
    415: "attachment_type_refused",
    422: ("unknown_ground", "too_many_attachments", *IDENTIFIER_CODES),
    429: "correction_budget_exhausted",
}
TRACKED: Codes = {404: "correction_not_found"}
SIGNED: Codes = {
    422: (
        "duplicate_member",
        "decision_inconsistent",
        "date_out_of_range",
        "unknown_key",
        "key_revoked",
        "key_expired",
        "key_court_mismatch",
        "signature_invalid",
    )
}


async def submit_application(
    services: Services, request: Request[Any, Any, Any], data: ApplicationIn
) -> ApplicationReceipt:
    """Budget first (every attempt counts), then the application in one transaction."""
    await budget_of(services).spend(client_key(request))
    settings = services.settings.corrections
    return await services.db.write(
        file_application,
        data,
        services.secrets,
        max_attachments=settings.max_attachments,
        max_attachment_bytes=settings.max_attachment_bytes,
        now=utcnow(),
    )


# An application carries its attachments in base64 (4/3 of their size): the default five
# of 2 MiB (REGISTRY_CORRECTIONS_MAX_ATTACHMENTS, _MAX_ATTACHMENT_BYTES) are ~13.4 MiB.
APPLICATION_BODY_BYTES = 16 * 1024 * KIB


# A court's finding sent again (its answer lost): what it did, recorded once.
FINDING_RECORDED = {
    200: ResponseSpec(
        DecisionResult,
        description="The same signed finding, recorded before: its result as it is now",
        generate_examples=False,
    )
}

# The queue's `?state=`: what is awaited (default), what is late, or everything.
QUEUE_STATES = ("open", "overdue", "all")


class PublicCorrectionController(Controller):
    """The listed person's side: apply, follow, ask for reconsideration (SPC Art. 11-12)."""

    path = "/v1/public/corrections"
    request_max_body_size = DOCUMENT_BODY_BYTES  # one document a request (registry.http.body)
    tags = ("corrections",)

    @post(
        "/",
        status_code=201,
        request_max_body_size=APPLICATION_BODY_BYTES,
        responses=problems(PUBLIC, BODY, APPLY),
    )
    async def apply(
        self, data: RequestBody[ApplicationIn], request: Request[Any, Any, Any], services: Injected[Services]
    ) -> ApplicationReceipt:
        """Apply for the correction of a listing (SPC Provisions Art. 11). The applicant's
        identifier must be the listing's; it is never echoed. Keep the application number and
        the tracking code: they are the only way to follow the application."""
        return await submit_application(services, request, data)

    @post("/status", status_code=200, responses=problems(PUBLIC, BODY, TRACKED))
    async def status(
        self, data: RequestBody[TrackingIn], db: Injected[Database], secrets: Injected[Secrets]
    ) -> ApplicationStatus:
        """The application's status, deadlines and decisions (number and tracking code)."""
        return await db.read(
            application_status, data.application_number, data.tracking_code, secrets.keyring, today_in_china()
        )

    @post(
        "/reconsideration",
        status_code=200,
        responses=problems(
            PUBLIC,
            BODY,
            TRACKED,
            {409: ("reconsideration_not_available", "reconsideration_too_late", "no_superior_court")},
        ),
    )
    async def reconsider(
        self, data: RequestBody[ReconsiderationIn], db: Injected[Database], secrets: Injected[Secrets]
    ) -> ApplicationStatus:
        """Ask the court one level up to reconsider a dismissal, within ten days of it (Art. 12)."""
        return await db.write(
            request_reconsideration,
            data.application_number,
            data.tracking_code,
            data.statement,
            secrets.keyring,
            now=utcnow(),
        )


def certificate_signer(services: Services) -> CertificateSigner:
    signer: CertificateSigner = services.extensions[SIGNER]
    return signer


async def issue_certificate(
    services: Services, request: Request[Any, Any, Any], data: CertificateIn
) -> CertificateOut:
    """Budget first, then the claims (in a transaction: the issue is logged), then the signature."""
    await budget_of(services).spend(client_key(request))
    claims, nonce = await services.db.write(
        certificate_claims, data.listing, data, services.secrets, now=utcnow()
    )
    token = certificate_signer(services).sign(claims)
    return CertificateOut(
        certificate=token,
        verification_url=verification_url(services.settings.server.base_url(), token),
        claims=msgspec.convert(claims, CertificateClaims),
        nonce=nonce,
    )


def verification_url(base: str, token: str) -> str:
    return f"{base}/certificates/verify?{urlencode({'token': token})}"


def verify_certificate(
    services: Services, token: str, holder: Any = None, nonce: str | None = None
) -> VerifyOut:
    """The verdict and, given the holder's identifier (`holder`: the fields of `VerifyIn`) and
    nonce, whether it is theirs."""
    subject = None if holder is None else holder_subject(holder, nonce, services.secrets.blind_index)
    verdict = certificate_signer(services).verify(token)
    if subject is not None:
        claims = verdict.get("claims")
        verdict["subject_matches"] = claims is not None and subject_matches(claims, *subject)
    return msgspec.convert(verdict, VerifyOut)


class PublicCertificateController(Controller):
    """Removal certificates: issued to the person, verified by anyone."""

    path = "/v1/public/certificates"
    request_max_body_size = DOCUMENT_BODY_BYTES  # one document a request (registry.http.body)
    tags = ("corrections",)

    @post(
        "/",
        status_code=201,
        responses=problems(
            PUBLIC,
            BODY,
            {
                404: "listing_not_found",
                409: "listing_still_published",
                422: IDENTIFIER_CODES,
                429: "correction_budget_exhausted",
            },
        ),
    )
    async def issue(
        self, data: RequestBody[CertificateIn], request: Request[Any, Any, Any], services: Injected[Services]
    ) -> CertificateOut:
        """A removal certificate for a listing removed or expired: a JWT signed by the registry
        (EdDSA, `/.well-known/jwks.json`), to print (the web page has a QR code) or to pass on.
        `nonce` comes beside it, not in it: kept apart, it is given with the number only to
        whoever must confirm that the certificate is the holder's."""
        return await issue_certificate(services, request, data)

    @post(
        "/verify",
        status_code=200,
        responses=problems(PUBLIC, BODY, {422: IDENTIFIER_CODES}),
    )
    async def verify(self, data: RequestBody[VerifyIn], services: Injected[Services]) -> VerifyOut:
        """Whether a certificate is genuine, and what it says (nothing else is looked up). With
        the holder's identifier (`id_number` with its `id_type` and a passport's `nationality`,
        or `credit_code`, `organization_code` or `registration`) and the `nonce` issued with the
        certificate, also whether it was issued to that identifier (`subject_matches`)."""
        return verify_certificate(services, data.certificate, data, data.nonce)


class CorrectionController(Controller):
    """The deciding courts' side: the queue, the file, the signed decisions; admins see all."""

    path = "/v1/corrections"
    request_max_body_size = DOCUMENT_BODY_BYTES  # one document a request (registry.http.body)
    tags = ("corrections",)
    guards = [roles("court", "admin")]  # noqa: RUF012 - Litestar's declaration style
    security = BEARER_KEY

    @get("/", responses=problems(GUARDED, QUERY, {400: "unknown_court"}))
    async def queue(
        self,
        request: Request[Any, Any, Any],
        db: Injected[Database],
        principal: Injected[Principal],
        # `state` is Litestar's own name for a handler's argument, so the query's `state` is
        # read under another name, and checked here: the framework's refusal would name it
        # `which`, a parameter no client sends.
        which: Annotated[
            str,
            QueryParameter(
                name="state", enum=list(QUEUE_STATES), description="open (default), overdue, or all"
            ),
        ] = "open",
        court: Annotated[
            str | None,
            Parameter(max_length=16, pattern=IDENTIFIER_PATTERN, description="Admins: one court's only"),
        ] = None,
        limit: Annotated[int, Parameter(ge=1, le=1000)] = 100,
        offset: Annotated[int, Parameter(ge=0, le=1_000_000)] = 0,
    ) -> CorrectionPage:
        """Applications and findings with what is awaited (review, reconsideration, correction)
        and by when: `open`, `overdue` (past the deadline), or `all`. A court sees its own
        listings' and the reconsiderations sent to it."""
        # Which of two states or courts was meant is a guess (the last would be taken).
        refuse_repeated(request, ("state", "court"))
        if which not in QUEUE_STATES:
            raise Problem(
                400, "invalid_parameter", "state: one of open, overdue, all", pointer="/query/state"
            )
        # A court the registry does not know is refused by the query, not an empty queue.
        court = court_parameter(court)
        scope = principal.bound_court if principal.bound_court is not None else court
        return await db.read(
            list_corrections, scope, state=which, today=today_in_china(), limit=limit, offset=offset
        )

    @get("/events", responses=problems(GUARDED, QUERY))
    async def events(
        self,
        db: Injected[Database],
        principal: Injected[Principal],
        after: Annotated[int, QueryParameter(ge=0, le=2**62, description="Your cursor: 0 at first")] = 0,
        limit: Annotated[int, QueryParameter(ge=1, le=1000)] = 100,
    ) -> CorrectionEventPage:
        """New applications, reconsiderations, decisions and corrections carried out that
        concern the court (every court's for an admin), in log order: poll with `after` set to
        the last `next_after` to be told of each as it comes."""
        return await db.read(correction_events, principal.bound_court, after, limit)

    @get("/{correction_id:str}", responses=problems(GUARDED, PARAMETER, {404: "correction_not_found"}))
    async def read(
        self,
        correction_id: Id,
        db: Injected[Database],
        secrets: Injected[Secrets],
        principal: Injected[Principal],
    ) -> CorrectionRead:
        """The application with the applicant's statement, contact, attachments' list and the
        signed decisions (the deciding courts and admins only)."""
        return await db.read(read_correction, correction_id, secrets.keyring, principal.bound_court)

    @get(
        "/{correction_id:str}/attachments/{number:str}",
        media_type="application/octet-stream",
        responses=problems(GUARDED, PARAMETER, {404: ("correction_not_found", "attachment_not_found")}),
    )
    async def attachment(
        self,
        correction_id: Id,
        number: PathNumber,
        db: Injected[Database],
        secrets: Injected[Secrets],
        principal: Injected[Principal],
    ) -> Response[bytes]:
        """One attachment, decrypted, as a download (never served to the public)."""
        index = path_number(
            number, Problem(404, "attachment_not_found", "this correction has no such attachment")
        )
        content, media_type = await db.read(
            read_attachment, correction_id, index, secrets.keyring, principal.bound_court
        )
        return Response(
            content,
            media_type=media_type,
            headers={
                "Content-Disposition": f'attachment; filename="attachment-{index}"',
                "X-Content-Type-Options": "nosniff",
                "Cache-Control": "no-store",
            },
        )

    @post(
        "/{correction_id:str}/decision",
        status_code=200,
        dto=SignedBody[DecisionEnvelope],
        responses=problems(
            GUARDED,
            BODY,
            PARAMETER,
            SIGNED,
            # A decision that amends the listing is refused as an amendment would be.
            ENVELOPE,
            {
                403: "not_deciding_court",
                404: "correction_not_found",
                409: ("correction_not_open", "listing_not_active", "relisting_barred"),
                422: (
                    "decision_mismatch",
                    "immutable_field",
                    "extension_required",
                    "term_change_needs_relisting",
                ),
            },
        ),
    )
    async def decide(
        self,
        data: SignedDecision,
        correction_id: Id,
        db: Injected[Database],
        secrets: Injected[Secrets],
        principal: Injected[Principal],
    ) -> DecisionResult:
        """The court's signed decision: the listing court on review (upheld with its removal or
        amendment in the same request, or to follow within three working days; or dismissed),
        its superior court on reconsideration (upheld: ordered; or dismissed)."""
        envelope = decode_signed_json(data)
        return await db.write(
            decide,
            correction_id,
            envelope,
            secrets,
            client_court=principal.bound_court,
            actor=principal.actor,
            now=utcnow(),
        )

    @post(
        "/findings",
        status_code=201,
        dto=SignedBody[FindingEnvelope],
        responses=FINDING_RECORDED
        | problems(
            GUARDED,
            BODY,
            SIGNED,
            {404: "listing_not_found", 409: ("listing_not_active", "finding_pending")},
        ),
    )
    async def finding(
        self,
        data: SignedFinding,
        db: Injected[Database],
        secrets: Injected[Secrets],
        principal: Injected[Principal],
    ) -> Response[DecisionResult]:
        """A wrongful or inaccurate listing the court found itself (SPC Art. 9): corrected now,
        with its removal or amendment, or within three working days of `found_on`. 201 when
        recorded; 200 with its result when the same signed finding was recorded before."""
        envelope = decode_signed_json(data)
        result, created = await db.write(
            record_finding,
            envelope,
            secrets,
            client_court=principal.bound_court,
            actor=principal.actor,
            now=utcnow(),
        )
        return Response(result, status_code=201 if created else 200)


@get(
    "/metrics/corrections",
    media_type=PROMETHEUS_TEXT,
    guards=[roles("admin")],
    security=BEARER_KEY,
    tags=["corrections"],
    responses=problems(GUARDED),
)
async def correction_metrics(db: Injected[Database]) -> Response[bytes]:
    """Open and overdue corrections as Prometheus text (scrape with a bearer admin key)."""
    open_counts, overdue = await db.read(overdue_counts, today_in_china())
    return Response(prometheus_text(open_counts, overdue), media_type=PROMETHEUS_TEXT)
