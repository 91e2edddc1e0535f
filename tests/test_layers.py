"The `Topography` layer: its loss against the written-out formula, its gradients, its errors and its schedules."
import pickle
import pytest, torch
import torch.nn.functional as F
from torch import nn
import fastcore.test as fct
from fastai.learner import Learner
from fastai.data.core import DataLoaders
from fastai.callback.schedule import SchedExp
from fastsom.core import Grid
from fastsom.loss import som_energy
from fastsom.metrics import TopographicError
from fastsom.callback.schedule import AttrScheduler
from fastsom.layers import Topography, ASSIGNS, pnorm_distances, scale_distances

def gen(seed=0): return torch.Generator().manual_seed(seed)

def brute_loss(z, w, q, kernel, p=2., normalize=False):
    "0.5 / N sum_i sum_j (q K)_ij ||z_i - w_j||_p^p, written out with the full [N, M, D] difference table."
    if normalize: z, w = F.normalize(z, dim=1), F.normalize(w, dim=1)
    d = ((z[:, None] - w[None]).abs() ** p).sum(-1)
    return 0.5 * ((q @ kernel) * d).sum() / len(z)

def gaussian_kernel(grid, sigma, norm):
    k = torch.exp(-grid.dist2(torch.float64) / (2 * sigma ** 2))
    return k / k.sum(1, keepdim=True) if norm else k

@pytest.mark.parametrize('assign', ASSIGNS)
@pytest.mark.parametrize('grid', [Grid(3, 4), Grid(4, 4, 'hexagonal', toroidal=True)], ids=['rect', 'hex-torus'])
@pytest.mark.parametrize('p,normalize,kernel_norm', [(2, False, False), (2, True, True), (1, False, True), (3, False, False)])
def test_loss_is_the_written_out_energy(assign, grid, p, normalize, kernel_norm):
    topo = Topography(5, grid.shape, grid.topology, grid.toroidal, p=p, normalize=normalize, assign=assign, sigma=1.3,
                      kernel_norm=kernel_norm, seed=0).double().eval()
    z = torch.randn(30, 5, generator=gen(1), dtype=torch.float64)
    out = topo(z)
    w = topo.weight.detach()
    zz, ww = (F.normalize(z, dim=1), F.normalize(w, dim=1)) if normalize else (z, w)
    d = ((zz[:, None] - ww[None]).abs() ** p).sum(-1)
    fct.test_close(out.distances, d, eps=1e-9)
    fct.test_eq(out.bmu, d.argmin(1))
    if assign in ('hard', 'straight_through'): q = F.one_hot(d.argmin(1), grid.n_units).double()
    else:                                        # softmin of the per-sample z-scores at temperature 1 (eval: no noise)
        m = d.mean(1, keepdim=True)
        s = (d - m) / (((d - m) ** 2).mean(1, keepdim=True) + 1e-6 * m ** 2).sqrt()
        q = torch.softmax(-s, 1)
    fct.test_close(out.assignment.detach(), q, eps=1e-9)
    kernel = gaussian_kernel(grid, 1.3, kernel_norm)
    fct.test_close(out.loss, brute_loss(z, w, q, kernel, p, normalize), eps=1e-9)

def test_hard_mode_is_the_som_energy_and_its_step_the_kohonen_rule():
    topo = Topography(4, (4, 5), sigma=1.5, kernel_norm=False, seed=0).double()
    z = torch.randn(40, 4, generator=gen(), dtype=torch.float64, requires_grad=True)
    out = topo(z)
    k = topo.neighborhood_table()
    fct.test_close(out.loss, som_energy(z, topo.weight, out.bmu, k), eps=1e-12)
    gz, gw = torch.autograd.grad(out.loss, (z, topo.weight))
    h, w = k[out.bmu], topo.weight.detach()
    diff = z.detach()[:, None] - w[None]                                     # [N, M, D]
    fct.test_close(w - 0.5 * gw, w + 0.5 / 40 * (h[:, :, None] * diff).sum(0), eps=1e-12)   # Kohonen's rule
    fct.test_close(gz, (h[:, :, None] * diff).sum(1) / 40, eps=1e-12)                         # pull towards the BMU's neighbourhood

