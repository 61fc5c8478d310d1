"""Reading back what the service issues: a PDF's text, fonts and QR codes; a VC-JWT's payload."""

from __future__ import annotations

import base64
import io
import json
from dataclasses import dataclass
from typing import Any

import pypdf
import pypdfium2
import zxingcpp


@dataclass(frozen=True)
class ReadPdf:
    """What a reader of the PDF gets."""

    text: str
    qr_codes: list[str]
    fonts: dict[str, bool]  # base font name -> whether its program is embedded
    pages: int


def read_pdf(data: bytes, *, scale: float = 2.0) -> ReadPdf:
    """Extract the text (pypdf), list the fonts, render the pages and decode their QR codes."""
    reader = pypdf.PdfReader(io.BytesIO(data))
    text = "\n".join(page.extract_text() or "" for page in reader.pages)
    fonts: dict[str, bool] = {}
    for page in reader.pages:
        resources: Any = page.get("/Resources") or {}
        for font in (resources.get("/Font") or {}).values():
            font = font.get_object()
            descriptor = font.get("/FontDescriptor")
            if descriptor is None and font.get("/DescendantFonts"):
                descriptor = font["/DescendantFonts"][0].get_object().get("/FontDescriptor")
            descriptor = descriptor.get_object() if descriptor is not None else {}
            embedded = any(k in descriptor for k in ("/FontFile", "/FontFile2", "/FontFile3"))
            fonts[str(font.get("/BaseFont"))] = embedded
    document = pypdfium2.PdfDocument(data)
    codes: list[str] = []
    try:
        for index in range(len(document)):
            image = document[index].render(scale=scale).to_pil()
            codes += [found.text for found in zxingcpp.read_barcodes(image)]
    finally:
        document.close()
    return ReadPdf(text=text, qr_codes=codes, fonts=fonts, pages=len(reader.pages))


def jwt_payload(token: str) -> dict[str, Any]:
    """The payload of a compact JWS, unverified."""
    segment = token.split(".")[1]
    found: dict[str, Any] = json.loads(
        base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))
    )
    return found
