"""Reading a receipt the way its reader does: the page's fields by id, the PDF's text."""

from __future__ import annotations

import shutil
import subprocess

from tests.catalog.html import parse


def pdf_text(data: bytes) -> str:
    """The PDF's text, laid out as printed (poppler's pdftotext; .ci/run installs poppler-utils)."""
    assert data.startswith(b"%PDF-"), data[:20]
    tool = shutil.which("pdftotext")
    assert tool, "pdftotext (poppler-utils) is needed to read the receipt PDF"
    done = subprocess.run(
        [tool, "-layout", "-enc", "UTF-8", "-", "-"],
        input=data,
        capture_output=True,
        check=True,
        timeout=30,
    )
    return " ".join(done.stdout.decode().split())


def receipt_fields(content: bytes) -> dict:
    """What the receipt page shows, by field: the header, the facts and each line's cells."""
    doc = parse(content)

    def text(node) -> str:
        return " ".join(node.text.split())

    return {
        "pharmacy_name": text(doc.find(id="receipt-pharmacy-name")),
        "pharmacy_address": text(doc.find(id="receipt-pharmacy-address")),
        "pharmacy_licence": text(doc.find(id="receipt-pharmacy-licence")),
        "patient": text(doc.find(id="receipt-patient")),
        "card": text(doc.find(id="receipt-card")),
        "tax": text(doc.find(id="receipt-tax")),
        "total": text(doc.find(id="receipt-total")),
        "paid": text(doc.find(id="receipt-paid")),
        "lines": [
            {
                "rx": text(row.find(cls="receipt-rx")),
                "filled": text(row.find(cls="receipt-filled")),
                "qty": text(row.find(cls="receipt-qty")),
                "amount": text(row.find(cls="receipt-amount")),
            }
            for row in doc.find_all("tr", cls="receipt-line")
        ],
    }
