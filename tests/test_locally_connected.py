"LocallyConnected2d: equals a convolution when every position shares one filter, has exact gradients, and never builds the broadcast temporary."
import math, pytest, torch
from torch import nn
import torch.nn.functional as F
import fastcore.test as fct
from fastsom.locally_connected import LocallyConnected2d, conv_output_size

def gen(seed=0): return torch.Generator().manual_seed(seed)

@pytest.mark.parametrize('kernel,stride,padding', [(3, 1, 0), (3, 1, 1), (3, 2, 0), (3, 2, 1), (2, 3, 2), ((3, 1), (1, 2), (0, 1)), (5, 1, 2)])
def test_matches_conv2d(kernel, stride, padding):
    g = gen()
    conv = nn.Conv2d(3, 4, kernel, stride, padding)
    with torch.no_grad():
        conv.weight.copy_(torch.randn(conv.weight.shape, generator=g)); conv.bias.copy_(torch.randn(4, generator=g))
    lc = LocallyConnected2d.from_conv2d(conv, (10, 9))
    x = torch.randn(5, 3, 10, 9, generator=g)
    expected = conv(x)
    fct.test_eq(lc(x).shape, expected.shape)
    fct.test_close(lc(x), expected, eps=1e-4)
    # the same with the filters given to forward, one set per sample
    fct.test_close(lc(x, lc.weight.detach().expand(5, *lc.weight_shape), lc.bias.detach().expand(5, *lc.bias_shape)), expected, eps=1e-4)

def test_positions_are_independent():
    "Changing the filter of one output position changes that position only."
    g = gen(1)
    lc = LocallyConnected2d(2, 3, 7, 3, padding=1, bias=False)
    x = torch.randn(4, 2, 7, 7, generator=g)
    w = lc.weight.detach().clone()
    w[2, 5] += torch.randn(w[2, 5].shape, generator=g)
    diff = (lc(x, w) - lc(x)).abs().amax((0, 1))
    assert diff[2, 5] > 0
    diff[2, 5] = 0
    fct.test_eq(diff.max().item(), 0.)

def test_reference_formula():
    "Every output is the written-out sum over channels and kernel offsets of a zero-padded input."
    g = gen(2)
    lc = LocallyConnected2d(2, 3, (5, 6), (2, 3), stride=(2, 1), padding=(1, 1)).double()
    x = torch.randn(2, 2, 5, 6, generator=g, dtype=torch.float64)
    xp = F.pad(x, (1, 1, 1, 1))
    out = lc(x)
    (oh, ow), W, b = lc.out_size, lc.weight.detach(), lc.bias.detach()
    for i in range(oh):
        for j in range(ow):
            patch = xp[:, :, 2 * i:2 * i + 2, j:j + 3]
            fct.test_close(out[:, :, i, j], torch.einsum('nckl,ockl->no', patch, W[i, j]) + b[:, i, j], eps=1e-12)