def test_straight_through_has_the_hard_value_and_a_soft_gradient():
    z = torch.randn(25, 3, generator=gen(2), requires_grad=True)
    outs, grads = {}, {}
    for assign in ('hard', 'straight_through', 'softmin'):
        topo = Topography(3, (3, 3), assign=assign, seed=0)
        outs[assign] = topo(z)
        grads[assign], = torch.autograd.grad(outs[assign].loss, z)
    fct.test_close(outs['straight_through'].loss, outs['hard'].loss, eps=1e-6)
    assert (grads['straight_through'] - grads['hard']).abs().max() > 1e-4   # the soft backward adds to the hard gradient

@pytest.mark.parametrize('assign', ASSIGNS)
@pytest.mark.parametrize('p,normalize', [(2, False), (2, True), (1, False), (1.5, True)])
def test_gradients_are_finite_at_the_lowest_temperature(assign, p, normalize):
    for temperature in (1e-12, 1e-30):
        topo = Topography(3, (3, 3), p=p, normalize=normalize, assign=assign, temperature=temperature, seed=0)
        # a sample on a unit, one at 0 (equal distance from the symmetric sheet), duplicates, and random ones
        z = torch.cat([topo.weight.detach()[:2], torch.zeros(2, 3), torch.randn(8, 3, generator=gen(3)) * 1e3]).requires_grad_()
        loss = topo(z).loss
        gz, gw = torch.autograd.grad(loss, (z, topo.weight))
        assert torch.isfinite(loss) and torch.isfinite(gz).all() and torch.isfinite(gw).all()

def test_gradients_reach_both_the_codes_and_the_units_in_every_mode():
    for assign in ASSIGNS:
        topo = Topography(3, (3, 3), assign=assign, seed=0).train()
        z = torch.randn(20, 3, generator=gen(4), requires_grad=True)
        gz, gw = torch.autograd.grad(topo(z).loss, (z, topo.weight))
        assert gz.abs().sum() > 0 and gw.abs().sum() > 0, assign

def test_clear_errors():
    topo = Topography(4, (2, 3))
    fct.test_fail(lambda: setattr(topo, 'temperature', 0), contains='temperature must be positive')
    fct.test_fail(lambda: setattr(topo, 'temperature', -1.), contains='temperature must be positive')
    fct.test_fail(lambda: Topography(4, temperature=0.), contains='temperature must be positive')
    fct.test_fail(lambda: setattr(topo, 'sigma', 0), contains='sigma must be positive')
    fct.test_fail(lambda: Topography(4, sigma=-2.), contains='sigma must be positive')
    fct.test_fail(lambda: topo(torch.randn(5, 3)), contains='expects latent codes of shape [N, 4], got (5, 3)')
    fct.test_fail(lambda: topo(torch.randn(5)), contains='expects latent codes of shape [N, 4]')
    fct.test_fail(lambda: Topography(4, assign='sparsemax'), contains="unknown assign 'sparsemax'")
    fct.test_fail(lambda: Topography(4, scale='max'), contains="unknown scale 'max'")
    fct.test_fail(lambda: Topography(4, p=0.5), contains='p must be a number >= 1')

def test_rescaled_softmin_ignores_the_scale_of_the_latent_space():
    d = pnorm_distances(torch.randn(10, 4, generator=gen(5)), torch.randn(9, 4, generator=gen(6)))
    for scale in ('zscore', 'log', 'mean'): fct.test_close(scale_distances(100 * d, scale), scale_distances(d, scale), eps=1e-4)
    for scale in ('zscore', 'log'): fct.test_close(scale_distances(d + 0 * d, scale), scale_distances(d, scale))
    topo = Topography(4, (3, 3), assign='softmin', temperature=0.5, seed=0)
    z = torch.randn(10, 4, generator=gen(7))
    q = topo(z).assignment
    with torch.no_grad(): topo.weight.mul_(0.01)
    fct.test_close(topo(0.01 * z).assignment, q, eps=1e-4)                # shrink everything: same assignment
    topo.scale = None
    raw = topo(0.01 * z).assignment
    fct.test_close(raw, torch.softmax(-topo.distances(0.01 * z) / 0.5, 1))
    fct.test_close(raw, torch.full_like(raw, 1 / 9), eps=1e-2)              # raw softmin: flattened to uniform by the shrink

