"""Kernel regression (Nadaraya–Watson) and its softmax-attention form."""

import numpy as np
import pytest
import torch

from mosaics_edu.core.memory import (
    attention_weights,
    causal_retrieval,
    kernel_regression,
    kernel_weights,
    retrieve,
    softmax_attention,
)


def _unit(x):
    return x / np.linalg.norm(x, axis=-1, keepdims=True)


def test_equal_norm_keys_give_softmax_attention():
    rng = np.random.default_rng(0)
    keys = 2.0 * _unit(rng.normal(size=(3, 20, 5)))  # every key has norm 2
    values = rng.normal(size=(3, 20, 4))
    queries = rng.normal(size=(3, 7, 5))  # queries may have any norm
    for beta in (0.1, 1.0, 7.39):
        kr = kernel_regression(keys, values, queries, beta)
        sa = softmax_attention(keys, values, queries, 2 * beta)  # the explicit 2 of the expansion
        assert isinstance(kr, np.ndarray) and kr.shape == (3, 7, 4)
        np.testing.assert_allclose(kr, sa, rtol=1e-10, atol=1e-12)


def test_unequal_norms_differ_from_softmax_attention():
    rng = np.random.default_rng(1)
    keys = rng.normal(size=(20, 5)) * rng.uniform(0.2, 3.0, size=(20, 1))
    values = rng.normal(size=(20, 4))
    queries = rng.normal(size=(7, 5))
    kr = kernel_regression(keys, values, queries, 1.0)
    sa = softmax_attention(keys, values, queries, 2.0)
    assert np.abs(kr - sa).max() > 1e-2


def test_matches_direct_definition_and_weights_sum_to_one():
    rng = np.random.default_rng(2)
    keys, values, queries = rng.normal(size=(9, 3)), rng.normal(size=(9, 2)), rng.normal(size=(4, 3))
    beta = 0.7
    sq = ((queries[:, None, :] - keys[None, :, :]) ** 2).sum(-1)
    w = np.exp(-beta * sq)
    w /= w.sum(1, keepdims=True)
    np.testing.assert_allclose(kernel_weights(keys, queries, beta), w, rtol=1e-10)
    np.testing.assert_allclose(kernel_regression(keys, values, queries, beta), w @ values, rtol=1e-10)


def test_permuting_the_stored_pairs_changes_nothing():
    rng = np.random.default_rng(3)
    keys, values, queries = rng.normal(size=(30, 4)), rng.normal(size=(30, 2)), rng.normal(size=(5, 4))
    perm = rng.permutation(30)
    a = kernel_regression(keys, values, queries, 2.0)
    b = kernel_regression(keys[perm], values[perm], queries, 2.0)
    np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12)


def test_torch_batched_per_head_beta_and_gradients():
    torch.manual_seed(0)
    keys = torch.randn(2, 3, 10, 4, dtype=torch.float64, requires_grad=True)
    values = torch.randn(2, 3, 10, 5, dtype=torch.float64)
    queries = torch.randn(2, 3, 6, 4, dtype=torch.float64)
    beta = torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64)
    out = kernel_regression(keys, values, queries, beta)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 3, 6, 5)
    for h in range(3):  # each head uses its own bandwidth
        ref = kernel_regression(keys[:, h], values[:, h], queries[:, h], float(beta[h]))
        torch.testing.assert_close(out[:, h], ref)
    out.sum().backward()
    assert keys.grad is not None and torch.isfinite(keys.grad).all()


def test_bandwidth_extremes():
    rng = np.random.default_rng(4)
    keys, values = rng.normal(size=(12, 2)), rng.normal(size=(12, 3))
    # beta = 0: plain average of the values
    np.testing.assert_allclose(kernel_regression(keys, values, keys[:2], 0.0)[0], values.mean(0))
    # huge beta: the nearest stored key wins
    out = kernel_regression(keys, values, keys[:3] + 1e-4, 1e6)
    np.testing.assert_allclose(out, values[:3], atol=1e-6)


def test_mask_and_empty_rows():
    rng = np.random.default_rng(5)
    keys, values = rng.normal(size=(6, 3)), rng.normal(size=(6, 2))
    strict = np.tril(np.ones((6, 6), dtype=bool), k=-1)  # query t reads pairs s < t
    out = kernel_regression(keys, values, keys, 1.0, mask=strict)
    assert np.all(out[0] == 0.0)  # position 0: empty memory, answer exactly 0
    for t in range(1, 6):
        np.testing.assert_allclose(out[t], kernel_regression(keys[:t], values[:t], keys[t:t + 1], 1.0)[0])
    w = kernel_weights(keys, keys, 1.0, mask=strict)
    np.testing.assert_allclose(w[1:].sum(-1), 1.0)
    assert np.all(w[~strict] == 0.0)
    a = attention_weights(keys, keys, 1.0, mask=strict)
    assert np.all(a[0] == 0.0)


