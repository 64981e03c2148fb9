"""Weight-based circuits: FactoredMatrix against materialized torch ops, QK/OV and composition scores
against TransformerLens, and the K-composition behind induction-2l's induction heads."""

from __future__ import annotations

import pytest
import torch

from llm_workings.analysis.circuits import (
    OV,
    QK,
    CompositionScores,
    FactoredMatrix,
    composition_baseline,
    composition_score,
    composition_scores,
    copying_scores,
    full_OV,
    full_QK,
)
from llm_workings.analysis.conventions import AnalysisError
from llm_workings.analysis.heads import head_scores, repeated_random_tokens
from llm_workings.transformer import Transformer, TransformerConfig


def random_factored(*leading: int, ldim: int = 7, mdim: int = 3, rdim: int = 7, seed: int = 0) -> FactoredMatrix:
    gen = torch.Generator().manual_seed(seed)
    return FactoredMatrix(
        torch.randn(*leading, ldim, mdim, generator=gen, dtype=torch.float64),
        torch.randn(*leading, mdim, rdim, generator=gen, dtype=torch.float64),
    )


# -- FactoredMatrix -------------------------------------------------------------------------------
def test_factored_matrix_products_transpose_and_shape():
    m = random_factored(2, 3, rdim=5)
    full = m.A @ m.B
    assert m.shape == (2, 3, 7, 5) and (m.ldim, m.mdim, m.rdim, m.ndim) == (7, 3, 5, 4)
    torch.testing.assert_close(m.AB, full)
    torch.testing.assert_close(m.T.AB, full.transpose(-2, -1))
    gen = torch.Generator().manual_seed(1)
    right = torch.randn(5, 4, generator=gen, dtype=torch.float64)
    left = torch.randn(6, 7, generator=gen, dtype=torch.float64)
    vec = torch.randn(5, generator=gen, dtype=torch.float64)
    torch.testing.assert_close((m @ right).AB, full @ right)
    torch.testing.assert_close((left @ m).AB, left @ full)
    torch.testing.assert_close(m @ vec, full @ vec)
    v = torch.randn(7, generator=gen, dtype=torch.float64)
    torch.testing.assert_close(v @ m, v @ full)
    other = random_factored(3, ldim=5, mdim=2, rdim=6, seed=3)  # leading [3] broadcasts against [2, 3]
    torch.testing.assert_close((m @ other).AB, full @ other.AB)
    assert (m @ other).shape == (2, 3, 7, 6)
    torch.testing.assert_close((2.5 * m).AB, 2.5 * full)
    square = random_factored(4)
    torch.testing.assert_close(square.BA, square.B @ square.A)


def test_factored_matrix_indexing():
    m = random_factored(2, 3, rdim=5)
    full = m.AB
    torch.testing.assert_close(m[1].AB, full[1])
    torch.testing.assert_close(m[1, 2].AB, full[1, 2])
    torch.testing.assert_close(m[:, 1:].AB, full[:, 1:])
    torch.testing.assert_close(m[0, 1, 2:5].AB, full[0, 1, 2:5])
    torch.testing.assert_close(m[0, 1, 3].AB, full[0, 1, 3:4])  # an int row keeps the row dim
    torch.testing.assert_close(m[0, 1, :, -1].AB, full[0, 1, :, -1:])
    with pytest.raises(AnalysisError, match="does not fit"):
        m[0, 0, 0, 0, 0]


def test_factored_matrix_svd_norm_and_eigenvalues_match_the_materialized_matrix():
    m = random_factored(2, 3, ldim=9, mdim=4, rdim=6)
    full = m.AB
    U, S, V = m.svd()
    assert U.shape == (2, 3, 9, 4) and S.shape == (2, 3, 4) and V.shape == (2, 3, 6, 4)
    torch.testing.assert_close(U @ torch.diag_embed(S) @ V.transpose(-2, -1), full)
    torch.testing.assert_close(S, torch.linalg.svdvals(full)[..., :4])
    torch.testing.assert_close(U.transpose(-2, -1) @ U, torch.eye(4, dtype=torch.float64).expand(2, 3, 4, 4))
    torch.testing.assert_close(m.norm(), torch.linalg.matrix_norm(full))
    square = random_factored(2, ldim=8, mdim=3, rdim=8, seed=5)
    ours = square.eigenvalues  # [2, 3]: AB's nonzero eigenvalues
    for i in range(2):
        theirs = torch.linalg.eigvals(square.AB[i])
        top = theirs[theirs.abs().argsort(descending=True)[:3]]
        assert sorted(ours[i].tolist(), key=lambda z: (z.real, z.imag)) == pytest.approx(
            sorted(top.tolist(), key=lambda z: (z.real, z.imag)), abs=1e-8
        )
    wide = FactoredMatrix(torch.randn(3, 5, dtype=torch.float64), torch.randn(5, 4, dtype=torch.float64))  # mdim > ldim
    torch.testing.assert_close(wide.S, torch.linalg.svdvals(wide.AB))


def test_factored_matrix_rejects_bad_shapes():
    with pytest.raises(AnalysisError, match="mdim"):
        FactoredMatrix(torch.zeros(4, 3), torch.zeros(2, 4))
    with pytest.raises(AnalysisError, match="broadcast"):
        FactoredMatrix(torch.zeros(2, 4, 3), torch.zeros(5, 3, 4))
    with pytest.raises(AnalysisError, match="square"):
        _ = random_factored(rdim=5).BA
    with pytest.raises(AnalysisError, match="inner dims"):
        random_factored() @ torch.zeros(6, 2, dtype=torch.float64)


