"The CPU best-matching-unit search of the built package against the brute-force distance table."
import pytest, torch
import fastcore.test as fct
from fastsom.som import Som, first_lowest
from fastsom.distance import sqeuclidean

def randn(*shape, seed=0): return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))

@pytest.mark.parametrize('cols', [31, 64, 96, 2528])
def test_first_lowest_is_argmin(cols):
    scores = randn(300, cols)
    scores[5, [cols // 2, cols - 1]] = scores[6, [0, cols - 1]] = -9.  # ties: the first column wins
    fct.test_eq(first_lowest(scores), scores.argmin(1, keepdim=True))

@pytest.mark.parametrize('map_size', [(1, 1), (5, 7), (8, 8), (9, 11), (30, 30), (50, 50)])
@pytest.mark.parametrize('block_bytes', [None, 4096])
def test_bmus_equal_brute_force(map_size, block_bytes):
    "Padded, blocked search on maps of any size (multiple of 32 units or not) picks the brute-force argmin."
    x = randn(2000, 16)
    som = Som(16, map_size, block_bytes=block_bytes)
    with torch.no_grad():
        som.weight.copy_(randn(som.n_units, 16, seed=1))
        som.weight[-1] = som.weight[0]  # a duplicated unit: the lower index wins, as with argmin
    fct.test_eq(som(x), sqeuclidean(x, som.weight.detach()).argmin(1))

def test_two_best_units():
    x, som = randn(2000, 16), Som(16, (9, 11))
    with torch.no_grad(): som.weight.copy_(randn(som.n_units, 16, seed=1))
    expected = sqeuclidean(x, som.weight.detach()).topk(2, largest=False).indices
    fct.test_eq(som.bmus(x, k=2), expected)

def test_default_block_is_4_mib_on_cpu():
    som = Som(8, (30, 30))
    assert som.block_rows() == 2**22 // (900 * 4)