@pytest.mark.parametrize(
    "call, error, words",
    [
        (lambda k, v, q: kernel_regression(k, v, q, -1.0), ValueError, "beta"),
        (lambda k, v, q: kernel_regression(k, v, q, float("nan")), ValueError, "finite"),
        (lambda k, v, q: kernel_regression(k[:0], v[:0], q, 1.0), ValueError, "empty"),
        (lambda k, v, q: kernel_regression(k, v[:3], q, 1.0), ValueError, "same number"),
        (lambda k, v, q: kernel_regression(k, v, q[:, :2], 1.0), ValueError, "feature size"),
        (lambda k, v, q: kernel_regression(k[0], v, q, 1.0), ValueError, "shape"),
        (lambda k, v, q: kernel_regression("abc", v, q, 1.0), TypeError, "numpy"),
        (lambda k, v, q: kernel_regression(k, v, q, "wide"), TypeError, "beta"),
        (lambda k, v, q: kernel_regression(k, v, q, 1.0, mask=np.ones((2, 2))), TypeError, "bool"),
        (lambda k, v, q: kernel_regression(k, v, q, 1.0, mask=np.ones((3, 3), bool)), ValueError,
         "broadcast"),
        (lambda k, v, q: kernel_regression(k, v, q, np.ones((2, 2, 2))), ValueError, "beta"),
    ],
)
def test_invalid_inputs_raise_clear_errors(call, error, words):
    rng = np.random.default_rng(6)
    k, v, q = rng.normal(size=(8, 3)), rng.normal(size=(8, 2)), rng.normal(size=(4, 3))
    with pytest.raises(error, match=words):
        call(k, v, q)


# ---- the retrieval of the models ------------------------------------------------------------


def _naive_causal(k, v, q, beta):
    """y_t = Σ_{s<t} softmax_s(β q_t·k_s) v_s, one position at a time; y_0 = 0."""
    y = torch.zeros(*q.shape[:-1], v.shape[-1], dtype=v.dtype)
    for t in range(1, q.shape[-2]):
        scores = beta * (k[..., :t, :] @ q[..., t, :, None])[..., 0]  # (B, H, t)
        y[..., t, :] = (torch.softmax(scores, dim=-1)[..., None] * v[..., :t, :]).sum(-2)
    return y


@pytest.mark.parametrize("T", [1, 2, 9])
def test_causal_retrieval_fused_explicit_and_naive_agree(T):
    torch.manual_seed(T)
    k, v, q = torch.randn(2, 3, T, 4), torch.randn(2, 3, T, 5), torch.randn(2, 3, T, 4)
    fused = causal_retrieval(k, v, q, beta=0.7)
    explicit, w = causal_retrieval(k, v, q, beta=0.7, return_weights=True)
    torch.testing.assert_close(fused, _naive_causal(k, v, q, 0.7))
    torch.testing.assert_close(explicit, fused)
    assert w.shape == (2, 3, T, T)
    assert torch.all(w.triu() == 0)  # s >= t is never read, row 0 reads nothing
    torch.testing.assert_close(w[..., 1:, :].sum(-1), torch.ones(2, 3, T - 1))
    torch.testing.assert_close(causal_retrieval(k, v), causal_retrieval(k, v, k))  # queries = keys


@pytest.mark.parametrize("T", [16, 32])
def test_causal_retrieval_shifted_form_agrees(T):
    """At T a multiple of 16 (queries = keys) the retrieval runs as one length-T causal
    attention with the queries shifted by one (memory._shifted_causal): same answers and
    gradients as the naive sum over s < t, and row 0 exactly 0."""
    torch.manual_seed(T)
    k = torch.randn(2, 3, T, 4, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, 3, T, 5, dtype=torch.float64, requires_grad=True)
    y = causal_retrieval(k, v, beta=0.7)
    ref = _naive_causal(k, v, k, 0.7)
    torch.testing.assert_close(y, ref)
    assert torch.all(y[..., 0, :] == 0)
    w = torch.randn_like(ref)
    for a, b in zip(torch.autograd.grad((y * w).sum(), (k, v)),
                    torch.autograd.grad((ref * w).sum(), (k, v)), strict=True):
        torch.testing.assert_close(a, b)


def test_causal_retrieval_is_masked_softmax_attention():
    """One meaning of β: causal_retrieval's β is softmax_attention's (see the module doc)."""
    torch.manual_seed(0)
    k, v = torch.randn(2, 7, 3, dtype=torch.float64), torch.randn(2, 7, 2, dtype=torch.float64)
    past = torch.ones(7, 7, dtype=torch.bool).tril(-1)  # s < t
    ref = softmax_attention(k, v, k, 3.0, mask=past)
    torch.testing.assert_close(causal_retrieval(k[None], v[None], beta=3.0)[0], ref)


