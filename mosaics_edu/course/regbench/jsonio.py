"""A JSON file format for automata, so that anyone can score a model on their own languages.

The format (UTF-8 JSON)::

    {
      "format": "regbench-automata",
      "version": 1,
      "description": "optional free text: where these automata come from",
      "automata": [
        {"transitions": [{"a": 1, "b": 2}, {"c": 0}, {"a": 0}]},
        ...
      ]
    }

- ``transitions[state]`` maps each outgoing symbol of that state to the next state;
- states are the list positions 0, 1, …; the start state is 0; **every state accepts** (a string
  is in the language iff the automaton can read it);
- symbols are the single letters ``"a"`` … ``"r"`` (token ids 1 … 18 of the model's vocabulary);
- every state needs at least one outgoing symbol (strings of any length can then be sampled);
- each state's next symbol is drawn uniformly among its outgoing symbols when sampling.

The automata are loaded as written; call :meth:`Automaton.canonical` to compare languages.
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from ...core.atomic import atomic_write_bytes
from .automata import Automaton
from .vocab import SYMBOLS

__all__ = ["FORMAT", "VERSION", "automata_to_json", "automata_from_json", "save_automata", "load_automata"]

FORMAT, VERSION = "regbench-automata", 1
_TOP_KEYS = {"format", "version", "description", "automata"}


def automata_to_json(automata: Sequence[Automaton], description: str = "") -> dict[str, Any]:
    """The JSON document (a dict) of ``automata``; see the module docstring for the format."""
    if not isinstance(automata, Sequence) or isinstance(automata, str | bytes):
        raise TypeError("automata must be a list of Automaton")
    for i, a in enumerate(automata):
        if not isinstance(a, Automaton):
            raise TypeError(f"automata[{i}] must be an Automaton, got {type(a).__name__}")
    if not isinstance(description, str):
        raise TypeError(f"description must be a str, got {type(description).__name__}")
    doc: dict[str, Any] = {"format": FORMAT, "version": VERSION}
    if description:
        doc["description"] = description
    doc["automata"] = [a.to_json() for a in automata]
    return doc


def _fail(where: str, problem: str, fix: str) -> ValueError:
    return ValueError(f"{where}: {problem}; {fix}")


def automata_from_json(doc: Any) -> list[Automaton]:
    """Validate a JSON document (already parsed) and return its automata.

    Each error names the offending field (e.g. ``automata[3].transitions[1]["z"]``) and the fix.
    """
    if not isinstance(doc, dict):
        raise _fail(
            "document",
            f"is a {type(doc).__name__}",
            'it must be a JSON object {"format": ..., "automata": [...]}',
        )
    unknown = set(doc) - _TOP_KEYS
    if unknown:
        raise _fail("document", f"unknown field(s) {sorted(unknown)}", f"use only {sorted(_TOP_KEYS)}")
    if doc.get("format") != FORMAT:
        raise _fail('"format"', f"is {doc.get('format')!r}", f'set it to "{FORMAT}"')
    if doc.get("version") != VERSION:
        raise _fail('"version"', f"is {doc.get('version')!r}", f"this code reads version {VERSION}")
    if "description" in doc and not isinstance(doc["description"], str):
        raise _fail('"description"', "is not a string", "write free text or drop the field")
    automata = doc.get("automata")
    if not isinstance(automata, list) or not automata:
        raise _fail(
            '"automata"', "is missing or not a non-empty list", 'give a list of {"transitions": [...]}'
        )
    out = []
    for i, item in enumerate(automata):
        where = f"automata[{i}]"
        if not isinstance(item, dict) or set(item) != {"transitions"}:
            raise _fail(
                where, f"is {item!r:.60}", 'each automaton is an object with exactly one field, "transitions"'
            )
        rows = item["transitions"]
        if not isinstance(rows, list) or not rows:
            raise _fail(
                f"{where}.transitions",
                "is not a non-empty list",
                "give one {symbol: next state} object per state",
            )
        n = len(rows)
        for s, row in enumerate(rows):
            w = f"{where}.transitions[{s}]"
            if not isinstance(row, dict):
                raise _fail(w, f"is a {type(row).__name__}", 'each state is an object like {"a": 1, "b": 0}')
            if not row:
                raise _fail(
                    w, "has no outgoing symbol", "give every state at least one (strings must be extendable)"
                )
            for sym, t in row.items():
                if sym not in SYMBOLS or len(sym) != 1:
                    raise _fail(
                        f'{w}["{sym}"]', "is not a symbol", f"symbols are single letters in {SYMBOLS!r}"
                    )
                if not isinstance(t, int) or isinstance(t, bool) or not 0 <= t < n:
                    raise _fail(
                        f'{w}["{sym}"]', f"= {t!r} is not a state", f"states are the integers 0..{n - 1}"
                    )
        out.append(Automaton(rows))
    return out


def save_automata(path: str | os.PathLike[str], automata: Sequence[Automaton], description: str = "") -> Path:
    """Write ``automata`` to ``path`` in the JSON format above; returns the path."""
    path = Path(path)
    doc = automata_to_json(automata, description)
    atomic_write_bytes(path, (json.dumps(doc, indent=1) + "\n").encode("utf-8"))  # never half-written
    return path


def load_automata(path: str | os.PathLike[str]) -> list[Automaton]:
    """Read and validate a JSON file of automata (see the module docstring for the format)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no automata file at {path}: check the path (save one with save_automata)")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(
            f"{path} is not valid JSON ({err}): fix the file or write it with save_automata"
        ) from err
    try:
        return automata_from_json(doc)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err
