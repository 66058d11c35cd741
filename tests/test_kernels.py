"""The hand-picked forms of the codec's hot products give the same numbers as the plain forms."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from core.config import MimiConfig
from core.layers import FewRowLinear, few_row_linear
from core.mimi import Codebook


@pytest.mark.parametrize("rows", [1, 2, 3, 17, 64])
@pytest.mark.parametrize("bias", [False, True])
def test_few_row_linear_equals_linear(rows, bias):
    g = torch.Generator().manual_seed(rows)
    x = torch.randn(1, rows, 96, generator=g)
    w = torch.randn(40, 96, generator=g)
    b = torch.randn(40, generator=g) if bias else None
    out = few_row_linear(x, w, b)
    assert out.shape == (1, rows, 40)
    torch.testing.assert_close(out, F.linear(x, w, b), rtol=1e-5, atol=1e-5)


def test_few_row_linear_keeps_the_checkpoint_keys_of_a_linear():
    layer = FewRowLinear(8, 4, bias=False)
    assert isinstance(layer, torch.nn.Linear) and list(layer.state_dict()) == ["weight"]
    torch.testing.assert_close(layer(torch.ones(2, 8)), F.linear(torch.ones(2, 8), layer.weight))


@pytest.mark.parametrize("rows", [1, 2, 40])
def test_codebook_search_finds_the_nearest_centroid(rows):
    cfg = MimiConfig(codebook_size=300, codebook_dim=24)
    book = Codebook(cfg)
    g = torch.Generator().manual_seed(rows)
    book.embed_sum.copy_(torch.randn(300, 24, generator=g) * 2)
    book.cluster_usage.copy_(torch.rand(300, generator=g) + 0.5)
    book.refresh()
    x = torch.randn(rows, 24, generator=g) * 2
    centroids = book.embed_sum / book.cluster_usage[:, None]
    torch.testing.assert_close(book.centroids, centroids)
    assert torch.equal(book.nearest(x), torch.cdist(x, centroids).argmin(dim=-1))