@pytest.mark.parametrize("T,delay", [(9, 3), (16, 1), (16, 5), (4, 4), (3, 7)])
def test_causal_retrieval_with_a_delay_reads_s_at_most_t_minus_delay(T, delay):
    """delay m: position t reads s <= t - m (v2's long-term memory), rows t < m answer exactly
    0; fused and weights paths, values and gradients, against masked softmax attention."""
    from mosaics_edu.core.v2.windows import long_term_mask

    torch.manual_seed(T + delay)
    k = torch.randn(2, 3, T, 4, dtype=torch.float64, requires_grad=True)
    v = torch.randn(2, 3, T, 5, dtype=torch.float64, requires_grad=True)
    q = torch.randn(2, 3, T, 4, dtype=torch.float64, requires_grad=True)
    fused = causal_retrieval(k, v, q, beta=0.7, delay=delay)
    explicit, w = causal_retrieval(k, v, q, beta=0.7, delay=delay, return_weights=True)
    ref = softmax_attention(k, v, q, 0.7, mask=long_term_mask(T, delay))
    torch.testing.assert_close(fused, ref)
    torch.testing.assert_close(explicit, ref)
    assert torch.all(fused[..., :delay, :] == 0) and torch.all(w[..., :delay, :] == 0)
    assert torch.all(w.masked_select(~long_term_mask(T, delay)) == 0)
    if T > delay:
        g = torch.randn_like(ref)
        for a, b in zip(torch.autograd.grad((fused * g).sum(), (k, v, q)),
                        torch.autograd.grad((ref * g).sum(), (k, v, q)), strict=True):
            torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match="delay"):
        causal_retrieval(k, v, q, delay=0)


def test_retrieve_reads_every_pair_and_an_empty_memory_answers_zero():
    torch.manual_seed(1)
    k, v, q = torch.randn(2, 3, 6, 4), torch.randn(2, 3, 6, 5), torch.randn(2, 3, 2, 4)
    y, w = retrieve(k, v, q, beta=2.0, return_weights=True)
    ref = torch.softmax(2.0 * q @ k.transpose(-1, -2), -1) @ v
    torch.testing.assert_close(retrieve(k, v, q, beta=2.0), ref)
    torch.testing.assert_close(y, ref)
    assert w.shape == (2, 3, 2, 6)
    empty = retrieve(k[..., :0, :], v[..., :0, :], q)
    assert empty.shape == (2, 3, 2, 5) and torch.all(empty == 0)


def test_retrieve_through_a_mask_reads_only_the_allowed_pairs():
    """The window form (v2's memories): fused and written-out paths agree with softmax_attention's
    masked weights, a row with nothing to read answers exactly 0, a wrong mask shape is refused."""
    torch.manual_seed(3)
    k, v, q = torch.randn(2, 3, 7, 4), torch.randn(2, 3, 7, 5), torch.randn(2, 3, 5, 4)
    mask = torch.rand(5, 7) < 0.5
    mask[2] = False  # query 2 reads nothing
    mask[0, 3] = True
    y = retrieve(k, v, q, beta=1.5, mask=mask)
    y_w, w = retrieve(k, v, q, beta=1.5, mask=mask, return_weights=True)
    ref = softmax_attention(k, v, q, 1.5, mask=mask)
    torch.testing.assert_close(y, ref)
    torch.testing.assert_close(y_w, ref)
    assert torch.all(y[..., 2, :] == 0) and torch.all(w[..., 2, :] == 0)
    assert torch.all(w[..., ~mask] == 0)
    torch.testing.assert_close(w.sum(-1)[..., [0, 1, 3, 4]], torch.ones(2, 3, 4))
    with pytest.raises(ValueError, match="mask must have shape"):
        retrieve(k, v, q, mask=mask.T)


def test_beta_zero_weighs_every_readable_pair_the_same():
    """At β = 0 position t averages the values of s < t, and retrieve averages all of them
    (PyTorch's fused kernel alone would answer nan for a scale of 0)."""
    torch.manual_seed(2)
    k, v = torch.randn(1, 2, 6, 3), torch.randn(1, 2, 6, 4)
    y = causal_retrieval(k, v, beta=0.0)
    past_means = torch.stack([v[..., :t, :].mean(-2) if t else torch.zeros_like(v[..., 0, :])
                              for t in range(6)], dim=-2)  # (1, 2, 6, 4)
    torch.testing.assert_close(y, past_means)
    torch.testing.assert_close(causal_retrieval(k, v, beta=0.0, return_weights=True)[0], past_means)
    q = torch.randn(1, 2, 3, 3)
    torch.testing.assert_close(retrieve(k, v, q, beta=0.0), v.mean(-2, keepdim=True).expand(1, 2, 3, 4))


@pytest.mark.parametrize(
    "call",
    [
        lambda k, v: causal_retrieval(k, v[..., :3, :]),  # fewer values than keys
        lambda k, v: causal_retrieval(k, v, k[..., :2]),  # queries of another width
        lambda k, v: retrieve(k, v, k[0]),  # queries without the batch dimension
    ],
)
def test_model_retrieval_rejects_shapes_that_do_not_fit(call):
    k, v = torch.randn(2, 3, 5, 4), torch.randn(2, 3, 5, 6)
    with pytest.raises(ValueError, match="keys"):
        call(k, v)
