"""Public HTTP for the signed exports: list them by date, fetch the manifest and the files."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

from litestar import Controller, get
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
        responses=problems(
            PUBLIC,
            PARAMETER,
            {
                400: "invalid_date",
                404: ("export_not_found", "export_file_not_found"),
                410: "export_withdrawn",
            },
        ),
    )
    def download(self, settings: Injected[Settings], day: FromPath[str], name: FromPath[str]) -> File:
        """One file of an export: listings (.jsonl.gz, .csv.gz), changes.jsonl.gz (gzip),
        manifest.json (JSON), manifest.json.sig (the detached signature). The data files of an
        export that holds a listing amended, removed or expired since are gone (410
        `export_withdrawn`)."""
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
        path = folder / name
        return File(path, filename=name, media_type=_MEDIA_TYPES.get(name, "application/gzip"))
