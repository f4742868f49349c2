"""Render a table as CSV (UTF-8 with BOM, so Excel reads Chinese) or as an xlsx workbook."""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import quote

from openpyxl import Workbook

Cell = str | int | None
CSV_TYPE = "text/csv; charset=utf-8"
XLSX_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"


@dataclass(frozen=True, slots=True)
class Table:
    """A titled table: header row and data rows."""

    title: str
    header: Sequence[str]
    rows: Sequence[Sequence[Cell]]


def to_csv(table: Table) -> bytes:
    """The table as CSV bytes with a UTF-8 byte order mark."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(table.header)
    writer.writerows(["" if v is None else v for v in row] for row in table.rows)
    return ("\ufeff" + out.getvalue()).encode("utf-8")


def to_xlsx(table: Table) -> bytes:
    """The table as an xlsx workbook with one sheet."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = table.title[:31]
    sheet.append(list(table.header))
    for row in table.rows:
        sheet.append(list(row))
    sheet.freeze_panes = "A2"
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def render(table: Table, fmt: str, filename: str) -> tuple[bytes, str, str]:
    """(body, media type, Content-Disposition) for `fmt` csv or xlsx."""
    body, media = (to_xlsx(table), XLSX_TYPE) if fmt == "xlsx" else (to_csv(table), CSV_TYPE)
    name = f"{filename}.{fmt}"
    ascii_name = name.encode("ascii", "replace").decode().replace("?", "_")
    disposition = f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(name)}"
    return body, media, disposition
