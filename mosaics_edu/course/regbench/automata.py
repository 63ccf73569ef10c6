"""Random automata, their minimisation and a canonical form.

A RegBench language is given by a deterministic finite automaton (DFA) read as a probabilistic
one: start in state 0, every state accepts, a missing transition means "reject", and a string is
a uniform random walk (each outgoing symbol of the current state equally likely).

The generator follows the benchmark's code exactly (ranges inclusive here):

- number of states uniform on {4, …, 12};
- alphabet: a size uniform on {4, …, 18}, then that many distinct symbols out of the 18;
- each state gets 1, 2 or 3 outgoing edges (uniform), with distinct labels from the alphabet and
  distinct target states, never the state itself (no self-loops *before* minimisation);
- then the automaton is minimised and trimmed.

Minimisation can merge states, so the result may have fewer states (down to 1) and may then have
self-loops; the out-degree of every state stays in {1, 2, 3}, because two equivalent states of an
all-accepting DFA must allow exactly the same next symbols.

The minimal trimmed DFA of a language is unique up to renaming its states. Numbering the states
in breadth-first order from the start (symbols in increasing order) fixes the names, so
:meth:`Automaton.canonical` is the same for any two automata with the same language: comparing
canonical forms is how the test set is kept disjoint from every training set.

The plain functions :func:`reachable_states`, :func:`trim` and :func:`minimise` work on a
*table* (``table[state] = {symbol: next_state}``, start state 0) with any set of accepting
states, so they also serve for DFAs that are not all-accepting.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .vocab import SYMBOL_IDS, SYMBOLS, symbol_id

__all__ = [
    "Automaton",
    "Table",
    "reachable_states",
    "trim",
    "minimise",
    "draw_raw_table",
    "random_automaton",
    "MIN_STATES",
    "MAX_STATES",
    "MIN_ALPHABET",
    "MAX_ALPHABET",
    "MAX_OUT_EDGES",
]

MIN_STATES, MAX_STATES = 4, 12  # states before minimisation
MIN_ALPHABET, MAX_ALPHABET = 4, len(SYMBOLS)  # alphabet size: 4 … 18
MAX_OUT_EDGES = 3  # outgoing edges per state: 1 … 3

Table = list[dict[int, int]]  # table[state] = {symbol: next state}; the start state is 0


# --------------------------------------------------------------------------------------------
# minimisation of a table (any accepting set)
# --------------------------------------------------------------------------------------------


def _check_table(table: Any, accepting: Any) -> frozenset[int]:
    """Validate a table and return the accepting states (all states when ``accepting`` is None)."""
    if not isinstance(table, Sequence) or isinstance(table, str | bytes) or len(table) == 0:
        raise ValueError("table must be a non-empty list of dicts, table[state] = {symbol: next state}")
    n = len(table)
    for s, row in enumerate(table):
        if not isinstance(row, Mapping):
            raise TypeError(f"table[{s}] must be a dict {{symbol: next state}}, got {type(row).__name__}")
        for sym, t in row.items():
            if not isinstance(t, int | np.integer) or isinstance(t, bool) or not 0 <= t < n:
                raise ValueError(f"table[{s}][{sym!r}] = {t!r} is not a state: states are 0..{n - 1}")
    if accepting is None:
        return frozenset(range(n))
    acc = frozenset(int(a) for a in accepting)
    if any(not 0 <= a < n for a in acc):
        raise ValueError(f"accepting states must lie in 0..{n - 1}, got {sorted(acc)}")
    return acc


def reachable_states(table: Table) -> list[int]:
    """States reachable from the start state 0, in breadth-first order (symbols in sorted order)."""
    _check_table(table, None)
    order, seen, queue = [], {0}, deque([0])
    while queue:
        s = queue.popleft()
        order.append(s)
        for sym in sorted(table[s]):
            t = table[s][sym]
            if t not in seen:
                seen.add(t)
                queue.append(t)
    return order


def _renumber(table: Table, accepting: frozenset[int], keep: set[int]) -> tuple[Table, frozenset[int]]:
    """Keep the states in ``keep`` (which holds 0), drop edges into the others, and number the
    kept states in breadth-first order from 0 (symbols sorted): this numbering is canonical."""
    sub = [{a: t for a, t in table[s].items() if t in keep} if s in keep else {} for s in range(len(table))]
    order = reachable_states(sub)  # every kept state is reachable in `sub` when `keep` is trimmed
    new = {old: i for i, old in enumerate(order)}
    out = [{a: new[t] for a, t in sorted(sub[old].items())} for old in order]
    return out, frozenset(new[s] for s in order if s in accepting)


def trim(table: Table, accepting: Iterable[int] | None = None) -> tuple[Table, frozenset[int]]:
    """Remove the states that are unreachable from 0 or that cannot reach an accepting state.

    Returns the trimmed table (states renumbered breadth-first) and its accepting states.
    Raises ``ValueError`` if the language is empty (state 0 itself cannot reach acceptance).
    """
    acc = _check_table(table, accepting)
    reach = set(reachable_states(table))
    back: dict[int, set[int]] = {s: set() for s in range(len(table))}  # reversed edges
    for s, row in enumerate(table):
        for t in row.values():
            back[t].add(s)
    alive, queue = set(acc), deque(acc)  # co-reachable: some accepting state is reachable
    while queue:
        for s in back[queue.popleft()]:
            if s not in alive:
                alive.add(s)
                queue.append(s)
    keep = reach & alive
    if 0 not in keep:
        raise ValueError("the automaton accepts no string (no accepting state is reachable from 0)")
    # states on paths from 0 that stay in `keep` are exactly `keep`, so renumbering finds them all
    return _renumber(table, acc, keep)


def minimise(table: Table, accepting: Iterable[int] | None = None) -> tuple[Table, frozenset[int]]:
    """The minimal DFA of the same language, states numbered breadth-first (a canonical form).

    1. Trim (drop unreachable and dead states); a missing transition now means "reject".
    2. Moore's partition refinement: start from {accepting, non-accepting}; split every block by
       the *signature* of its states, (own block, ((symbol, block of the next state), …)); repeat
       until no block splits. Two states end in one block iff they accept the same suffixes.
    3. One state per block; renumber breadth-first from the block of state 0.

    ``accepting=None`` means every state accepts, as in RegBench.
    """
    table, acc = trim(table, accepting)
    block = [int(s in acc) for s in range(len(table))]  # step 2 starts from acceptance
    n_blocks = len(set(block))
    while True:
        signature = [
            (block[s], tuple((a, block[t]) for a, t in sorted(table[s].items()))) for s in range(len(table))
        ]
        ids: dict[Any, int] = {}
        block = [ids.setdefault(sig, len(ids)) for sig in signature]
        if len(ids) == n_blocks:  # no block split: the partition is stable
            break
        n_blocks = len(ids)
    quotient: Table = [{} for _ in range(n_blocks)]
    for s, row in enumerate(table):
        quotient[block[s]] = {a: block[t] for a, t in row.items()}  # equal for every s of a block
    acc_blocks = frozenset(block[s] for s in acc)
    # blocks are numbered in order of first appearance, so state 0's block is block 0: the start
    return _renumber(quotient, acc_blocks, set(range(n_blocks)))


# --------------------------------------------------------------------------------------------
# the automaton of one RegBench language
# --------------------------------------------------------------------------------------------


def _normalise_state(s: int, row: Any) -> tuple[tuple[int, int], ...]:
    if isinstance(row, Mapping):
        items = list(row.items())
    elif isinstance(row, Iterable) and not isinstance(row, str | bytes):
        items = [tuple(pair) for pair in row]
    else:
        raise TypeError(f"state {s}: transitions must be a dict {{symbol: next state}}, got {row!r}")
    pairs: dict[int, int] = {}
    for item in items:
        if len(item) != 2:
            raise ValueError(f"state {s}: a transition is a (symbol, next state) pair, got {item!r}")
        sym, t = item
        a = symbol_id(sym)
        if a in pairs:
            raise ValueError(f"state {s}: symbol {SYMBOLS[a - 1]!r} appears twice (a DFA is deterministic)")
        if not isinstance(t, int | np.integer) or isinstance(t, bool):
            raise TypeError(f"state {s}: next state of {SYMBOLS[a - 1]!r} must be an int, got {t!r}")
        pairs[a] = int(t)
    return tuple(sorted(pairs.items()))


@dataclass(frozen=True)
class Automaton:
    """An all-accepting DFA over the symbols ``a`` … ``r``, start state 0, read as a PFA.

    ``transitions[state]`` lists the ``(symbol id, next state)`` pairs of that state, sorted by
    symbol. The constructor also takes friendlier input and normalises it, e.g.
    ``Automaton([{"a": 1, "b": 2}, {"c": 0}, {"a": 0}])``. Every state needs at least one
    outgoing transition, so a random walk of any length never gets stuck.
    Equality and hashing compare the transitions as given; compare :meth:`canonical` forms to
    ask whether two automata define the same language.
    """

    transitions: tuple[tuple[tuple[int, int], ...], ...]
    _symbols: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False)
    _targets: tuple[tuple[int, ...], ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        rows = self.transitions
        if not isinstance(rows, Sequence) or isinstance(rows, str | bytes) or len(rows) == 0:
            raise ValueError("transitions must be a non-empty list with one entry per state")
        norm = tuple(_normalise_state(s, row) for s, row in enumerate(rows))
        n = len(norm)
        for s, pairs in enumerate(norm):
            if not pairs:
                raise ValueError(
                    f"state {s} has no outgoing transition: every state of a RegBench automaton needs at "
                    "least one, so that strings of any length can be sampled (drop the state or add an edge)"
                )
            for a, t in pairs:
                if not 0 <= t < n:
                    raise ValueError(
                        f"state {s}: {SYMBOLS[a - 1]!r} goes to state {t}, but states are 0..{n - 1}"
                    )
        object.__setattr__(self, "transitions", norm)
        object.__setattr__(self, "_symbols", tuple(tuple(a for a, _ in p) for p in norm))
        object.__setattr__(self, "_targets", tuple(tuple(t for _, t in p) for p in norm))

    @property
    def n_states(self) -> int:
        return len(self.transitions)

    @property
    def alphabet(self) -> tuple[int, ...]:
        """The symbol ids that label at least one edge, sorted."""
        return tuple(sorted({a for p in self.transitions for a, _ in p}))

    def _check_state(self, state: Any) -> None:
        if not isinstance(state, int | np.integer) or not 0 <= state < self.n_states:
            raise ValueError(f"state must be an integer in 0..{self.n_states - 1}, got {state!r}")

    def out_symbols(self, state: int) -> tuple[int, ...]:
        """The valid next symbols in ``state`` (sorted ids)."""
        self._check_state(state)
        return self._symbols[state]

    def step(self, state: int, symbol: int) -> int | None:
        """The state after reading ``symbol`` in ``state``; ``None`` if there is no such edge."""
        self._check_state(state)
        for a, t in self.transitions[state]:
            if a == symbol:
                return t
        return None

    def accepts(self, string: Iterable[int]) -> bool:
        """Whether the automaton can read ``string`` (symbol ids) from state 0 (all states accept)."""
        state: int | None = 0
        for a in string:
            state = self.step(state, int(a))
            if state is None:
                return False
        return True

    def sample_string(self, length: int, rng: np.random.Generator) -> list[int]:
        """A uniform random walk of ``length`` symbols from state 0 (each out-edge equally likely)."""
        if not isinstance(length, int | np.integer) or length < 1:
            raise ValueError(f"length must be a positive integer, got {length!r}")
        _check_rng(rng)
        out, state = [], 0
        for u in rng.random(int(length)):  # one uniform per symbol, drawn at once
            syms = self._symbols[state]
            k = int(u * len(syms))
            out.append(syms[k])
            state = self._targets[state][k]
        return out

    def table(self) -> Table:
        """``table[state] = {symbol id: next state}``, the input of :func:`minimise`."""
        return [dict(p) for p in self.transitions]

    def canonical(self) -> Automaton:
        """The minimal automaton of the same language, states numbered breadth-first from 0.

        Two automata define the same language iff their canonical forms are equal.
        """
        table, _ = minimise(self.table())
        return Automaton(table)

    def to_json(self) -> dict[str, Any]:
        """``{"transitions": [{"a": 1, ...}, ...]}``, letters as keys (see :mod:`.jsonio`)."""
        return {"transitions": [{SYMBOLS[a - 1]: t for a, t in p} for p in self.transitions]}

    def __str__(self) -> str:
        rows = ", ".join(
            f"{s}: " + " ".join(f"{SYMBOLS[a - 1]}->{t}" for a, t in p)
            for s, p in enumerate(self.transitions)
        )
        return f"Automaton({self.n_states} states; {rows})"


# --------------------------------------------------------------------------------------------
# the random generator
# --------------------------------------------------------------------------------------------


def _check_rng(rng: Any) -> None:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"rng must be a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}"
        )


def draw_raw_table(rng: np.random.Generator) -> tuple[Table, tuple[int, ...]]:
    """One random DFA *before* minimisation, as the benchmark draws it.

    Returns the table and the alphabet drawn for it (sorted symbol ids; the edges use a subset).
    """
    _check_rng(rng)
    n = int(rng.integers(MIN_STATES, MAX_STATES + 1))  # 4 … 12 states
    size = int(rng.integers(MIN_ALPHABET, MAX_ALPHABET + 1))  # 4 … 18 symbols
    alphabet = rng.choice(np.array(SYMBOL_IDS), size=size, replace=False)
    table: Table = []
    for s in range(n):
        k = int(rng.integers(1, MAX_OUT_EDGES + 1))  # 1 … 3 out-edges
        labels = rng.choice(alphabet, size=k, replace=False)  # distinct symbols
        others = np.array([t for t in range(n) if t != s])  # no self-loop
        targets = rng.choice(others, size=k, replace=False)  # distinct states
        table.append({int(a): int(t) for a, t in zip(labels, targets, strict=True)})
    return table, tuple(sorted(int(a) for a in alphabet))


def random_automaton(rng: np.random.Generator) -> Automaton:
    """One RegBench automaton: :func:`draw_raw_table`, then minimised and trimmed (canonical form)."""
    table, _ = draw_raw_table(rng)
    minimal, _ = minimise(table)
    return Automaton(minimal)
