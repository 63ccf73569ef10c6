"""Two cheap experiments of chapter 09 (a few seconds each on a CPU), each a pure function.

- :func:`bandwidth_toy` — **β(n) learns to grow with n.** Kernel regression on the unit circle
  (the retrieval of a memory: ``ŷ = Σ_s softmax_s(β k_q·k_s) v_s`` with unit keys k) where the
  best β depends on the number n of stored pairs. It measures the best β for each n on a grid,
  fits its growth exponent, trains an :class:`~mosaics_edu.core.v2.bandwidth.AdaptiveBandwidth` on
  memories of every size and compares its learned α with the measured exponent and the
  asymptotic MISE-optimal one, 2/(p+4) for keys on a p-dimensional manifold (p = 1 here: 0.4).
  It also gives the error curves of the best single β and of the learned β(n).
- :func:`filler_key_similarity` — **gated keys ignore fillers.** "tom-and-jerry" against
  "tom---and---jerry": three random words with 0 to 3 filler tokens between them. A v1 key
  extractor (:class:`~mosaics_edu.core.features.KeyExtractor`, one fixed decay per head) and a v2 one
  (:class:`~mosaics_edu.core.v2.gated_keys.GatedKeyExtractor`, input-dependent gate and decay) are
  trained for the same number of steps to give the same key to the same three words whatever the
  fillers, and different keys to different words (a contrastive loss). Reported: the cosine
  similarity of the keys of "w1 w2 w3" and "w1---w2---w3", of two different word triples, and
  how often a key finds its own triple among the batch.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from ..core.features import KeyExtractor
from ..core.memory import softmax_attention
from ..core.v2.bandwidth import AdaptiveBandwidth
from ..core.v2.gated_keys import GatedKeyExtractor
from ..training.step import optimizer_step

__all__ = ["circle_memories", "retrieval_mse", "beta_growth_exponent", "bandwidth_toy", "filler_sequences",
           "filler_key_similarity"]


# --------------------------------------------------------------------------------------------
# β(n) on a kernel-regression toy
# --------------------------------------------------------------------------------------------


def circle_memories(
    n_memories: int, n_pairs: int, n_queries: int, noise: float, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Random memories on the unit circle: angle θ ~ U[0, 2π), key (cos θ, sin θ), value
    ``sin(3θ) + noise·ε``. Returns keys (M, n, 2), values (M, n), query keys (M, Q, 2) and their
    noiseless targets (M, Q)."""
    theta = torch.rand(n_memories, n_pairs, generator=generator) * 2 * math.pi
    phi = torch.rand(n_memories, n_queries, generator=generator) * 2 * math.pi
    keys = torch.stack([theta.cos(), theta.sin()], dim=-1)
    values = torch.sin(3 * theta) + noise * torch.randn(n_memories, n_pairs, generator=generator)
    queries = torch.stack([phi.cos(), phi.sin()], dim=-1)
    return keys, values, queries, torch.sin(3 * phi)


def retrieval_mse(keys: torch.Tensor, values: torch.Tensor, queries: torch.Tensor, targets: torch.Tensor,
                  beta: torch.Tensor | float) -> torch.Tensor:  # fmt: skip
    """Mean squared error of the retrieval ``Σ_s softmax_s(β q·k_s) v_s`` against ``targets``.
    keys (M, n, p), values (M, n), queries (M, Q, p), targets (M, Q), beta a number or 0-d."""
    pred = softmax_attention(keys, values[..., None], queries, beta)[..., 0]  # (M, Q)
    return ((pred - targets) ** 2).mean()


def beta_growth_exponent(sizes: np.ndarray, betas: np.ndarray, mse_grid: np.ndarray,
                         n_min: int) -> tuple[np.ndarray, float]:
    """The best β of each memory size on a grid, and how fast it grows: the least-squares slope of
    log(best β) against log n over the sizes n ≥ ``n_min`` (the exponent e of best β ∝ n^e).

    sizes (S,) positive pair counts, betas (G,) positive grid values, mse_grid (S, G) the test
    error of β_j at size n_i -> best_beta (S,) (the first grid β of lowest error, so a tie goes
    to the smaller β when the grid increases) and the slope, a float. The slope does not depend
    on the base of the logarithm, as long as both axes use the same one.
    """
    sizes, betas, grid = (np.asarray(x, dtype=np.float64) for x in (sizes, betas, mse_grid))
    if sizes.ndim != 1 or betas.ndim != 1 or grid.shape != (len(sizes), len(betas)):
        raise ValueError(f"mse_grid must have shape (len(sizes), len(betas)) = ({sizes.size}, {betas.size}); "
                         f"got sizes {sizes.shape}, betas {betas.shape}, mse_grid {grid.shape}")
    if np.any(sizes <= 0) or np.any(betas <= 0):
        raise ValueError("sizes and betas must be positive (their logarithms are fitted)")
    keep = sizes >= n_min
    if keep.sum() < 2:
        raise ValueError(f"n_min = {n_min} leaves {int(keep.sum())} size(s) to fit; a slope needs at "
                         "least two: lower n_min")
    best = betas[grid.argmin(axis=1)]  # (S,)
    x, y = np.log(sizes[keep]), np.log(best[keep])
    slope = float(((x - x.mean()) * (y - y.mean())).sum() / ((x - x.mean()) ** 2).sum())
    return best, slope


