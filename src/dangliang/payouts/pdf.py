"""PDF documents (PDF 文档): the printable HTML of a statement or of payslips, laid out and
paginated by WeasyPrint.

- `html_to_pdf(html)`: any of this package's HTML documents as PDF bytes. A stylesheet passed
  beside the HTML names the Chinese font stack (`FONT_STACK`) for whatever the document does
  not style itself; the fonts are embedded as subsets, so the PDF prints the same anywhere.
  Nothing is fetched: only `data:` URLs are read (no file, no network), so a name or a cause
  in a document can never pull anything into it. The PDF's title is the document's
  `<title>` (or `title`). Same input, same bytes (WeasyPrint writes no date).
- `payslip_pages(doc, staff_ids)`: the payslips of several people of one distribution in one
  HTML document, each person on a page of their own.

The font has to be installed where the PDF is made: `apt-get install fonts-noto-cjk` on
Debian/Ubuntu (family 「Noto Sans CJK SC」); WeasyPrint needs pango (`libpango-1.0-0
libpangoft2-1.0-0`). Without a CJK font the Chinese text prints as boxes.
"""

from __future__ import annotations

import html as markup
from collections.abc import Mapping, Sequence
from typing import Any

from dangliang.payouts import payslips

FONT_STACK = '"Noto Sans CJK SC", "Noto Sans SC", "Source Han Sans SC", sans-serif'
"""Noto Sans CJK SC (Debian's fonts-noto-cjk), then the same design under its other names."""
FONT_CSS = f"html {{ font-family: {FONT_STACK}; }}"
DEFAULT_TITLE = "dangliang"
PAGE_PER_PERSON = ".slip + .slip { break-before: page; }"


def html_to_pdf(html: str, *, title: str | None = None) -> bytes:
    """The document as PDF bytes (fonts embedded as subsets; nothing fetched)."""
    import weasyprint  # imported here: only a PDF needs it, and it takes a while to import
    from weasyprint.urls import URLFetcher

    fetcher = URLFetcher(allowed_protocols={"data"})
    document = weasyprint.HTML(string=html, url_fetcher=fetcher).render(
        stylesheets=[weasyprint.CSS(string=FONT_CSS, url_fetcher=fetcher)]
    )
    document.metadata.title = title or document.metadata.title or DEFAULT_TITLE
    pdf: bytes = document.write_pdf()
    return pdf


def payslip_pages(doc: Mapping[str, Any], staff_ids: Sequence[str]) -> str:
    """The payslips of `staff_ids` (in that order) as one HTML document, a page each."""
    title = payslips.payslip_title(doc)
    if len(staff_ids) == 1:
        names = {s.get("staff_id"): s.get("name") for s in doc["distribution"]["staff"]}
        title = f"{title} {names.get(staff_ids[0]) or staff_ids[0]}"
    parts = [
        "<!DOCTYPE html>",
        '<html lang="zh-CN">',
        "<head>",
        '<meta charset="utf-8">',
        f"<title>{markup.escape(title)}</title>",
        f"<style>{payslips.CSS}{PAGE_PER_PERSON}</style>",
        "</head>",
        "<body>",
        *(payslips.payslip_section(doc, staff_id) for staff_id in staff_ids),
        "</body>",
        "</html>",
        "",
    ]
    return "\n".join(parts)


__all__ = ["FONT_STACK", "html_to_pdf", "payslip_pages"]