def test_gumbel_is_random_in_training_and_the_softmin_in_eval():
    topo = Topography(3, (3, 3), assign='gumbel', temperature=0.3, seed=0)
    z = torch.randn(50, 3, generator=gen(8))
    torch.manual_seed(0)
    q1, q2 = topo(z).assignment, topo(z).assignment
    assert (q1 - q2).abs().max() > 1e-3
    fct.test_close(q1.sum(1), torch.ones(50))
    topo.eval()
    soft = Topography(3, (3, 3), assign='softmin', temperature=0.3, seed=0)
    fct.test_close(topo(z).assignment, soft(z).assignment)

def test_initialisation_leaves_no_unit_dead():
    x = torch.rand(2000, 2, generator=gen(9)) * torch.tensor([4., 1.]) + 3
    topo = Topography(2, (4, 6)).init_weights(x)                          # the PCA start of `Som`, on latent codes
    fct.test_eq(topo.bmus(x).unique().numel(), 24)
    sheet = Topography(6, (4, 6), seed=1)                                 # the data-free start: an ordered sheet around 0
    fct.test_eq(sheet.bmus(torch.randn(5000, 6, generator=gen(10))).unique().numel(), 24)
    fct.test_close(sheet.weight.detach().mean(0), torch.zeros(6), eps=1e-6)

def test_sigma_and_temperature_follow_the_attr_scheduler():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.enc, self.topo = nn.Linear(3, 2), Topography(2, (3, 3), assign='softmin', seed=0)
        def forward(self, x): return self.enc(x)
    net = Net()
    ds = [(x, x) for x in torch.randn(40, 3, generator=gen(11))]
    dls = DataLoaders.from_dsets(ds, ds, bs=10, device='cpu')
    learn = Learner(dls, net, loss_func=lambda z, x: net.topo(z).loss,
                    cbs=AttrScheduler({'sigma': SchedExp(1.5, 0.5), 'temperature': SchedExp(1., 0.01)}))
    learn.fit(2, 1e-2)
    hps = learn.recorder.hps
    fct.test_eq(len(hps['temperature']), 8)
    fct.test_close(hps['temperature'], [0.01 ** (i / 7) for i in range(8)])   # the last batch at the end value
    fct.test_close(hps['sigma'], [1.5 * (0.5 / 1.5) ** (i / 7) for i in range(8)])
    fct.test_close(net.topo.temperature, 0.01)

def test_topography_is_a_som_for_the_metrics_and_pickles():
    topo = Topography(2, (1, 4), seed=0)
    with torch.no_grad(): topo.weight.copy_(torch.tensor([[0., 0], [10, 0], [20, 0], [1, 0]]))
    fct.test_eq(TopographicError().batch_sum(topo, torch.tensor([[0.4, 0.], [14., 0.]]), None), 1)
    topo2 = pickle.loads(pickle.dumps(topo))
    z = torch.randn(5, 2, generator=gen(12))
    fct.test_close(topo2(z).loss, topo(z).loss)

# ---- the forum's layer, written out from the description: units `lin_wts` [H*W, D] drawn normal with
# std 1/sqrt(D) from torch's generator; forward normalises codes and units in the p_norm norm, takes the squared
# p_norm distances, the argmin, and the squared p_norm grid distances of every unit's (row, col) to the BMU's;
# loss = mean over samples of sum over units of exp(-grid_d2 / (2 sigma^2 + 1e-5)) * d2.
class ForumTopography(nn.Module):
    def __init__(self, latent_dim=128, height=20, width=20, p_norm=2):
        super().__init__()
        self.p_norm = p_norm
        self.locations = torch.tensor([[i, j] for i in range(height) for j in range(width)], dtype=torch.float32)
        self.lin_wts = nn.Parameter(torch.empty(height * width, latent_dim))
        self.lin_wts.data.normal_(mean=0.0, std=1 / latent_dim ** 0.5)
    def forward(self, z):
        p = self.p_norm
        d2 = torch.cdist(F.normalize(z, p=p, dim=1), F.normalize(self.lin_wts, p=p, dim=1), p=p) ** 2
        near = self.locations.to(z)[d2.argmin(1)]
        return torch.cdist(near, self.locations.to(z), p=p) ** 2, d2

def forum_loss(grid_d2, d2, sigma): return (torch.exp(-grid_d2 / (2 * sigma ** 2 + 1e-5)) * d2).sum(1).mean()

