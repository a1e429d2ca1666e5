"""Public HTTP for the signed exports: list them by date, fetch the manifest and the files."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import date
from pathlib import Path
from typing import Any

from litestar import Controller, Request, Response, get
from litestar.datastructures import ETag
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import FromPath
from litestar.response import File

from publishing.exports.schemas import ExportLink, ExportList
from publishing.exports.writer import DATA_FILES, FILE_NAMES, MANIFEST, SIGNATURE, export_days, withdrawn
from registry.http.dependencies import Injected
from registry.http.openapi import PARAMETER, PUBLIC, media_types, problems
from registry.problems import Problem
from registry.settings import Settings

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MEDIA_TYPES = {MANIFEST: "application/json", SIGNATURE: "application/octet-stream"}


def _folder(export_dir: Path, day: str) -> Path:
    # Only the one spelling: fromisoformat also takes 20240101 and 2024W011 for the same day.
    if _DAY.fullmatch(day) is None:
        raise Problem(400, "invalid_date", "the export date is YYYY-MM-DD")
    try:
        parsed = date.fromisoformat(day)
    except ValueError as exc:
        raise Problem(400, "invalid_date", "the export date is YYYY-MM-DD") from exc
    if parsed not in export_days(export_dir):
        raise Problem(404, "export_not_found", f"no export for {parsed.isoformat()}")
    return export_dir / parsed.isoformat()


# A shared cache (a CDN, a mirror's proxy) must ask again before each reuse: a day's files
# are rewritten by the next run and withdrawn (410) once a listing in them is amended or
# removed (SPC Art. 9, 10), and a copy kept by heuristic freshness (Last-Modified alone)
# would serve them on for hours. Asking again is a 304 while the file is unchanged.
EXPORT_CACHE_CONTROL = "public, no-cache"


def _etag(folder: Path, name: str) -> str:
    """A file's SHA-256, as a strong validator that says nothing about the disk (Litestar's
    default is built from the file's path, mtime and size): a data file's as its signed
    manifest records it (not read again), the manifest's and the signature's their own."""
    manifest = (folder / MANIFEST).read_bytes()
    if name in DATA_FILES:
        for entry in json.loads(manifest)["files"]:
            if entry["name"] == name:
                return str(entry["sha256"])
    return hashlib.sha256(manifest if name == MANIFEST else (folder / name).read_bytes()).hexdigest()


def _not_modified(request: Request[Any, Any, Any], etag: str) -> bool:
    """RFC 9110 13.1.2: If-None-Match, weak comparison."""
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    tags = {tag.strip().removeprefix("W/") for tag in header.split(",")}
    return "*" in tags or f'"{etag}"' in tags


_FILE = Schema(type=OpenAPIType.STRING, content_media_type="application/octet-stream")
# One operation serves gzip files, the JSON manifest and its detached signature.
_DOWNLOAD = media_types(
    200,
    {
        "application/gzip": _FILE,
        "application/json": Schema(type=OpenAPIType.OBJECT, description="manifest.json"),
        "application/octet-stream": _FILE,
    },
)


class ExportController(Controller):
    path = "/v1/exports"
    tags = ("public",)

    @get("/", sync_to_thread=True, responses=problems(PUBLIC))
    def list_exports(self, settings: Injected[Settings]) -> ExportList:
        """Signed daily exports, newest first. Verify manifest.json.sig against /.well-known/jwks.json."""
        # The configured public origin, never the Host header a client chose.
        base = settings.server.base_url()
        return ExportList(
            [
                ExportLink(
                    date=day.isoformat(),
                    manifest=f"{base}/v1/exports/{day.isoformat()}/{MANIFEST}",
                    signature=f"{base}/v1/exports/{day.isoformat()}/{SIGNATURE}",
                    withdrawn=withdrawn(settings.exports.dir / day.isoformat()),
                )
                for day in export_days(settings.exports.dir)
            ]
        )

    @get(
        "/{day:str}/{name:str}",
        sync_to_thread=True,
        operation_class=_DOWNLOAD,
        responses={
            304: ResponseSpec(
                None,
                description="Not modified: the file is unchanged since the `ETag` you sent",
                generate_examples=False,
            ),
            **problems(
                PUBLIC,
                PARAMETER,
                {
                    400: "invalid_date",
                    404: ("export_not_found", "export_file_not_found"),
                    410: "export_withdrawn",
                },
            ),
        },
    )
    def download(
        self, request: Request[Any, Any, Any], settings: Injected[Settings], day: FromPath[str],
        name: FromPath[str],
    ) -> Response[Any]:  # fmt: skip
        """One file of an export: listings (.jsonl.gz, .csv.gz), changes.jsonl.gz (gzip),
        manifest.json (JSON), manifest.json.sig (the detached signature). The data files of an
        export that holds a listing amended, removed or expired since are gone (410
        `export_withdrawn`). The `ETag` is the file's SHA-256 (as in the manifest); caches
        must revalidate (`Cache-Control: public, no-cache`), answered 304 while it holds."""
        if name not in FILE_NAMES:
            raise Problem(404, "export_file_not_found", f"an export holds {', '.join(FILE_NAMES)}")
        folder = _folder(settings.exports.dir, day)
        if name in DATA_FILES and withdrawn(folder):
            raise Problem(
                410,
                "export_withdrawn",
                "this export held a listing amended, removed or expired since: its data is no "
                "longer published (SPC Art. 9, 10); its manifest and signature stay",
            )
        try:
            etag = _etag(folder, name)
        except FileNotFoundError:
            # Pruned or replaced by a run between the check above and this read.
            raise Problem(404, "export_not_found", "no export for this day") from None
        headers = {"Cache-Control": EXPORT_CACHE_CONTROL}
        if _not_modified(request, etag):
            return Response(b"", status_code=304, headers={**headers, "ETag": f'"{etag}"'})
        return File(
            folder / name,
            filename=name,
            media_type=_MEDIA_TYPES.get(name, "application/gzip"),
            headers=headers,
            etag=ETag(value=etag),
        )
