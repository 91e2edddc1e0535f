"The CPU best-matching-unit search of the built package against the brute-force distance table."
import pytest, torch
import fastcore.test as fct
import fastsom.som, fastsom.native
from fastsom.som import Som, first_lowest, k_lowest, score_product, matmul_rounds, ONEDNN_MIN_ROWS

WIDE = 128  # features of the tests of oneDNN's product (any number takes it)
from fastsom.native import native_first_lowest
from fastsom.distance import sqeuclidean

def randn(*shape, seed=0): return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))

@pytest.fixture(params=['native', 'torch'])
def row_minimum(request, monkeypatch):
    "Each test runs with the compiled row minimum (where this machine can build it) and with torch's steps."
    if request.param == 'native' and native_first_lowest() is None: pytest.skip('no C compiler here')
    if request.param == 'torch': monkeypatch.setattr(fastsom.som, 'native_first_lowest', lambda: None)
    return request.param

@pytest.mark.parametrize('cols', [31, 64, 96, 900, 2528])
def test_first_lowest_is_argmin(cols, row_minimum):
    scores = randn(300, cols)
    scores[5, [cols // 2, cols - 1]] = scores[6, [0, cols - 1]] = -9.  # ties: the first column wins
    scores[7, 3] = float('nan')  # NaN wins, as in argmin
    fct.test_eq(first_lowest(scores), scores.argmin(1, keepdim=True))
    fct.test_eq(first_lowest(scores[:, :cols - 1]), scores[:, :cols - 1].argmin(1, keepdim=True))  # rows apart

@pytest.mark.parametrize('map_size', [(1, 1), (5, 7), (8, 8), (9, 11), (30, 30), (50, 50)])
@pytest.mark.parametrize('block_bytes', [None, 4096])
def test_bmus_equal_brute_force(map_size, block_bytes, row_minimum):
    "Blocked search (padded for torch's grouped steps) on maps of any size picks the brute-force argmin."
    x = randn(2000, 16)
    som = Som(16, map_size, block_bytes=block_bytes)
    with torch.no_grad():
        som.weight.copy_(randn(som.n_units, 16, seed=1))
        som.weight[-1] = som.weight[0]  # a duplicated unit: the lower index wins, as with argmin
    fct.test_eq(som(x), sqeuclidean(x, som.weight.detach()).argmin(1))

@pytest.mark.parametrize('cols,k', [(900, 8), (1024, 8), (2528, 2), (10016, 8), (10016, 16)])
def test_k_lowest_holds_the_lowest_scores(cols, k):
    "Plain `topk` or group minima first (wide rows): the same k lowest scores, ties and padded +inf columns included."
    scores = randn(300, cols)
    scores[:, -16:] = float('inf')  # padded units
    scores[5, [3, 40, 41]] = scores[6, [0, cols - 17]] = -9.  # ties, within one group and across groups
    picked = k_lowest(scores, k)
    fct.test_eq(picked.shape, (300, k))
    fct.test_eq(picked.sort(1).values.diff(dim=1).min() > 0, True)  # k distinct columns
    fct.test_eq(scores.gather(1, picked), scores.topk(k, dim=1, largest=False).values)  # lowest first, as topk

@pytest.mark.parametrize('map_size', [(9, 11), (50, 50)])
def test_two_best_units(map_size):
    x, som = randn(2000, 16), Som(16, map_size)
    with torch.no_grad(): som.weight.copy_(randn(som.n_units, 16, seed=1))
    expected = sqeuclidean(x, som.weight.detach()).topk(2, largest=False).indices
    fct.test_eq(som.bmus(x, k=2), expected)

def test_default_block_is_8_mib_on_cpu():
    som = Som(8, (30, 30))
    assert som.block_rows() == 2**23 // (900 * 4)

@pytest.mark.filterwarnings('ignore:TF32 acceleration on top of oneDNN')  # torch's, when the flags are set
def test_score_product_kernels_agree():
    "oneDNN's product (blocks of 256 rows or more) and addmm's (smaller blocks, or oneDNN off) give the same scores."
    w, x = randn(900, WIDE, seed=1), randn(1000, WIDE)
    w2, w_neg2 = (w * w).sum(1), -2 * w
    expected = torch.addmm(w2.double(), x.double(), w_neg2.double().t()).float()
    for rows in (ONEDNN_MIN_ROWS - 1, ONEDNN_MIN_ROWS, len(x)):
        fct.test_close(score_product(w_neg2, w2)(x[:rows]), expected[:rows], eps=1e-3)
        fct.test_close(score_product(w_neg2)(x[:rows]) + w2, expected[:rows], eps=1e-3)  # the bare product
    with torch.backends.mkldnn.flags(enabled=False):
        fct.test_close(score_product(w_neg2, w2)(x), expected, eps=1e-3)
        fct.test_close(score_product(w_neg2)(x) + w2, expected, eps=1e-3)

@pytest.mark.parametrize('map_size', [(30, 30), (50, 50)])
def test_bmus_with_onednn_product(map_size):
    "Wide data takes oneDNN's product: the BMUs are float64's wherever float32 can tell the units apart, ties to the lower index."
    x = randn(3000, WIDE)
    som = Som(WIDE, map_size)
    with torch.no_grad():
        som.weight.copy_(randn(som.n_units, WIDE, seed=1))
        som.weight[-1] = som.weight[0]
    x[:50] = som.weight[0].detach() + 0.1 * x[:50]  # samples whose BMU is unit 0, tied with its copy
    assert som.block_rows() >= ONEDNN_MIN_ROWS
    d = sqeuclidean(x.double(), som.weight.detach().double())
    two = d.topk(2, largest=False)
    clear = (two.values[:, 1] - two.values[:, 0]) > 1e-4 * two.values[:, 0]
    found = som(x)
    fct.test_eq(found[clear], two.indices[clear, 0])
    assert clear[50:].float().mean() > 0.99  # the test sees almost every other sample
    assert (found == 0).any() and not (found == som.n_units - 1).any()  # unit 0 wins its ties with its copy

def round_tf32(t):
    "float32 values rounded to TF32's 10 stored mantissa bits, as a GPU's tensor cores read them."
    return ((t.contiguous().view(torch.int32) + 0x1000) & ~0x1FFF).view(torch.float32)

@pytest.mark.parametrize('map_size', [(30, 30), (40, 40)])  # 8 candidates by `topk`, and by group minima first
def test_rounded_product_is_reranked(monkeypatch, map_size):
    "Where torch may round float32 products (here emulated), the search re-ranks its 8 best candidates exactly."
    x, som = randn(5000, 64) + 8, Som(64, map_size)  # far from the origin: the rounding is large beside the gaps
    with torch.no_grad(): som.weight.copy_(x[:som.n_units] + 0.5 * randn(som.n_units, 64, seed=1))
    exact = som(x)
    def rounded_product(w_neg2, w2=None):  # the bare product where the compiled kernel adds `w2`
        return lambda xb: torch.mm(round_tf32(xb), round_tf32(w_neg2).t()) + (0 if w2 is None else w2)
    monkeypatch.setattr(fastsom.som, 'score_product', rounded_product)
    assert not matmul_rounds(torch.device('cpu'))
    rounded_alone = (som(x) == exact).float().mean().item()  # precision 'highest': no re-ranking
    try:
        torch.set_float32_matmul_precision('high')
        assert matmul_rounds(torch.device('cpu'))
        reranked = (som(x) == exact).float().mean().item()
    finally: torch.set_float32_matmul_precision('highest')
    assert rounded_alone < 0.99 and reranked >= 0.999, (rounded_alone, reranked)

@pytest.mark.parametrize('threads', [1, 2, 3])
def test_search_in_threads_is_the_same(threads, row_minimum):
    "Blocks searched in several threads (each running torch on one core) give the units of one thread; the count is restored."
    x, som = randn(20_000, 64), Som(64, (30, 30))
    with torch.no_grad():
        som.weight.copy_(randn(900, 64, seed=1))
        som.weight[-1] = som.weight[0]
    expected = sqeuclidean(x, som.weight.detach()).argmin(1)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        blocks = -(-len(x) // som.block_rows())
        team = som.compiled_pick() and fastsom.native.native_openmp()  # blocks in turn, each step on all threads
        fct.test_eq(som.search_threads(blocks), 1 if team else min(threads, blocks))
        fct.test_eq(som.search_threads(blocks, k=2), min(threads, blocks))  # torch's pick: blocks in threads
        fct.test_eq(som(x), expected)
        fct.test_eq(som.bmus(x, k=2)[:, 0], expected)
        fct.test_eq(torch.get_num_threads(), threads)
    finally: torch.set_num_threads(before)

def test_searches_from_several_python_threads_at_once():
    "Four Python threads searching one map at once (each its own OpenMP team, or Python threads of blocks for k=2) find the units of one search."
    from concurrent.futures import ThreadPoolExecutor
    x, som = randn(20_000, 16), Som(16, (20, 20))
    with torch.no_grad(): som.weight.copy_(randn(400, 16, seed=1))
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        one, two = som.bmus(x), som.bmus(x, k=2)
        with ThreadPoolExecutor(4) as pool:
            found = list(pool.map(lambda i: som.bmus(x, k=1 + i % 2), range(8)))
        for i, f in enumerate(found): fct.test_eq(f, two if i % 2 else one)
        fct.test_eq(torch.get_num_threads(), 2)
    finally: torch.set_num_threads(before)

def test_other_searches_stay_in_one_thread():
    "Another distance, another device, or one block: no threads."
    som = Som(8, (30, 30), distance='manhattan')
    fct.test_eq(som.search_threads(10), 1)
    fct.test_eq(Som(8, (30, 30)).search_threads(1), 1)

def test_reranking_temporaries_count_in_the_block(monkeypatch):
    "Where torch rounds float32 products, each row of a block also holds its candidates' `[8, D]` differences: the block has fewer rows."
    x, som = randn(3000, 784), Som(784, (20, 20))
    fct.test_eq(som.rerank_numbers(), 0)
    fct.test_eq(som.block_rows(som.rerank_numbers()), 2**23 // (400 * 4))
    seen = []
    def recording(k=1, search=Som.block_search):
        inner = search(som, k)
        def record(xb, out=None):
            seen.append(len(xb))
            return inner(xb, out)
        return record
    monkeypatch.setattr(som, 'block_search', recording)
    try:
        torch.set_float32_matmul_precision('high')  # what a GPU user sets for TF32; the CPU then re-ranks too
        fct.test_eq(som.rerank_numbers(), 8 * 784)
        fct.test_eq(som.rerank_numbers(k=2), 9 * 784)
        rows = 2**23 // ((400 + 8 * 784) * 4)
        som.bmus(x)
        fct.test_eq(max(seen), rows)
    finally: torch.set_float32_matmul_precision('highest')
