"""The PDF: text extracted with pypdf and checked, pages, red-letter marks, QR code."""

from __future__ import annotations

import io
from dataclasses import replace
from datetime import UTC, datetime

import segno
from pypdf import PdfReader

from forecourt.invoice.pdf import QR_MASK, DocLine, Document, render

LINE = DocLine("*汽油*92号车用汽油", "", "升", "30.000", "7.76", 20_602, "13%", 2_678)
DOC = Document(
    number="26532000000000001234",
    issued_at=datetime(2026, 11, 24, 16, 30, tzinfo=UTC),  # 25 Nov in Beijing
    red=False,
    buyer_name="北京百度网讯科技有限公司",
    buyer_tax_id="91110000802100433B",
    seller_name="Forecourt 演示能源有限公司",
    seller_tax_id="91530100MA6K0FC01K",
    lines=(LINE,),
    net_fen=20_602,
    tax_fen=2_678,
    total_fen=23_280,
    remark="订单：ABC",
    clerk="系统",
    qr_content="01,32,,26532000000000001234,232.80,20261125,,1A2B",
)


def _pages(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def test_one_page_invoice_has_every_field() -> None:
    pdf = render(DOC)
    assert pdf.startswith(b"%PDF-")
    [text] = _pages(pdf)
    for expected in (
        "电子发票（普通发票）",
        "发票号码：26532000000000001234",
        "开票日期：2026年11月25日",
        "购买方信息"[0],
        "名称：北京百度网讯科技有限公司",
        "统一社会信用代码/纳税人识别号：91110000802100433B",
        "名称：Forecourt 演示能源有限公司",
        "91530100MA6K0FC01K",
        "项目名称",
        "税率/征收率",
        "*汽油*92号车用汽油",
        "升",
        "30.000",
        "7.76",
        "206.02",
        "13%",
        "26.78",
        "¥206.02",
        "¥26.78",
        "价税合计（大写）",
        "贰佰叁拾贰圆捌角整",
        "（小写）¥232.80",
        "备注",
        "订单：ABC",
        "开票人：系统",
    ):
        assert expected in text, expected
    assert "销项负数" not in text


def test_many_lines_continue_on_further_pages_with_totals_last() -> None:
    doc = replace(
        DOC, lines=(LINE,) * 20, net_fen=20 * 20_602, tax_fen=20 * 2_678, total_fen=20 * 23_280
    )
    pages = _pages(render(doc))
    assert len(pages) == 3
    assert [p.count("*汽油*92号车用汽油") for p in pages] == [8, 8, 4]
    assert "共3页 第1页" in pages[0]
    assert "（续下页）" in pages[0]
    assert "价税合计" not in pages[0]
    assert "肆仟陆佰伍拾陆圆整" in pages[2]
    assert "¥4656.00" in pages[2]


def test_red_letter_invoice_is_marked_negative() -> None:
    red_line = replace(LINE, quantity="-30.000", net_fen=-20_602, tax_fen=-2_678)
    doc = replace(
        DOC,
        red=True,
        lines=(red_line,),
        net_fen=-20_602,
        tax_fen=-2_678,
        total_fen=-23_280,
        remark="被红冲蓝字数电发票号码：26532000000000001233",
    )
    [text] = _pages(render(doc))
    for expected in (
        "销项负数",
        "-30.000",
        "-206.02",
        "¥-232.80",
        "负贰佰叁拾贰圆捌角整",
        "26532000000000001233",
    ):
        assert expected in text, expected


def _rectangles(pdf: bytes) -> int:
    contents = PdfReader(io.BytesIO(pdf)).pages[0].get_contents()
    assert contents is not None
    return contents.get_data().count(b" re ")


def test_qr_code_is_drawn_module_by_module() -> None:
    modules = sum(
        sum(row) for row in segno.make(DOC.qr_content or "", error="m", mask=QR_MASK).matrix
    )
    assert modules > 200
    drawn = _rectangles(render(DOC)) - _rectangles(render(replace(DOC, qr_content=None)))
    assert drawn == modules