def bandwidth_toy(
    sizes: tuple[int, ...] = (4, 8, 16, 32, 64, 128, 256, 512, 1024),
    noise: float = 0.5,
    n_memories: int = 24,
    n_queries: int = 64,
    steps: int = 150,
    seed: int = 0,
) -> dict:
    """β(n) on kernel regression over the unit circle (p = 1).

    Returns a dict of numpy arrays / floats:
      ``sizes`` (S,), ``betas`` (G,) the β grid, ``mse_grid`` (S, G) test MSE of every β at every
      n, ``best_beta`` (S,) the grid β with the lowest MSE, ``fitted_exponent`` the slope of
      log best_beta against log n (least squares over n ≥ 16), ``optimal_exponent`` 2/(p+4) = 0.4,
      ``learned`` {beta0, beta1, alpha} of an AdaptiveBandwidth trained on log-MSE averaged over
      the sizes, ``learned_beta`` (S,) its β(n), ``fixed_beta`` the one β best over all sizes
      (lowest mean log-MSE on the grid), and test MSE curves ``mse_fixed``, ``mse_learned``,
      ``mse_best`` (S,) on fresh memories.
    """
    gen = torch.Generator().manual_seed(seed)
    betas = torch.logspace(0, 4, 33)  # 1 … 10,000
    sizes_t = torch.tensor(sizes, dtype=torch.float32)

    def test_mse(beta_of_size) -> np.ndarray:
        test_gen = torch.Generator().manual_seed(seed + 1)
        out = []
        for n in sizes:
            mem = circle_memories(n_memories, n, n_queries, noise, test_gen)
            out.append(float(retrieval_mse(*mem, beta_of_size(n))))
        return np.array(out)

    grid = np.zeros((len(sizes), len(betas)))
    for i, n in enumerate(sizes):  # one set of memories per size, every β on it
        mem = circle_memories(n_memories, n, n_queries, noise, gen)
        grid[i] = [float(retrieval_mse(*mem, b)) for b in betas]
    best, slope = beta_growth_exponent(np.array(sizes), betas.numpy(), grid, n_min=16)
    fixed = float(betas[np.log(grid).mean(axis=0).argmin()])

    bandwidth = AdaptiveBandwidth(1)
    opt = torch.optim.Adam(bandwidth.parameters(), lr=0.05)
    for _ in range(steps):
        losses = []
        for n in sizes:
            mem = circle_memories(4, n, n_queries, noise, gen)
            beta = bandwidth(torch.tensor(float(n)))[0]
            losses.append(retrieval_mse(*mem, beta).log())
        optimizer_step(bandwidth, opt, torch.stack(losses).mean())
    with torch.no_grad():
        learned_beta = bandwidth(sizes_t)[0].numpy()
    by_size = dict(zip(sizes, learned_beta.tolist(), strict=True))
    best_by_size = dict(zip(sizes, best.tolist(), strict=True))
    return {
        "sizes": np.array(sizes), "betas": betas.numpy(), "mse_grid": grid, "best_beta": best,
        "fitted_exponent": slope, "optimal_exponent": 2 / (1 + 4),
        "learned": {"beta0": float(bandwidth.beta0[0].detach()), "beta1": float(bandwidth.beta1[0].detach()),
                    "alpha": float(bandwidth.alpha[0].detach())},
        "learned_beta": learned_beta, "fixed_beta": fixed,
        "mse_fixed": test_mse(lambda n: fixed), "mse_learned": test_mse(lambda n: by_size[n]),
        "mse_best": test_mse(lambda n: best_by_size[n]),
    }  # fmt: skip


# --------------------------------------------------------------------------------------------
# Gated keys and filler tokens
# --------------------------------------------------------------------------------------------

FILLER = 0  # token id of the filler "-"; words are 1 … n_words


def filler_sequences(triples: torch.Tensor, fillers: int, prefix: torch.Tensor | None = None) -> torch.Tensor:
    """Word triples (B, 3) of ids ≥ 1 -> (B, P + 3 + 2·fillers) sequences
    ``prefix w1 -…- w2 -…- w3`` with ``fillers`` filler tokens (id 0) between consecutive words,
    after the words ``prefix`` (B, P) (the context before the pattern; none if None)."""
    if triples.dim() != 2 or triples.shape[1] != 3:
        raise ValueError(f"triples must have shape (B, 3), got {tuple(triples.shape)}")
    if not isinstance(fillers, int) or fillers < 0:
        raise ValueError(f"fillers must be an integer >= 0, got {fillers!r}")
    B = triples.shape[0]
    gap = torch.full((B, fillers), FILLER, dtype=triples.dtype)
    parts = [triples[:, :1], gap, triples[:, 1:2], gap, triples[:, 2:]]
    return torch.cat(parts if prefix is None else [prefix, *parts], dim=1)


