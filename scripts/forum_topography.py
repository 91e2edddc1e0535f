"""The forum's `Topography` setting, measured: units used after training a 20 x 20 layer on its own by SGD.

    python scripts/forum_topography.py [--seeds 0 1] [--steps 100] [--lr 0.05] [--threads 1]

The forum's setting: 1,024 codes `torch.rand(1024, 128)` (seeded), `SGD(lr, momentum=0.9)`, `sigma=5` fixed,
full-batch steps on the layer's own loss; units used = distinct BMUs of the codes at the end, of 400. Layers:
the forum's (`Topography.forum`, its loss and initialisation), fastsom's defaults with `normalize=True` (the flat
sheet, the normalised-kernel energy), the same started from the codes (`init_weights(z)`, as `deep_som_learner`
does), and the flat sheet with a learning rate 100 times larger. First, the ratio of the two losses. Torch's seed is set before each layer is built
(the forum's layer draws its units from it) and the codes have their own generator.
"""
import argparse, torch
from fastsom.layers import Topography

def units_used(make, seed, steps, lr, from_codes=False):
    torch.manual_seed(seed)
    topo = make()
    z = torch.rand(1024, 128, generator=torch.Generator().manual_seed(seed))
    if from_codes: topo.init_weights(z)
    opt = torch.optim.SGD(topo.parameters(), lr=lr, momentum=0.9)
    for _ in range(steps):
        opt.zero_grad(); topo(z).loss.backward(); opt.step()
    return topo.bmus(z).unique().numel()

if __name__ == '__main__':
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--seeds', type=int, nargs='+', default=[0, 1])
    p.add_argument('--steps', type=int, default=100)
    p.add_argument('--lr', type=float, default=0.05)
    p.add_argument('--threads', type=int, default=1)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    fastsom = lambda: Topography(128, (20, 20), normalize=True, sigma=5.)
    runs = [('forum layer', lambda: Topography.forum(outputs='fastsom', sigma=5.), a.lr, False),
            ('forum layer, before training', lambda: Topography.forum(outputs='fastsom', sigma=5.), a.lr, None),
            ('fastsom defaults (sheet)', fastsom, a.lr, False),
            ('fastsom defaults, init_weights(z)', fastsom, a.lr, True),
            (f'fastsom defaults (sheet), lr x 100', fastsom, a.lr * 100, False)]
    print(f'{a.steps} SGD steps, lr {a.lr}, momentum 0.9, sigma 5, 1024 codes of 128, 20 x 20 map; units used of 400 for seeds {a.seeds}')
    torch.manual_seed(a.seeds[0]); forum = Topography.forum(outputs='fastsom', sigma=5.)
    torch.manual_seed(a.seeds[0]); energy = Topography(128, height=20, width=20, normalize=True, init='normal', sigma=5.)
    z = torch.rand(1024, 128, generator=torch.Generator().manual_seed(a.seeds[0]))
    print(f"the forum's loss over fastsom's energy on the same units and codes: {forum(z).loss.item() / energy(z).loss.item():.0f} "
          f"(mean kernel row sum {forum.kernel().sum(1).mean().item():.1f})")
    for name, make, lr, from_codes in runs:
        steps = 0 if from_codes is None else a.steps
        print(f'{name:40}', [units_used(make, s, steps, lr, bool(from_codes)) for s in a.seeds], flush=True)