@pytest.mark.parametrize('p_norm', [2, 1, 3])
def test_forum_layer_drop_in_reproduces_the_forum(p_norm):
    torch.manual_seed(0); ref = ForumTopography(64, 10, 12, p_norm)
    torch.manual_seed(0); topo = Topography.forum(latent_dim=64, height=10, width=12, p_norm=p_norm)
    fct.test_eq(topo.lin_wts.detach(), ref.lin_wts.detach())               # the same draw from the same seed
    fct.test_eq(topo.locations, ref.locations)
    ref, topo = ref.double(), topo.double()
    z = torch.rand(300, 64, generator=gen(20), dtype=torch.float64)
    (g_ref, d_ref), (g, d) = ref(z), topo(z)
    fct.test_close(g, g_ref, eps=1e-5); fct.test_close(d, d_ref, eps=1e-5)
    # its loss as `objective='forum'`, trained by the forum's SGD: same losses and units step after step
    topo.outputs, topo.sigma = 'fastsom', 5.
    opt_ref = torch.optim.SGD(ref.parameters(), lr=0.001, momentum=0.9)
    opt = torch.optim.SGD(topo.parameters(), lr=0.001, momentum=0.9)
    for _ in range(4):
        l_ref = forum_loss(*ref(z), 5.); opt_ref.zero_grad(); l_ref.backward(); opt_ref.step()
        l = topo(z).loss; opt.zero_grad(); l.backward(); opt.step()
        fct.test_close(l, l_ref, eps=1e-5)
    fct.test_close(topo.lin_wts, ref.lin_wts, eps=1e-5)
    topo2 = Topography.forum(latent_dim=64, height=10, width=12, p_norm=p_norm).double()
    topo2.load_state_dict(ref.state_dict())                                # the forum's saved `lin_wts`
    fct.test_eq(topo2.lin_wts.detach(), ref.lin_wts.detach())

def test_forum_options_on_the_plain_constructor():
    topo = Topography(16, height=4, width=5, p_norm=3, normalize=True, objective='forum', init='normal', sigma=2., seed=0).double()
    z = torch.randn(40, 16, generator=gen(21), dtype=torch.float64)
    zz, ww = F.normalize(z, p=3, dim=1), F.normalize(topo.weight.detach(), p=3, dim=1)
    d = torch.cdist(zz, ww, p=3) ** 2                                       # ||z - w||_3^2, not ^3
    fct.test_close(topo(z).distances, d, eps=1e-9)
    g = torch.cdist(topo.locations.double(), topo.locations.double(), p=3) ** 2
    fct.test_close(topo(z).loss, (torch.exp(-g[d.argmin(1)] / (2 * 4 + 1e-5)) * d).sum(1).mean(), eps=1e-9)
    fct.test_close(Topography(16, p=3, power=2, seed=0).double().distances(z), torch.cdist(z, Topography(16, p=3, seed=0).double().weight, p=3) ** 2, eps=1e-9)
    fct.test_eq(Topography(16, height=4, width=5).map_size, (4, 5))
    fct.test_close(Topography(64, (20, 20), init='normal', seed=0).weight.std().item(), 1 / 8, eps=0.003)
    fct.test_fail(lambda: Topography(4, (2, 3), height=2, width=3), contains='give map_size or height and width, not both')
    fct.test_fail(lambda: Topography(4, height=2), contains='give both height and width')
    fct.test_fail(lambda: Topography(4, p=2, p_norm=2), contains='give p_norm')
    fct.test_fail(lambda: Topography(4, objective='kohonen'), contains="unknown objective 'kohonen'")
    fct.test_fail(lambda: Topography(4, objective='forum', neighborhood='bubble'), contains="leave neighborhood='gaussian'")
    fct.test_fail(lambda: Topography(4, power=0), contains='power must be a positive number')

@pytest.mark.parametrize('latent_dim', [2, 3, 128])
def test_normalised_sheet_has_no_ties(latent_dim):
    "With normalize=True a sheet through 0 gave whole rays of units one direction (exact ties) and a centre unit with none."
    topo = Topography(latent_dim, (20, 20), normalize=True, seed=0)
    units = F.normalize(topo.weight.detach(), dim=1)
    assert torch.pdist(units).min() > 1e-3
    if latent_dim >= 3:
        z = torch.randn(2000, latent_dim, generator=gen(22))
        two = topo.distances(z).topk(2, dim=1, largest=False).values
        assert (two[:, 1] - two[:, 0]).min() > 0                            # no sample has two equally near units
        # still a sheet in grid order
        te = TopographicError().batch_sum(topo, units[torch.randperm(400, generator=gen(23))[:100]] * 1.0001, None)
        assert te == 0
