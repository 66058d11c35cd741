"""The codebook search kernel (core/codebook_search.cpp): exact nearest centroids from an int8 copy."""

from __future__ import annotations

import pytest
import torch

from core import native
from core.codebook_search import SearchTable
from core.compiled_step import compiler_found
from core.config import MimiConfig
from core.mimi import Codebook
from core.streaming import StreamingTranscriber
from tests.signals import noise
from tests.markers import needs_native

pytestmark = needs_native
needs_compiler = pytest.mark.skipif(not compiler_found(), reason="torch.compile needs a C++ compiler")


def books(n: int, dim: int, seed: int) -> torch.Tensor:
    """Centroids whose sizes differ a hundredfold, every second one a near twin of the one before:
    twins closer than the int8 copy can tell apart, so that only the exact second look can."""
    g = torch.Generator().manual_seed(seed)
    c = torch.randn(n, dim, generator=g) * torch.logspace(-2, 0, n)[torch.randperm(n, generator=g)][:, None]
    c[1::2] = c[0::2] * (1 + 1e-3 * torch.randn(n // 2, dim, generator=g))
    return c


def queries(centroids: torch.Tensor, rows: int, seed: int) -> list[torch.Tensor]:
    """Rows of every kind a residual can be: anywhere, next to a centroid, zero."""
    g = torch.Generator().manual_seed(seed)
    n, dim = centroids.shape
    out = []
    for trial in range(60):
        picks = torch.randint(0, n, (rows,), generator=g)
        if trial % 3 == 0:  # 1e-4 from a centroid: closer than the int8 copy can resolve
            out.append(centroids[picks] + 1e-4 * torch.randn(rows, dim, generator=g))
        elif trial % 3 == 1:
            out.append(torch.randn(rows, dim, generator=g) * 0.3)
        else:  # between two centroids, slightly nearer one of them
            other = torch.randint(0, n, (rows,), generator=g)
            out.append(0.52 * centroids[picks] + 0.48 * centroids[other])
    out.append(torch.zeros(rows, dim))
    return out


def exact_nearest(x: torch.Tensor, centroids: torch.Tensor) -> torch.Tensor:
    return ((x.double()[:, None] - centroids.double()[None]) ** 2).sum(-1).argmin(-1)


def int8_nearest(x: torch.Tensor, table: SearchTable) -> torch.Tensor:
    """What the int8 copy alone would answer: the search without its exact second look."""
    dim = x.shape[1]
    approx = table.norms - 2 * (x @ (table.values[:, :dim].float() * table.scales[:, None]).t())
    return approx.argmin(-1)


def search(x: torch.Tensor, centroids: torch.Tensor, table: SearchTable) -> torch.Tensor:
    return native.kernels().nearest_centroids(x, table.values, table.scales, table.l1, table.norms, centroids)


@pytest.mark.parametrize("rows", [1, 2, 3, 4])
@pytest.mark.parametrize("dim", [24, 256])  # 24: the table is padded to 32
@pytest.mark.parametrize("size", [512, 1030])  # 1030: a lone row's four-at-a-time loop leaves a tail
def test_the_kernel_finds_the_exact_nearest_centroid(rows, dim, size):
    centroids = books(size, dim, seed=rows + dim + size)
    table = SearchTable.build(centroids)
    assert table.values.shape == (size, -(-dim // 16) * 16)
    rough = 0
    for x in queries(centroids, rows, seed=rows):
        expected = exact_nearest(x, centroids)
        assert torch.equal(search(x, centroids, table), expected)
        rough += int((int8_nearest(x, table) != expected).sum())
    assert rough > 0  # the int8 copy alone gets some wrong: the exact second look is what is tested


def test_the_kernel_reads_centroids_through_any_strides():
    centroids = books(300, 40, seed=5)
    table = SearchTable.build(centroids)
    transposed = centroids.t().contiguous().t()  # the layout Codebook keeps: a view of [dim + 2, N]
    for x in queries(centroids, 2, seed=6):
        assert torch.equal(search(x, transposed, table), exact_nearest(x, centroids))


def test_the_kernel_refuses_what_it_cannot_take():
    centroids = books(64, 16, seed=1)
    table = SearchTable.build(centroids)
    with pytest.raises(RuntimeError, match="1 to 4 rows"):
        search(torch.randn(5, 16), centroids, table)
    with pytest.raises(RuntimeError, match="float32"):
        search(torch.randn(1, 16, dtype=torch.float64), centroids, table)
    with pytest.raises(RuntimeError, match="multiple of 16"):
        search(torch.randn(1, 40), books(64, 40, seed=2), table)


def codebook(size: int = 300, dim: int = 24, seed: int = 0) -> Codebook:
    book = Codebook(MimiConfig(codebook_size=size, codebook_dim=dim))
    g = torch.Generator().manual_seed(seed)
    book.embed_sum.copy_(torch.randn(size, dim, generator=g) * 2)
    book.cluster_usage.copy_(torch.rand(size, generator=g) + 0.5)
    book.refresh()
    return book


@pytest.mark.parametrize("rows", [1, 4, 40])  # 40: more than the kernel takes, the float32 product's
def test_a_codebook_with_its_search_table_answers_as_the_float32_product_does(rows):
    native.kernels()
    book = codebook(seed=rows)
    x = torch.randn(rows, 24, generator=torch.Generator().manual_seed(7)) * 2
    product = book.nearest(x)
    book.search_table()
    assert book.search is not None
    assert torch.equal(book.nearest(x), product)
    assert torch.equal(product, exact_nearest(x, book.centroids))


@needs_compiler
def test_a_compiled_search_calls_the_kernel():
    torch._dynamo.reset()
    native.kernels()
    book = codebook(seed=3)
    book.search_table()
    x = torch.randn(1, 24, generator=torch.Generator().manual_seed(8)) * 2
    expected = exact_nearest(x, book.centroids)
    book._augmented_t[-1] = float("nan")  # the float32 product's norms: only the kernel can still answer
    compiled = torch.compile(book.nearest, dynamic=False)
    assert torch.equal(compiled(x), expected)


def test_the_codec_gives_the_same_codes_through_its_kernels(tiny_checkpoint):
    native.kernels()
    codec = StreamingTranscriber.from_pretrained(tiny_checkpoint("gqa")).model.codec_model
    clip = torch.from_numpy(noise(2.0, seed=11))[None]
    frames = clip.shape[1] // codec.config.frame_size
    fs, k = codec.config.frame_size, codec.config.num_quantizers

    def live_codes():  # frame by frame, as a live stream feeds it
        state = codec.new_state(1)
        return torch.cat([codec.encode_frames(clip[:, i * fs:(i + 1) * fs], state, k) for i in range(frames)], dim=1)

    before = live_codes()
    codec.use_kernels()
    assert all(b.search is not None for b in codec.modules() if isinstance(b, Codebook))
    assert any(getattr(m, "row_kernel", False) for m in codec.modules())
    assert torch.equal(live_codes(), before)
