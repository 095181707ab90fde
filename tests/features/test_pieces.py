"""``features.pieces.join_rows`` (the compiled copy every batch JSON column goes through)
equals plain Python joins on varied input: pieces of every length around a word (0-17
bytes, multi-byte UTF-8), missing pieces (-1), rows without items, one row, none; and its
Arrow buffers are what they were before the fill stored whole words unaligned (offsets,
then the text zero-padded to whole 8-byte words)."""

from __future__ import annotations

import itertools

import numpy as np
import pyarrow as pa
import pytest

from leadscore.features.pieces import Pieces, by_row, join_rows

ALPHABET = ["a", "Z", "0", '"', "\\", "é", "ß", "€", "日", "😀", " ", ",", "{"]


def _texts(rng: np.random.Generator, n: int) -> list[str]:
    return ["".join(rng.choice(ALPHABET, size=int(rng.integers(0, 18)))) for _ in range(n)]


def _plain(
    texts: list[list[str]],
    codes: list[np.ndarray],
    groups: np.ndarray | None,
    open_: str,
    sep: str,
    close: str,
) -> list[str]:
    items = len(codes[0]) if codes else 0
    item = [
        "".join(t[c[i]] for t, c in zip(texts, codes, strict=True) if c[i] >= 0)
        for i in range(items)
    ]
    bounds = np.arange(items + 1) if groups is None else groups
    return [open_ + sep.join(item[a:b]) + close for a, b in itertools.pairwise(bounds)]


def _previous_buffers(rows: list[str]) -> tuple[bytes, bytes]:
    """The offsets and the data buffer as the word-merging fill wrote them."""
    encoded = [r.encode() for r in rows]
    offsets = np.zeros(len(rows) + 1, dtype=np.int64)
    np.cumsum([len(e) for e in encoded], out=offsets[1:])
    data = b"".join(encoded)
    return offsets.tobytes(), data + b"\0" * (-len(data) % 8)


def _join(
    rng: np.random.Generator, items: int, n_columns: int, groups: np.ndarray | None, frame: tuple
) -> None:
    pieces, columns, texts, codes = Pieces(), [], [], []
    pieces.add(["unused", "é"])  # columns' codes count from their own first piece
    for _ in range(n_columns):
        column_texts = _texts(rng, int(rng.integers(1, 40)))
        column = rng.integers(-1, len(column_texts), size=items)
        first = pieces.add(column_texts)
        columns.append((column, first))
        texts.append(column_texts)
        codes.append(column)
    got = join_rows(pieces, columns, groups, *frame)
    expected = _plain(texts, codes, groups, *frame)
    assert got.to_pylist() == expected
    assert got.type == pa.large_string()
    offsets, data = _previous_buffers(expected)
    assert got.buffers()[1].to_pybytes() == offsets
    assert got.buffers()[2].to_pybytes() == data


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize(
    "frame", [("", "", ""), ("[", ",", "]"), ("«", "; ", "»😀"), ("{", "", "}")]
)
def test_grouped_rows_equal_plain_joins(seed, frame):
    rng = np.random.default_rng(seed)
    items = int(rng.integers(0, 300))
    counts = rng.integers(0, 5, size=int(rng.integers(1, 80)))
    counts[-1] += max(0, items - counts.sum())
    groups = np.zeros(len(counts) + 1, dtype=np.int64)
    np.cumsum(counts, out=groups[1:])
    _join(rng, int(groups[-1]), int(rng.integers(1, 7)), groups, frame)


@pytest.mark.parametrize("seed", range(4))
def test_one_item_per_row_equal_plain_joins(seed):
    rng = np.random.default_rng(100 + seed)
    _join(rng, int(rng.integers(1, 500)), int(rng.integers(1, 20)), None, ("{", "", "}"))


def test_no_rows_no_columns_and_empty_rows():
    rng = np.random.default_rng(7)
    _join(rng, 0, 3, None, ("[", ",", "]"))
    _join(rng, 0, 2, np.zeros(5, dtype=np.int64), ("[", ",", "]"))  # 4 rows, no items
    _join(rng, 0, 2, np.zeros(5, dtype=np.int64), ("", "", ""))  # 4 empty texts
    got = join_rows(Pieces(), [], None, "[", ",", "]")
    assert len(got) == 0 and got.buffers()[2].to_pybytes() == b""


def test_long_pieces_and_a_missing_column():
    pieces = Pieces()
    long = pieces.add(["x" * 1000 + "é", "€" * 333])
    rows = join_rows(
        pieces,
        [(np.array([0, 1, -1, 1]), long), (np.full(4, -1), long)],
        np.array([0, 2, 2, 4]),
        "<",
        "|",
        ">",
    )
    x, e = "x" * 1000 + "é", "€" * 333
    assert rows.to_pylist() == [f"<{x}|{e}>", "<>", f"<|{e}>"]


@pytest.mark.parametrize("seed", range(8))
def test_by_row_equals_sorting_the_combined_key(seed):
    rng = np.random.default_rng(seed)
    n_rows, width = int(rng.integers(0, 60)), int(rng.integers(1, 40))
    pairs = {(int(r), int(k)) for r, k in rng.integers(0, [max(n_rows, 1), width], size=(200, 2))}
    pairs = sorted(pairs, key=lambda _: rng.random()) if n_rows else []
    rows = np.array([r for r, _ in pairs], dtype=np.int64)
    keys = np.array([k for _, k in pairs], dtype=np.int64)
    groups, ordered = by_row(rows, keys, n_rows)
    key = np.sort(rows * width + keys)  # the sort it replaces
    expected = np.zeros(n_rows + 1, dtype=np.int64)
    np.cumsum(np.bincount(key // width, minlength=n_rows), out=expected[1:])
    assert groups.tolist() == expected.tolist()
    assert ordered.tolist() == (key % width).tolist()
