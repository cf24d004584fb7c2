"""``html_table(rows)``: rows of numbers shown as an HTML table in a notebook, text elsewhere.

A notebook shows what a cell's last expression returns (or what ``display`` is given) through
its ``_repr_html_``: an ``HTMLTable`` is a real ``<table>`` there, with numbers right-aligned
and words left-aligned, and an aligned plain-text table everywhere else (``print``, a
terminal, the ``text/plain`` copy a saved notebook keeps). pandas would do the same, but it is
not in the ``notebooks`` extra and its ``Styler`` needs jinja2 too; rows of dicts are all the
comparisons of ``bench`` produce.

Numbers are printed as given, so round them first to what they mean (``bench.round_sig``):
with thousands separators (``1,230``), each in its shortest form (``0.094``, ``1.5``), or as a
column's ``formats`` entry says (``",.1f"`` for MB to 0.1). None and NaN print as an empty
cell ("not measured").
"""

from __future__ import annotations

import html
import math
import numbers
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

#: The table's text size: JupyterLab's own (about 13 px), never smaller than 12 px.
FONT_SIZE = "13px"


def format_value(value: Any) -> str:
    """One cell's text: ``""`` for None and NaN, ``1,230`` for ints and whole floats, the
    shortest form of any other float (``0.48``), ``str`` of anything else (bools as words)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value)
    if isinstance(value, numbers.Integral):  # NumPy integers too
        return f"{int(value):,}"
    if isinstance(value, numbers.Real):
        value = float(value)
        if math.isnan(value):
            return ""
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        if value.is_integer() and abs(value) < 1e15:
            return f"{int(value):,}"
        return f"{value:,}"
    return str(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


@dataclass
class HTMLTable:
    """Rows shown as a table: ``_repr_html_`` in a notebook, ``str`` as aligned text.

    ``columns`` are the keys shown, in order; a column is numeric (right-aligned) when every
    value it holds that is not None is a number. Build it with ``html_table``.
    """

    rows: list[dict[str, Any]]
    columns: list[str]
    caption: str | None = None
    notes: list[str] = field(default_factory=list)
    formats: dict[str, str | Callable[[Any], str]] = field(default_factory=dict)

    def numeric(self, column: str) -> bool:
        """Whether ``column`` holds numbers only (None counts as a blank, not a word)."""
        values = [row.get(column) for row in self.rows]
        present = [v for v in values if v is not None]
        return bool(present) and all(_is_number(v) for v in present)

    def cell(self, row: Mapping[str, Any], column: str) -> str:
        """The text of ``row``'s ``column``: its ``formats`` entry (a format spec such as
        ``",.1f"``, or a function), else ``format_value``."""
        value = row.get(column)
        if value is None:
            return ""
        fmt = self.formats.get(column)
        if fmt is None:
            return format_value(value)
        return format(value, fmt) if isinstance(fmt, str) else fmt(value)

    def _repr_html_(self) -> str:
        right = {c: self.numeric(c) for c in self.columns}

        def style(column: str) -> str:
            align = "right" if right[column] else "left"
            return f' style="text-align: {align}; padding: 2px 8px"'

        head = "".join(f"<th{style(c)}>{html.escape(c)}</th>" for c in self.columns)
        body = "".join(
            "<tr>"
            + "".join(f"<td{style(c)}>{html.escape(self.cell(row, c))}</td>" for c in self.columns)
            + "</tr>"
            for row in self.rows
        )
        caption = (
            f'<caption style="caption-side: top; text-align: left">'
            f"{html.escape(self.caption)}</caption>"
            if self.caption
            else ""
        )
        notes = "".join(
            f'<div style="font-size: {FONT_SIZE}">{html.escape(n)}</div>' for n in self.notes
        )
        return (
            f'<table style="font-size: {FONT_SIZE}; font-variant-numeric: tabular-nums; '
            f'border-collapse: collapse">{caption}<thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table>{notes}"
        )

    def text(self) -> str:
        """The table as aligned plain text (numbers right-aligned), caption and notes around."""
        cells = [[self.cell(row, c) for c in self.columns] for row in self.rows]
        widths = [max([len(c), *(len(r[i]) for r in cells)]) for i, c in enumerate(self.columns)]
        right = [self.numeric(c) for c in self.columns]

        def line(texts: Sequence[str]) -> str:
            return "  ".join(
                t.rjust(w) if r else t.ljust(w)
                for t, w, r in zip(texts, widths, right, strict=True)
            ).rstrip()

        lines = [self.caption] if self.caption else []
        lines += [line(self.columns), line(["-" * w for w in widths])]
        lines += [line(r) for r in cells]
        return "\n".join([*lines, *self.notes])

    def __str__(self) -> str:
        return self.text()

    def __repr__(self) -> str:  # the text/plain copy next to text/html
        return self.text()


def html_table(
    rows: Sequence[Mapping[str, Any]],
    *,
    columns: Sequence[str] | None = None,
    caption: str | None = None,
    notes: Sequence[str] = (),
    formats: Mapping[str, str | Callable[[Any], str]] | None = None,
) -> HTMLTable:
    """A table of ``rows`` (dicts, one per row) for a notebook to display.

    Args:
        rows: one mapping per row, column name -> value (a number, a string or None).
        columns: the columns shown, in order (default: every key, in the order first seen).
        caption: a line above the table saying what it compares.
        notes: lines under it (what a pipeline is, the machine).
        formats: column -> a format spec (``",.1f"``: every value with one decimal) or a
            function giving a value's text; the other columns print each value in its
            shortest form.

    Returns an ``HTMLTable``: the last expression of a cell, or ``display(table)``, shows it
    as HTML. Raises ``ValueError`` for a ``columns`` entry no row has.
    """
    materialised = [dict(r) for r in rows]
    if columns is None:
        seen: dict[str, None] = {}
        for row in materialised:
            seen.update(dict.fromkeys(row))
        cols = list(seen)
    else:
        cols = list(columns)
        known = {k for row in materialised for k in row}
        missing = [c for c in cols if c not in known]
        if materialised and missing:
            raise ValueError(
                f"columns must be keys of the rows. Received: columns={list(columns)!r} "
                f"(no row has {missing!r})"
            )
    return HTMLTable(materialised, cols, caption, list(notes), dict(formats or {}))
