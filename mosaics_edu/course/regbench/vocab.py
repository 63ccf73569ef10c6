"""The RegBench vocabulary: 18 content symbols, a separator and a pad token, 20 ids in all.

As in the benchmark's code, the vocabulary is sorted in ASCII order, so ``.`` (pad) = 0,
``a`` … ``r`` = 1 … 18 and ``|`` (the separator between strings) = 19. There is no BOS or EOS
token: a sample is ``string | string | … | string``.
"""

from __future__ import annotations

from collections.abc import Iterable

__all__ = ["PAD", "SEP", "SYMBOLS", "VOCAB_SIZE", "SYMBOL_IDS", "symbol_id", "encode", "decode"]

SYMBOLS = "abcdefghijklmnopqr"  # the 18 content symbols an automaton may use
PAD = 0  # "." : right-padding of a batch; never a target, never a valid next symbol
SEP = 19  # "|" : ends a string; seen as input, masked as a target
VOCAB_SIZE = 20
SYMBOL_IDS = tuple(range(1, len(SYMBOLS) + 1))  # (1, ..., 18)
_CHARS = "." + SYMBOLS + "|"  # id -> character


def symbol_id(symbol: str | int) -> int:
    """The id (1 … 18) of a content symbol given as a letter ``"a"`` … ``"r"`` or as an id."""
    if isinstance(symbol, str):
        if len(symbol) != 1 or symbol not in SYMBOLS:
            raise ValueError(f"symbol {symbol!r} is not one of the letters {SYMBOLS!r}")
        return SYMBOLS.index(symbol) + 1
    if isinstance(symbol, int) and not isinstance(symbol, bool) and 1 <= symbol <= len(SYMBOLS):
        return symbol
    raise ValueError(
        f"symbol {symbol!r} must be a letter in {SYMBOLS!r} or an id in 1..{len(SYMBOLS)} "
        f"(0 is the pad '.', {SEP} the separator '|')"
    )


def encode(text: str) -> list[int]:
    """``"ab|c"`` -> ``[1, 2, 19, 3]``. Spaces are ignored, so ``"a b | c"`` works too."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    ids = []
    for ch in text.replace(" ", ""):
        if ch not in _CHARS:
            raise ValueError(f"character {ch!r} is not in the vocabulary {_CHARS!r}")
        ids.append(_CHARS.index(ch))
    return ids


def decode(ids: Iterable[int]) -> str:
    """``[1, 2, 19, 3]`` -> ``"ab|c"``."""
    out = []
    for i in ids:
        i = int(i)
        if not 0 <= i < VOCAB_SIZE:
            raise ValueError(f"token id {i} is outside the vocabulary [0, {VOCAB_SIZE})")
        out.append(_CHARS[i])
    return "".join(out)
