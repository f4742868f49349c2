"""The invoice as a PDF with the layout of a 数电票, rendered locally (no system fonts).

Text uses reportlab's built-in CID font STSong-Light (Adobe-GB1; the viewer supplies the
glyphs), so nothing depends on fonts installed on the machine. The QR code is drawn as
vector squares from segno's matrix. The page is 240 x 140 mm like the printed form; lines
beyond one page continue on further pages, the totals on the last.
"""

from __future__ import annotations

import io
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

import segno
from reportlab.lib.colors import Color, black
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.cidfonts import UnicodeCIDFont
from reportlab.pdfgen.canvas import Canvas

from forecourt.invoice.domain import amount_in_words, yuan
from forecourt.kit import clock

FONT = "STSong-Light"
PAGE = (240 * mm, 140 * mm)
BROWN = Color(0.55, 0.27, 0.07)
RED = Color(0.8, 0.1, 0.1)
ROWS_PER_PAGE = 8
ROW = 5.5 * mm
FRAME_BOTTOM = 16 * mm
LEFT, RIGHT = 10 * mm, 230 * mm
# table columns: (title, x of the left edge, alignment)
COLUMNS = (
    ("项目名称", 10, "l"),
    ("规格型号", 72, "l"),
    ("单位", 92, "c"),
    ("数量", 104, "r"),
    ("单价", 124, "r"),
    ("金额", 150, "r"),
    ("税率/征收率", 176, "c"),
    ("税额", 200, "r"),
)
QR_MASK = 2  # any of the 8 masks is valid; fixing one saves scoring all 8 (5 of 6 ms)
_registered = False


@dataclass(frozen=True, slots=True)
class DocLine:
    """One printed line."""

    goods_name: str
    spec: str
    unit: str
    quantity: str
    unit_price: str
    net_fen: int
    rate: str  # "13%"
    tax_fen: int


@dataclass(frozen=True, slots=True)
class Document:
    """Everything printed on the invoice."""

    number: str
    issued_at: datetime
    red: bool
    buyer_name: str
    buyer_tax_id: str | None
    seller_name: str
    seller_tax_id: str
    lines: tuple[DocLine, ...]
    net_fen: int
    tax_fen: int
    total_fen: int
    remark: str
    clerk: str
    qr_content: str | None


def _font() -> None:
    global _registered
    if not _registered:
        pdfmetrics.registerFont(UnicodeCIDFont(FONT))
        _registered = True


def _text(c: Canvas, x: float, y: float, text: str, size: float = 9, align: str = "l") -> None:
    c.setFont(FONT, size)
    if align == "r":
        c.drawRightString(x, y, text)
    elif align == "c":
        c.drawCentredString(x, y, text)
    else:
        c.drawString(x, y, text)


def _qr(c: Canvas, content: str, x: float, y: float, size: float) -> None:
    """Draw a QR code with its lower-left corner at (x, y)."""
    code = segno.make(content, error="m", micro=False, mask=QR_MASK)
    matrix = code.matrix
    cell = size / len(matrix)
    c.setFillColor(black)
    for row, modules in enumerate(matrix):
        for col, dark in enumerate(modules):
            if dark:
                c.rect(x + col * cell, y + size - (row + 1) * cell, cell, cell, stroke=0, fill=1)


def _header(c: Canvas, doc: Document, page: int, pages: int) -> None:
    top = PAGE[1]
    if doc.qr_content:
        _qr(c, doc.qr_content, LEFT, top - 30 * mm, 22 * mm)
    c.setFillColor(BROWN)
    _text(c, PAGE[0] / 2, top - 16 * mm, "电子发票（普通发票）", 18, "c")
    c.setStrokeColor(BROWN)
    c.line(PAGE[0] / 2 - 42 * mm, top - 18 * mm, PAGE[0] / 2 + 42 * mm, top - 18 * mm)
    c.line(PAGE[0] / 2 - 42 * mm, top - 19 * mm, PAGE[0] / 2 + 42 * mm, top - 19 * mm)
    if doc.red:
        c.setFillColor(RED)
        _text(c, PAGE[0] / 2, top - 25 * mm, "销项负数", 11, "c")
    c.setFillColor(black)
    local = clock.local(doc.issued_at)
    _text(c, 170 * mm, top - 12 * mm, f"发票号码：{doc.number}")
    _text(c, 170 * mm, top - 18 * mm, f"开票日期：{local:%Y年%m月%d日}")
    if pages > 1:
        _text(c, 170 * mm, top - 24 * mm, f"共{pages}页 第{page}页")


