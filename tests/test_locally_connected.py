"LocallyConnected2d: equals a convolution when every position shares one filter, has exact gradients, and never builds the broadcast temporary."
import pytest, torch
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
