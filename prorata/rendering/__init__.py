"""Invoices, credit notes and receipts as PDF, in the account's language (fr or en).

Invoices and credit notes are Factur-X (EN 16931 profile) PDF/A-3 with their CII XML
embedded as ``factur-x.xml``; receipts are plain PDFs. Rendering is deterministic: the
same document gives the same bytes.

Modules: ``sheet`` (the parties and what a document states: lines, periods, VAT, totals),
``labels`` (fr/en words and legal mentions), ``pdf`` (the layout, fpdf2), ``facturx`` (the
CII XML, its validation and the PDF/A-3 embedding), ``render`` (the entry points).
"""

from prorata.rendering.facturx import facturx_xml
from prorata.rendering.render import render_document, render_receipt
from prorata.rendering.sheet import Party, Settlement

__all__ = ["Party", "Settlement", "facturx_xml", "render_document", "render_receipt"]