def _parties(c: Canvas, doc: Document, y: float) -> None:
    mid = PAGE[0] / 2
    c.rect(LEFT, y, RIGHT - LEFT, 20 * mm)
    c.line(mid, y, mid, y + 20 * mm)
    for x0, label, name, tax_id in (
        (LEFT, "购买方信息", doc.buyer_name, doc.buyer_tax_id or ""),
        (mid, "销售方信息", doc.seller_name, doc.seller_tax_id),
    ):
        c.line(x0 + 7 * mm, y, x0 + 7 * mm, y + 20 * mm)
        for i, ch in enumerate(label):
            _text(c, x0 + 3.5 * mm, y + 16.5 * mm - i * 3.2 * mm, ch, 8, "c")
        _text(c, x0 + 9 * mm, y + 13 * mm, f"名称：{name}")
        _text(c, x0 + 9 * mm, y + 5 * mm, f"统一社会信用代码/纳税人识别号：{tax_id}")


def _row(c: Canvas, y: float, cells: Sequence[str]) -> None:
    edges = [x for _, x, _ in COLUMNS[1:]] + [230]
    for (_, x, align), right, text in zip(COLUMNS, edges, cells, strict=True):
        if align == "r":
            _text(c, (right - 2) * mm, y, text, 8.5, "r")
        elif align == "c":
            _text(c, (x + right) / 2 * mm, y, text, 8.5, "c")
        else:
            _text(c, (x + 2) * mm, y, text, 8.5)


def _line_cells(line: DocLine) -> list[str]:
    return [
        line.goods_name,
        line.spec,
        line.unit,
        line.quantity,
        line.unit_price,
        yuan(line.net_fen),
        line.rate,
        yuan(line.tax_fen),
    ]


def _totals(c: Canvas, doc: Document, y: float) -> float:
    _text(c, 20 * mm, y, "合    计", 9, "c")
    _text(c, 174 * mm, y, f"¥{yuan(doc.net_fen)}", 9, "r")
    _text(c, 228 * mm, y, f"¥{yuan(doc.tax_fen)}", 9, "r")
    y -= 1.8 * mm
    c.line(LEFT, y, RIGHT, y)
    y -= 5 * mm
    words = amount_in_words(doc.total_fen)
    _text(c, 12 * mm, y, f"价税合计（大写）    {words}")
    _text(c, 165 * mm, y, f"（小写）¥{yuan(doc.total_fen)}")
    y -= 1.8 * mm
    c.line(LEFT, y, RIGHT, y)
    y -= 5 * mm
    _text(c, 12 * mm, y, "备注")
    _text(c, 24 * mm, y, doc.remark, 8.5)
    return y


def render(doc: Document) -> bytes:
    """The PDF bytes of the invoice."""
    _font()
    buffer = io.BytesIO()
    c = Canvas(buffer, pagesize=PAGE, pageCompression=1)
    c.setTitle(f"电子发票 {doc.number}")
    c.setAuthor(doc.seller_name)
    chunks = [doc.lines[i : i + ROWS_PER_PAGE] for i in range(0, len(doc.lines), ROWS_PER_PAGE)]
    chunks = chunks or [()]
    for page, chunk in enumerate(chunks, start=1):
        _header(c, doc, page, len(chunks))
        c.setStrokeColor(BROWN)
        _parties(c, doc, PAGE[1] - 55 * mm)
        y = PAGE[1] - 60 * mm
        _row(c, y, [title for title, _, _ in COLUMNS])
        for line in chunk:
            y -= ROW
            _row(c, y, _line_cells(line))
        y -= ROW
        c.line(LEFT, y + 3.5 * mm, RIGHT, y + 3.5 * mm)
        if page == len(chunks):
            y = _totals(c, doc, y)
        else:
            _text(c, PAGE[0] / 2, y, "（续下页）", 8.5, "c")
        bottom = min(y - 3 * mm, FRAME_BOTTOM)
        c.rect(LEFT, bottom, RIGHT - LEFT, PAGE[1] - 35 * mm - bottom)
        _text(c, 20 * mm, bottom - 6 * mm, f"开票人：{doc.clerk}")
        c.showPage()
    c.save()
    return buffer.getvalue()
