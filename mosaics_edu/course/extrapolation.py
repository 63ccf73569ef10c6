"""Length extrapolation on associative recall: train at one context length, test at 2×, 4×, 8×.

The task (``recall`` streams). Documents of ``key value`` pairs: a key is one of the 26
lower-case letters, a value one of the 10 digits. Each document draws its own binding
key -> digit, then a stream of pairs with uniformly random keys, so a key's digit can be
predicted only by finding the key's previous occurrence in the context and reading the digit
after it: in-context recall at every distance (a key recurs every 52 tokens on average, and
beyond 128 tokens back 8 % of the time). A training window of ``T`` tokens holds recalls at
distances up to ``T``; a test sequence of ``L = 8T`` tokens holds recalls at distances up to
``8T``, and 8 times as many stored pairs that a retrieval must see past.

(A harder variant with two-letter keys was tried first: no model learned it within the
budget of 300 steps, so the single-letter task is the one that separates the models here.)

Scores (:func:`recall_scores`): at every key that occurred earlier in the sequence, is the
argmax of the next-token logits the right digit? Reported over all such positions
(``all``), those whose previous occurrence is at most ``T`` tokens back (``near``) and further
(``far``: only a model that reads beyond its training length can get these). Chance is 1/10.

A fixed-context model (GPT's learned position table ends at ``T``) reads a longer sequence
through sliding windows (:func:`sliding_logits`: every position sees at least T/2 tokens of
context, at most T), the usual way such a model meets long inputs; so its ``far`` score is chance
by construction. The mosaics have no position table: they are rebuilt with a larger
``block_size`` (no parameter depends on it) and read the whole sequence.

The runs (:data:`RUNS`) are trained by the package's own trainer (:func:`mosaics_edu.train.train`)
on the same data with the same schedule; ``python -m mosaics_edu.course.extrapolation --out DIR``
makes the shipped ``mosaics_edu/assets/v2/extrapolation.json``.
"""

from __future__ import annotations

import argparse
import json
import string
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from ..core.validation import check_positive_int
from ..data import CharTokenizer, TokenDataset, save_token_dataset
from ..models.lm import count_parameters
from ..training import trainer as tr

__all__ = [
    "KEYS",
    "VALUES",
    "RUNS",
    "recall_tokenizer",
    "recall_documents",
    "make_recall_dataset",
    "sliding_logits",
    "previous_key_distance",
    "recall_scores",
    "train_run",
    "evaluate_run",
    "run_extrapolation",
]

KEYS = string.ascii_lowercase  # 26 keys
VALUES = string.digits  # 10 values: chance is 1/10
CONTEXT = 128  # the training context T (cpu-tiny's block size)
SCALES = (1, 2, 4, 8)  # test lengths L = scale * T
DOC_PAIRS = 1024  # pairs per document: 2048 tokens, longer than 8T
SHIPPED = Path(__file__).resolve().parents[1] / "assets" / "v2" / "extrapolation.json"

# name -> (model kind, model overrides, training overrides); all at the cpu-tiny preset with
# block_size = CONTEXT and the schedule TRAIN
RUNS: dict[str, tuple[str, dict[str, Any], dict[str, Any]]] = {
    "gpt": ("gpt", {}, {}),
    "gpt lr 1e-3": ("gpt", {}, {"lr": 1e-3}),  # the shared lr 3e-3 did not train GPT here
    "v1": ("mosaic", {}, {}),
    "v2": ("mosaic-v2", {}, {}),
    "v2 fixed delay": ("mosaic-v2", {"delay_min": 8, "delay_max": 8}, {}),  # m = 8 always
    "v2 no long-term": ("mosaic-v2", {"long_term": False}, {}),
}

# the training schedule shared by every run (cpu-tiny's, shorter)
TRAIN: dict[str, Any] = dict(
    batch_size=16, max_steps=800, lr=3e-3, min_lr=1e-4, warmup_steps=30, eval_interval=100,
    eval_batches=4, log_interval=20, seed=0, threads=1, dtype="float32", device="cpu",
)  # fmt: skip


def recall_tokenizer() -> CharTokenizer:
    """Characters: the 10 digits (ids 0-9), then the 26 letters (ids 10-35)."""
    return CharTokenizer(sorted(KEYS + VALUES))