# -- a model's circuits against TransformerLens ---------------------------------------------------
def test_qk_ov_and_full_circuits_match_transformer_lens(reference_pair):
    ours, theirs = reference_pair
    with torch.no_grad():
        torch.testing.assert_close(QK(ours).AB, theirs.QK.AB, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(OV(ours).AB, theirs.OV.AB, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(full_OV(ours).AB, (theirs.W_E @ theirs.OV @ theirs.W_U).AB, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(full_QK(ours).AB, (theirs.W_E @ theirs.QK @ theirs.W_E.T).AB, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(QK(ours).S, theirs.QK.S, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(OV(ours).norm(), theirs.OV.norm(), atol=1e-5, rtol=1e-4)
        eigenvalues = (theirs.W_E @ theirs.OV @ theirs.W_U).eigenvalues
        expected = (eigenvalues.sum(-1) / eigenvalues.abs().sum(-1)).real
    torch.testing.assert_close(copying_scores(ours), expected, atol=1e-4, rtol=0)
    assert QK(ours).shape == (3, 4, 32, 32) and full_OV(ours).shape == (3, 4, 97, 97)


@pytest.mark.parametrize("kind", ["Q", "K", "V"])
def test_composition_scores_match_transformer_lens(reference_pair, kind):
    ours, theirs = reference_pair
    result = composition_scores(ours, kind, baseline_samples=32)
    with torch.no_grad():
        expected = theirs.all_composition_scores(kind)
    torch.testing.assert_close(result.scores, expected, atol=1e-4, rtol=1e-4)
    assert result.scores[1:, :, 1].abs().max() == 0 and result.scores[:, :, 0].abs().max() == 0  # l1 < l2 only
    assert result.scores[0, :, 1:].min() > 0


def test_grouped_query_heads_read_their_shared_kv_head():
    model = Transformer(TransformerConfig(d_model=16, n_layers=2, n_heads=4, n_kv_heads=2, d_vocab=11, n_ctx=8))
    model.init_weights(seed=0, std=0.3)
    attn = model.blocks[1].attn
    with torch.no_grad():
        torch.testing.assert_close(QK(model)[1, 3].AB, attn.W_Q[3] @ attn.W_K[1].T)
        torch.testing.assert_close(OV(model)[1, 2].AB, attn.W_V[1] @ attn.W_O[2])
    assert composition_scores(model, "V", baseline_samples=8).scores.shape == (2, 4, 2, 4)


# -- induction-2l: the K-composition behind induction ---------------------------------------------
def test_induction_model_k_composition_and_copying(induction_model):
    tokens = repeated_random_tokens(induction_model, batch=8, half=20, seed=0, distinct=True)
    heads = head_scores(induction_model, tokens, kinds=("previous_token", "induction"))
    ((prev_layer, prev_head, _),) = heads.top("previous_token", 1)
    k_comp = composition_scores(induction_model, "K")
    ((writer, reader, best),) = k_comp.top(1)
    # measured: L0H2 (previous-token head) -> L1H2 = 0.317; baseline 0.124 +- 0.007
    assert writer == (prev_layer, prev_head) == (0, 2)
    assert reader[0] == 1 and heads.scores["induction"][reader] > 0.8
    assert best > k_comp.baseline + 10 * k_comp.baseline_std
    # every layer-1 head reads its keys from the previous-token head more than from any other layer-0 head
    assert torch.equal(k_comp.scores[0, :, 1].argmax(0), torch.full((4,), prev_head))
    q_best = composition_scores(induction_model, "Q", baseline_samples=32).top(1)[0][2]
    assert best > q_best + 0.1  # induction runs on K-composition, not Q
    # measured: layer-1 copying scores [1.000, 0.992, 0.884, 0.898]: the induction heads copy
    copying = copying_scores(induction_model)
    assert copying[1].min() > 0.85


def test_composition_baseline_and_result(induction_model, tmp_path):
    mean, std = composition_baseline((64, 16), n_samples=64, seed=1)
    assert 0.08 < mean < 0.2 and 0 < std < 0.03  # random rank-16 maps in 64 dims barely compose
    assert composition_baseline(induction_model, 64, seed=1) == (mean, std)
    aligned = FactoredMatrix(torch.eye(8)[:, :2], torch.eye(8)[:2])  # a projection composes fully with itself
    assert composition_score(aligned, aligned).item() == pytest.approx(1 / 2**0.5)
    result = composition_scores(induction_model, "V", baseline_samples=16)
    assert isinstance(result, CompositionScores) and result.head_labels[:2] == ["L0H0", "L0H1"]
    data = result.to_dict()
    assert data["result_type"] == "composition_scores" and data["composition"] == "V" and len(data["scores"]) == 2
    result.plot(tmp_path / "v_comp.svg")
    assert (tmp_path / "v_comp.svg").stat().st_size > 0
    with pytest.raises(AnalysisError, match="Q, K, V"):
        composition_scores(induction_model, "O")
    with pytest.raises(AnalysisError, match="n_samples"):
        composition_baseline(induction_model, 1)