def _last_key(extractor: torch.nn.Module, embed: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
    """Unit key (B, H·hs) at the last position of ``seq`` (B, T), heads concatenated, normalised."""
    x = embed[seq]  # (B, T, d)
    u = extractor.leaky_keys(x)  # v1: k̄ (B, H, T, hs); v2: (u, M) with k̄ = e^M u
    k_bar = u[0] if isinstance(extractor, GatedKeyExtractor) else u
    k = F.normalize(k_bar[:, :, -1], dim=-1)  # (B, H, hs): each head's unit key
    return F.normalize(k.reshape(seq.shape[0], -1), dim=-1)


def filler_key_similarity(
    n_words: int = 12, n_embd: int = 16, n_head: int = 2, steps: int = 200, batch: int = 64,
    prefix: int = 4, seed: int = 0,
) -> dict:
    """Train a v1 and a v2 key extractor (same embeddings, steps, seed) to give "w1 w2 w3" the same
    key with any number (0-3) of fillers between the words and different keys to different
    triples (InfoNCE over the batch, temperature 0.1). Each sequence starts with ``prefix`` random
    words, different in the two views: the key must describe the pattern, not what came before.
    Then measure, on fresh triples and prefixes:

    ``same`` cosine of the keys of "w1 w2 w3" and "w1---w2---w3" (3 fillers), ``other`` cosine
    of two different triples (both without fillers), ``found`` the fraction of "w1---w2---w3"
    whose most similar key among the batch's "w1 w2 w3" keys is its own. For ``"v1"`` and
    ``"v2"``; also ``decays``: v1's fixed λ per head and v2's mean λ_t on words and on fillers.
    """
    gen = torch.Generator().manual_seed(seed)
    embed = torch.randn(n_words + 1, n_embd, generator=gen)  # fixed random token embeddings
    torch.manual_seed(seed)
    extractors = {"v1": KeyExtractor(n_embd, n_head), "v2": GatedKeyExtractor(n_embd, n_head)}
    for extractor in extractors.values():
        opt = torch.optim.Adam(extractor.parameters(), lr=0.02)
        train_gen = torch.Generator().manual_seed(seed + 1)  # the same batches for both
        for _ in range(steps):
            triples = torch.randint(1, n_words + 1, (batch, 3), generator=train_gen)
            f1, f2 = torch.randint(0, 4, (2,), generator=train_gen).tolist()
            p1, p2 = torch.randint(1, n_words + 1, (2, batch, prefix), generator=train_gen)
            a = _last_key(extractor, embed, filler_sequences(triples, f1, p1))
            b = _last_key(extractor, embed, filler_sequences(triples, f2, p2))
            same = (triples[:, None, :] == triples[None, :, :]).all(-1)  # duplicates in the batch
            logits = (a @ b.T / 0.1).masked_fill(same & ~torch.eye(batch, dtype=torch.bool), -1e4)
            optimizer_step(extractor, opt, F.cross_entropy(logits, torch.arange(batch)))
    test_gen = torch.Generator().manual_seed(seed + 2)
    triples = torch.randint(1, n_words + 1, (256, 3), generator=test_gen)
    others = torch.randint(1, n_words + 1, (256, 3), generator=test_gen)
    p1, p2, p3 = torch.randint(1, n_words + 1, (3, 256, prefix), generator=test_gen)
    distinct = (triples != others).any(-1)
    out: dict = {}
    with torch.no_grad():
        for name, extractor in extractors.items():
            clean = _last_key(extractor, embed, filler_sequences(triples, 0, p1))
            padded = _last_key(extractor, embed, filler_sequences(triples, 3, p2))
            other = _last_key(extractor, embed, filler_sequences(others, 0, p3))
            sims = padded[:64] @ clean[:64].T  # (64, 64)
            own = (triples[:64, None, :] == triples[None, :64, :]).all(-1)  # a duplicate counts
            found = own[torch.arange(64), sims.argmax(dim=1)].float().mean()
            out[name] = {
                "same": float((clean * padded).sum(-1).mean()),
                "other": float((clean * other).sum(-1)[distinct].mean()),
                "found": float(found),
            }
        words = embed[1:][None]  # (1, n_words, d)
        v2 = extractors["v2"]
        out["decays"] = {
            "v1": extractors["v1"].decay.tolist(),
            "v2_words": v2.decay(words).mean(dim=(0, 2)).tolist(),
            "v2_filler": v2.decay(embed[:1][None]).mean(dim=(0, 2)).tolist(),
            "v2_gate_words": v2.log_gates(words)[0].exp().mean(dim=(0, 2)).tolist(),
            "v2_gate_filler": v2.log_gates(embed[:1][None])[0].exp().mean(dim=(0, 2)).tolist(),
        }
    return out