def recall_documents(n_docs: int, n_pairs: int, seed: int) -> np.ndarray:
    """``n_docs`` documents of ``n_pairs`` (letter, digit) pairs, each document with its own
    binding key -> digit.

    -> (n_docs, 2 * n_pairs) int64 token ids (:func:`recall_tokenizer`): even positions keys,
    odd positions the digit bound to the key before it.
    """
    for name, value in (("n_docs", n_docs), ("n_pairs", n_pairs)):
        check_positive_int(name, value)
    tok = recall_tokenizer()
    key_ids = np.array(tok.encode(KEYS))  # (26,)
    value_ids = np.array(tok.encode(VALUES))  # (10,)
    rng = np.random.default_rng(seed)
    binding = rng.integers(0, len(VALUES), size=(n_docs, len(KEYS)))  # (n_docs, 26)
    keys = rng.integers(0, len(KEYS), size=(n_docs, n_pairs))  # (n_docs, n_pairs)
    docs = np.empty((n_docs, 2 * n_pairs), dtype=np.int64)
    docs[:, 0::2] = key_ids[keys]
    docs[:, 1::2] = value_ids[np.take_along_axis(binding, keys, axis=1)]
    return docs


def make_recall_dataset(path: str | Path, n_train_docs: int = 400, n_valid_docs: int = 20) -> TokenDataset:
    """Write the recall streams (train seed 0, validation seed 1) as a token dataset folder
    that ``--data PATH`` reads."""
    train = recall_documents(n_train_docs, DOC_PAIRS, seed=0).reshape(-1)
    valid = recall_documents(n_valid_docs, DOC_PAIRS, seed=1).reshape(-1)
    source = {"task": "recall", "n_train_docs": n_train_docs, "n_valid_docs": n_valid_docs,
              "doc_pairs": DOC_PAIRS}  # fmt: skip
    return save_token_dataset(path, train, valid, recall_tokenizer(), source=source)


@torch.no_grad()
def sliding_logits(model: nn.Module, idx: torch.Tensor, context: int) -> torch.Tensor:
    """Next-token logits of a fixed-context model on sequences longer than ``context``.

    idx: (B, L) -> (B, L, V). Windows of ``context`` tokens start every ``context // 2``
    positions; each position takes its logits from the window where it has the most context
    (at least ``context // 2`` tokens, or all before it near the start).
    """
    B, L = idx.shape
    if L <= context:
        return model(idx)[0]
    stride = context // 2
    out = None
    start = 0
    while True:
        window = idx[:, start : start + context]
        logits = model(window)[0]  # (B, w, V)
        if out is None:
            out = logits.new_zeros(B, L, logits.shape[-1])
        keep = 0 if start == 0 else context - stride  # positions with >= stride context
        out[:, start + keep : start + window.shape[1]] = logits[:, keep:]
        if start + context >= L:
            return out
        start += stride


def previous_key_distance(idx: np.ndarray) -> np.ndarray:
    """At each key (a letter), the distance to the previous occurrence of the same letter; 0 at
    a key's first occurrence and at digits. idx: (B, L) -> (B, L)."""
    B, L = idx.shape
    letters = set(recall_tokenizer().encode(KEYS))
    dist = np.zeros((B, L), dtype=np.int64)
    for b in range(B):
        last: dict[int, int] = {}
        for t, token in enumerate(idx[b].tolist()):
            if token in letters:
                if token in last:
                    dist[b, t] = t - last[token]
                last[token] = t
    return dist


def recall_scores(logits: torch.Tensor, idx: torch.Tensor, context: int) -> dict[str, float | int]:
    """Recall accuracy of next-token ``logits`` (B, L, V) on the recall sequences ``idx`` (B, L).

    Scores every key position t < L-1 whose key occurred earlier in its sequence: correct
    if the argmax of logits[t] is idx[t+1], the digit. Returns accuracies ``all``, ``near``
    (previous occurrence ≤ context tokens back), ``far`` (further; NaN if none) and the counts
    ``n_near``, ``n_far``. Chance is 1/10.
    """
    if logits.shape[:2] != idx.shape:
        raise ValueError(
            f"logits (B, L, V) must match idx (B, L): {tuple(logits.shape)} vs {tuple(idx.shape)}"
        )
    ids = idx.cpu().numpy()
    dist = previous_key_distance(ids)
    scored = dist > 0
    scored[:, -1] = False  # no next token to predict
    pred = logits[:, :-1].argmax(dim=-1).cpu().numpy()  # (B, L-1)
    right = np.zeros_like(scored)
    right[:, :-1] = pred == ids[:, 1:]
    near, far = scored & (dist <= context), scored & (dist > context)

    def acc(mask: np.ndarray) -> float:
        return float(right[mask].mean()) if mask.any() else float("nan")

    return {"all": acc(scored), "near": acc(near), "far": acc(far), "n_near": int(near.sum()),
            "n_far": int(far.sum())}  # fmt: skip