def test_gradcheck():
    g = gen(3)
    lc = LocallyConnected2d(2, 2, (3, 4), 2, stride=(1, 2), padding=(0, 1)).double()
    x = torch.randn(2, 2, 3, 4, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w, b: lc(x, w, b), (x, lc.weight, lc.bias))
    w = torch.randn(2, *lc.weight_shape, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(2, *lc.bias_shape, generator=g, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x, w, b: lc(x, w, b), (x, w, b))

def test_no_broadcast_temporary():
    "The largest allocation of a forward pass is far below the N x C_out x (C_in k k) x L broadcast temporary."
    from torch.profiler import profile, ProfilerActivity
    n, c_in, c_out, size, k = 16, 8, 16, 28, 3
    lc = LocallyConnected2d(c_in, c_out, size, k)
    x = torch.randn(n, c_in, size, size, generator=gen())
    with torch.no_grad(), profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof: lc(x)
    biggest = max(e.cpu_memory_usage for e in prof.events())
    temporary = n * c_out * c_in * k * k * (size - k + 1) ** 2 * 4
    assert 0 < biggest < temporary / 4, (biggest, temporary)

def test_bad_input():
    lc = LocallyConnected2d(2, 3, 6, 3)
    x = torch.randn(4, 2, 6, 6)
    fct.test_fail(lambda: lc(x, torch.randn(4, 4, 3, 2, 3)), contains='weight has shape (4, 4, 3, 2, 3); expected (4, 4, 3, 2, 3, 3)')
    fct.test_fail(lambda: lc(x, torch.randn(3, *lc.weight_shape)), contains='or (4, 4, 4, 3, 2, 3, 3) (one per sample)')
    fct.test_fail(lambda: lc(x, bias=torch.randn(3, 4)), contains='bias has shape (3, 4)')
    fct.test_fail(lambda: lc(torch.randn(4, 3, 6, 6)), contains='expected [batch, 2, 6, 6]')
    fct.test_fail(lambda: lc(torch.randn(2, 6, 6)), contains='input has shape (2, 6, 6)')
    fct.test_fail(lambda: LocallyConnected2d(2, 3, 2, 3), contains='does not fit')
    fct.test_fail(lambda: LocallyConnected2d(2, 3, 6, 3, stride=0), contains='must be positive')
    fct.test_fail(lambda: LocallyConnected2d(2, 3, 6, 'x'), contains='kernel_size must be an int or a pair')
    fct.test_fail(lambda: LocallyConnected2d.from_conv2d(nn.Conv2d(2, 2, 3, dilation=2), 6), contains='dilation=1')
    fct.test_eq(conv_output_size((28, 28), 3, 2, 1), (14, 14))

def test_float64_and_state_dict():
    lc = LocallyConnected2d(1, 2, 5, 3, bias=False)
    fct.test_eq(lc.double()(torch.randn(3, 1, 5, 5, dtype=torch.float64)).dtype, torch.float64)
    lc2 = LocallyConnected2d(1, 2, 5, 3, bias=False).double()
    lc2.load_state_dict(lc.state_dict())
    fct.test_eq(lc2.weight.detach(), lc.weight.detach())

def test_weight_without_bias_keeps_the_layers_bias():
    "The docs say a bias not passed is the layer's own: passing only `weight` must not drop it (it did)."
    g = gen(4)
    lc = LocallyConnected2d(2, 3, 6, 3)
    x = torch.randn(4, 2, 6, 6, generator=g)
    w = torch.randn(lc.weight_shape, generator=g)
    fct.test_close(lc(x, w), lc(x, w, lc.bias), eps=1e-6)
    fct.test_close(lc(x, lc.weight), lc(x), eps=1e-6)
    fct.test_close(LocallyConnected2d(2, 3, 6, 3, bias=False)(x, w), lc(x, w, torch.zeros(lc.bias_shape)), eps=1e-6)

def test_no_weights_layer_needs_its_weights():
    lc = LocallyConnected2d(2, 3, 6, 3, no_weights=True)
    fct.test_eq(list(lc.parameters()), [])
    x = torch.randn(4, 2, 6, 6, generator=gen(5))
    w, b = torch.randn(lc.weight_shape, generator=gen(6)), torch.randn(lc.bias_shape, generator=gen(7))
    fct.test_close(lc(x, w, b), LocallyConnected2d(2, 3, 6, 3)(x, w, b), eps=1e-6)
    fct.test_fail(lambda: lc(x), contains='no_weights=True: pass its weight and bias')
    fct.test_fail(lambda: lc(x, w), contains='no_weights=True: pass its weight and bias')
    fct.test_close(LocallyConnected2d(2, 3, 6, 3, bias=False, no_weights=True)(x, w), lc(x, w, torch.zeros_like(b)), eps=1e-6)

# ---- hypnettorch's LocalConv2dLayer, written out from its documentation: patches [N, C_in k k, L] from
# `F.unfold`, broadcast against filters [C_out, C_in k k, L] (or its per-sample [N, ...] extension), summed
# over the patch dimension, plus the bias [C_out, L], viewed as [N, C_out, out_height, out_width].
def seed_local_conv(x, filters, bias, kernel_size, stride, padding, out_hw):
    patches = F.unfold(x, kernel_size, padding=padding, stride=stride)            # [N, F, L]
    g = (patches.unsqueeze(1) * filters).sum(dim=2)                                 # [N, C_out, L]
    if bias is not None: g = g + bias
    return g.reshape(x.shape[0], -1, *out_hw)

def seed_out_size(h, w, k, s, p):
    k, s, p = [(v, v) if isinstance(v, int) else v for v in (k, s, p)]
    return (h - k[0] + 2 * p[0]) // s[0] + 1, (w - k[1] + 2 * p[1]) // s[1] + 1

CASES = [(3, 4, 9, 7, 3, 1, 0), (2, 5, 8, 8, 3, 2, 1), (1, 3, 10, 6, (3, 2), (1, 2), (1, 0)), (4, 2, 5, 5, 5, 1, 2)]

@pytest.mark.parametrize('c_in,c_out,h,w,k,s,p', CASES)
@pytest.mark.parametrize('bias', [True, False])
def test_local_conv2d_layer_matches_the_seed(c_in, c_out, h, w, k, s, p, bias):
    from fastsom.locally_connected import LocalConv2dLayer
    layer = LocalConv2dLayer(c_in, c_out, h, w, k, stride=s, padding=p, bias=bias)
    oh, ow = seed_out_size(h, w, k, s, p)
    kk = (k, k) if isinstance(k, int) else k
    shapes = [[c_out, c_in * kk[0] * kk[1], oh * ow]] + ([[c_out, oh * ow]] if bias else [])
    fct.test_eq(layer.param_shapes, shapes)
    fct.test_eq((layer.out_height, layer.out_width), (oh, ow))
    fct.test_eq([list(t.shape) for t in layer.weights], shapes)
    fct.test_eq(list(layer.state_dict()), ['filters', 'bias', '_weights.0', '_weights.1'] if bias else ['filters', '_weights.0'])
    g = gen(8)
    x = torch.randn(5, c_in, h, w, generator=g)
    b = layer.bias if bias else None
    fct.test_close(layer(x), seed_local_conv(x, layer.filters, b, k, s, p, (oh, ow)), eps=1e-5)
    ws = [torch.randn(sh, generator=g) for sh in shapes]
    fct.test_close(layer(x, weights=ws), seed_local_conv(x, ws[0], ws[1] if bias else None, k, s, p, (oh, ow)), eps=1e-5)
    # fastsom's extra: one set of weights per sample
    per = [torch.randn(5, *sh, generator=g) for sh in shapes]
    expected = torch.cat([seed_local_conv(x[i:i + 1], per[0][i], per[1][i] if bias else None, k, s, p, (oh, ow)) for i in range(5)])
    fct.test_close(layer(x, weights=per), expected, eps=1e-5)

def test_local_conv2d_layer_gradients_reach_a_hypernetwork():
    "A hypernetwork generates the weights (shared, and per sample); its gradients equal those through the seed's formula."
    from fastsom.locally_connected import LocalConv2dLayer
    layer = LocalConv2dLayer(2, 3, 8, 8, 3, stride=1, padding=1, no_weights=True)
    fct.test_eq((layer.weights, list(layer.parameters())), (None, []))
    shapes = layer.param_shapes
    sizes = [math.prod(s) for s in shapes]
    hnet = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, sum(sizes)))
    g = gen(9)
    x, emb, target = torch.randn(6, 2, 8, 8, generator=g), torch.randn(6, 4, generator=g), torch.randn(6, 3, 8, 8, generator=g)
    def grads(fn, per_sample):
        hnet.zero_grad()
        flat = hnet(emb) if per_sample else hnet(emb[0])
        lead = (6,) if per_sample else ()
        ws = [t.reshape(*lead, *s) for t, s in zip(flat.split(sizes, -1), shapes)]
        F.mse_loss(fn(x, ws), target).backward()
        return [p.grad.clone() for p in hnet.parameters()]
    def seed(x, ws):
        if ws[0].ndim == 3: return seed_local_conv(x, ws[0], ws[1], 3, 1, 1, (8, 8))
        return torch.cat([seed_local_conv(x[i:i + 1], ws[0][i], ws[1][i], 3, 1, 1, (8, 8)) for i in range(len(x))])
    for per_sample in (False, True):
        ours, theirs = grads(lambda x, ws: layer(x, weights=ws), per_sample), grads(seed, per_sample)
        assert all(t.abs().sum() > 0 for t in ours)
        for a, b in zip(ours, theirs): fct.test_close(a, b, eps=1e-5)

