"""The one small-cell suppression mechanism for every figure the system publishes (results,
open-answer counts, reactions): ``model`` (tables and relations as one linear system),
``rules`` (primary and secondary suppression, repairs), ``audit`` (the reader it defends
against: bounds, exact elimination, and the protection interval proved with HiGHS), and
``versions`` (figures read again while they change — results of an open poll, reactions —
released in versions safe against differencing). docs/suppression.md explains it for
researchers; ``rules`` is the reference."""

from services.common.suppression.model import (
    DEFAULT_K,
    MIN_K,
    PRIMARY_AREA,
    PRIMARY_CELL,
    REASONS,
    SECONDARY_AREA,
    SECONDARY_CELL,
    Asked,
    Cell,
    Hierarchy,
    Row,
    SuppressedPoll,
    SuppressedRow,
    SuppressedTable,
    Table,
    asked_in,
    check_k,
)
from services.common.suppression.rules import (
    open_texts_allowed,
    shuffle_texts,
    suppress,
    suppress_areas,
    suppress_poll,
)

__all__ = [
    "DEFAULT_K",
    "MIN_K",
    "PRIMARY_AREA",
    "PRIMARY_CELL",
    "REASONS",
    "SECONDARY_AREA",
    "SECONDARY_CELL",
    "Asked",
    "Cell",
    "Hierarchy",
    "Row",
    "SuppressedPoll",
    "SuppressedRow",
    "SuppressedTable",
    "Table",
    "asked_in",
    "check_k",
    "open_texts_allowed",
    "shuffle_texts",
    "suppress",
    "suppress_areas",
    "suppress_poll",
]
