"""What a page request asks for: filters, search, sort and page, parsed once and turned
back into links (sort headers, previous/next, the CSV download, removable chips).

The page has no JavaScript, so every control is a link or a GET form: one
:class:`ListQuery` holds the parameters a list view understands, and
:meth:`ListQuery.url` writes them back, changed where a link changes them.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlencode

ROWS_PER_PAGE = 100
"""Leads per page of a list view."""

SORTS: dict[str, str] = {
    "score": "Score",
    "rules": "Rules",
    "fit": "Fit",
    "engagement": "Engagement",
    "activity": "Last activity",
}
"""Sortable columns (query value -> header); each sorts best (or newest) first by default."""

CELLS: dict[str, str] = {
    "call_now": "call now",
    "nurture": "nurture",
    "educate": "educate",
    "deprioritise": "deprioritise",
}
"""The potential x engagement cells (models' ``cell`` column) and their labels."""

CHANGE_KINDS: dict[str, str] = {
    "up": "grade up",
    "down": "grade down",
    "appeared": "new",
    "left": "left",
}
"""Kinds of the store's change feed and how the page names them."""


def _clean(values: list[str] | None, limit: int = 20) -> tuple[str, ...]:
    """Non-empty, distinct values in their order (at most ``limit``)."""
    seen: dict[str, None] = {}
    for value in values or ():
        value = value.strip()
        if value:
            seen.setdefault(value, None)
    return tuple(seen)[:limit]


def parse_attr(text: str) -> tuple[str, str] | None:
    """``"industry=fintech"`` -> ``("industry", "fintech")``; None without a key or ``=``."""
    key, sep, value = text.partition("=")
    key = key.strip()
    return (key, value.strip()) if sep and key else None


@dataclass(frozen=True)
class ListQuery:
    """The parameters of a list view (``/ui``, ``/ui/compare``, ``/ui/download.csv``).

    Filters combine with AND; values of one repeatable filter (grades, cells) with OR.
    """

    q: str = ""
    grades: tuple[str, ...] = ()
    owner: str | None = None
    segment: str | None = None
    cells: tuple[str, ...] = ()
    attrs: tuple[tuple[str, str], ...] = ()
    sort: str = "score"
    descending: bool = True
    page: int = 1
    extra: tuple[tuple[str, str], ...] = field(default=())
    """Parameters of one view only (e.g. the compare view's ``side``), kept in its links."""

    @classmethod
    def parse(
        cls,
        *,
        q: str | None = None,
        grade: list[str] | None = None,
        owner: str | None = None,
        segment: str | None = None,
        cell: list[str] | None = None,
        attr: list[str] | None = None,
        attr_key: str | None = None,
        attr_value: str | None = None,
        sort: str | None = None,
        order: str | None = None,
        page: int = 1,
    ) -> ListQuery:
        """Build a query from request parameters; unknown sorts and cells are dropped.

        ``attr_key`` + ``attr_value`` (the form's two fields) add one more ``attr``.
        """
        pairs = [p for a in _clean(attr) if (p := parse_attr(a)) is not None]
        if attr_key and attr_key.strip() and attr_value is not None and attr_value.strip():
            pairs.append((attr_key.strip(), attr_value.strip()))
        sort = sort if sort in SORTS else "score"
        return cls(
            q=(q or "").strip()[:200],
            grades=_clean(grade),
            owner=(owner or "").strip() or None,
            segment=(segment or "").strip() or None,
            cells=tuple(c for c in _clean(cell) if c in CELLS),
            attrs=tuple(dict.fromkeys(pairs))[:10],
            sort=sort,
            descending=order != "asc",
            page=max(1, page),
        )

    @property
    def offset(self) -> int:
        """Rows before this page."""
        return (self.page - 1) * ROWS_PER_PAGE

    def params(self) -> list[tuple[str, Any]]:
        """The query as URL parameters (defaults left out), in a stable order."""
        out: list[tuple[str, Any]] = []
        if self.q:
            out.append(("q", self.q))
        out += [("grade", g) for g in self.grades]
        if self.owner:
            out.append(("owner", self.owner))
        if self.segment:
            out.append(("segment", self.segment))
        out += [("cell", c) for c in self.cells]
        out += [("attr", f"{k}={v}") for k, v in self.attrs]
        if self.sort != "score":
            out.append(("sort", self.sort))
        if not self.descending:
            out.append(("order", "asc"))
        out += list(self.extra)
        if self.page > 1:
            out.append(("page", self.page))
        return out

    def url(self, path: str = "/ui", **changes: Any) -> str:
        """``path`` with this query, ``changes`` applied (paging restarts unless given)."""
        changed = replace(self, **{"page": 1, **changes})
        params = changed.params()
        return path + ("?" + urlencode(params) if params else "")

    def sort_url(self, key: str, path: str = "/ui") -> str:
        """The link of a sortable header: best first, or reversed if already sorted so."""
        descending = not (self.sort == key and self.descending)
        return self.url(path, sort=key, descending=descending)

    def without_attr(self, pair: tuple[str, str], path: str = "/ui") -> str:
        """The link that drops one attribute filter (a chip's close link)."""
        return self.url(path, attrs=tuple(a for a in self.attrs if a != pair))

    def filter_key(self, skip: tuple[str, ...] = ()) -> tuple:
        """What selects the rows (not their order or page); ``skip`` leaves out the grade
        or cell filter (a facet's counts ignore their own filter)."""
        return (
            self.q,
            () if "grade" in skip else self.grades,
            self.owner,
            self.segment,
            () if "cell" in skip else self.cells,
            self.attrs,
            self.extra,
        )

    @property
    def filtered(self) -> bool:
        """Whether any filter or search narrows the list."""
        return bool(self.q or self.grades or self.owner or self.segment or self.cells or self.attrs)