def test_local_conv2d_layer_errors_and_state_dict():
    from fastsom.locally_connected import LocalConv2dLayer
    layer = LocalConv2dLayer(2, 3, 6, 6, 3)
    x = torch.randn(4, 2, 6, 6)
    fct.test_fail(lambda: layer(x, weights=[layer.filters]), contains='weights must be a list of 2 tensors')
    fct.test_fail(lambda: layer(x, weights=[layer.filters.mT, layer.bias]), contains='filters has shape (3, 16, 18); expected (3, 18, 16)')
    fct.test_fail(lambda: layer(x, weights=[layer.filters, layer.bias[:, :4]]), contains='bias has shape (3, 4)')
    fct.test_fail(lambda: LocalConv2dLayer(2, 3, 6, 6, 3, no_weights=True)(x), contains='no_weights=True: pass weights=[filters, bias]')
    fct.test_fail(lambda: LocalConv2dLayer(2, 3, 2, 6, 3), contains='does not fit')
    other = LocalConv2dLayer(2, 3, 6, 6, 3)
    other.load_state_dict(layer.state_dict())
    fct.test_eq(other(x).detach(), layer(x).detach())
    opt = torch.optim.SGD(layer.parameters(), lr=0.1)
    fct.test_eq(len(list(layer.parameters())), 2)                             # filters and bias once, though listed twice in state_dict
    loss = layer(x).square().mean(); loss.backward(); opt.step()
    assert layer(x).square().mean() < loss