def train_run(name: str, data: TokenDataset, out_dir: str | Path | None = None, max_steps: int | None = None,
              until: int | None = None) -> tr.TrainResult:  # fmt: skip
    """Train run ``name`` of :data:`RUNS` with the package's trainer (one thread, CPU).
    ``max_steps`` replaces the schedule's length; ``until`` stops early on the same schedule."""
    if name not in RUNS:
        raise ValueError(f"unknown run {name!r}: choose one of {list(RUNS)}")
    kind, overrides, train_overrides = RUNS[name]
    settings = {**TRAIN, **train_overrides}
    if max_steps is not None:
        settings["max_steps"] = max_steps
    config = tr.TrainConfig.from_preset(
        "cpu-tiny", model=kind, model_overrides={"block_size": CONTEXT, **overrides},
        out_dir=None if out_dir is None else str(out_dir), **settings,
    )  # fmt: skip
    return tr.train(config, data=data, progress=False, until=until)


@torch.no_grad()
def evaluate_run(model: nn.Module, kind: str, n_seq: int = 16, seed: int = 2, batch: int = 8
                 ) -> dict[str, dict[str, float | int]]:  # fmt: skip
    """Recall scores at every test length ``L = scale * CONTEXT`` (:data:`SCALES`) on ``n_seq``
    fresh documents (seed ``seed``) cut to L tokens. A mosaic is rebuilt with ``block_size = L``
    (same weights); a GPT reads through :func:`sliding_logits`."""
    model.eval()
    docs = torch.from_numpy(recall_documents(n_seq, DOC_PAIRS, seed=seed))
    results = {}
    for scale in SCALES:
        L = scale * CONTEXT
        idx = docs[:, :L]
        if kind == "gpt":
            runner = lambda x: sliding_logits(model, x, CONTEXT)  # noqa: E731
        else:
            long = type(model)(type(model.config)(**{**vars(model.config), "block_size": L}))
            long.load_state_dict(model.state_dict())
            long.eval()
            runner = lambda x, m=long: m(x)[0]  # noqa: E731
        logits = torch.cat([runner(idx[i : i + batch]) for i in range(0, n_seq, batch)])
        results[f"{scale}x"] = recall_scores(logits, idx, CONTEXT)
    return results


def run_extrapolation(out: str | Path, names: list[str] | None = None) -> dict[str, Any]:
    """Make the dataset under ``out``, train and evaluate every run, write ``out/extrapolation.json``."""
    out = Path(out)
    data = make_recall_dataset(out / "data")
    results: dict[str, Any] = {
        "command": "python -m mosaics_edu.course.extrapolation --out DIR",
        "context": CONTEXT, "scales": list(SCALES), "train": TRAIN, "runs": {},
    }  # fmt: skip
    path = out / "extrapolation.json"
    if path.is_file():  # add to (or redo some of) the runs already there
        results["runs"] = json.loads(path.read_text())["runs"]
    for name in names or list(RUNS):
        kind, overrides, train_overrides = RUNS[name]
        cpu = time.process_time()
        result = train_run(name, data, out / name.replace(" ", "_"))
        train_cpu = time.process_time() - cpu
        scores = evaluate_run(result.model, kind)
        results["runs"][name] = {
            "kind": kind, "overrides": overrides, "train_overrides": train_overrides,
            "params": count_parameters(result.model),
            "train_cpu_s": round(train_cpu, 1), "history": result.history, "scores": scores,
        }  # fmt: skip
        results["runs"] = {k: results["runs"][k] for k in RUNS if k in results["runs"]}  # RUNS order
        path.write_text(json.dumps(results, indent=1))
        print(name, {k: round(v["all"], 3) for k, v in scores.items()}, f"cpu {train_cpu:.0f}s", flush=True)
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="folder for the data, the runs and extrapolation.json")
    parser.add_argument("--runs", nargs="*", default=None, help=f"a subset of {list(RUNS)}")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    run_extrapolation(args.out, args.runs)


if __name__ == "__main__":
    main()
