"The numbers behind the pictures of a trained map, against brute force and hand computation; the pictures' geometry; bad input."
import numpy as np, pandas as pd, pytest, torch
import matplotlib.pyplot as plt
import fastcore.test as fct
from fastsom.all import som_dataloaders, som_learner, load_dataset, Grid
from fastsom.interpret import SomInterpretation, ShowMap, neighbour_pairs
from fastsom.cli import train, parser

GRIDS = [('rectangular', False), ('hexagonal', False), ('rectangular', True), ('hexagonal', True)]

def data(n=300, d=4, seed=0):
    return torch.randn(n, d, generator=torch.Generator().manual_seed(seed)) * torch.arange(1., d + 1) + 5

def trained(x, map_size=(4, 6), grid_kind=('rectangular', False), epochs=3, **kwargs):
    topology, toroidal = grid_kind
    dls = som_dataloaders(x, valid_pct=0, device='cpu', **kwargs)
    learn = som_learner(dls, map_size=map_size, topology=topology, toroidal=toroidal, seed=0, metrics=[])
    with learn.no_bar(), learn.no_logging(): learn.fit(epochs)
    return learn

def brute_umatrix(grid, w):
    "Mean euclidean distance to the neighbours, over the full [M, M] neighbour table."
    i = torch.arange(grid.n_units)
    nb = grid.are_neighbours(i[:, None], i[None, :]).double()
    d = ((w[:, None].double() - w[None].double()) ** 2).sum(-1).sqrt()
    return ((nb * d).sum(1) / nb.sum(1)).reshape(grid.shape).numpy()

@pytest.mark.parametrize('grid_kind', GRIDS)
@pytest.mark.parametrize('map_size', [(4, 6), (6, 3), (2, 4), (4, 2)])
def test_umatrix_equals_brute_force(grid_kind, map_size):
    learn = trained(data(), map_size, grid_kind)
    interp = SomInterpretation.from_learner(learn)
    fct.test_close(interp.umatrix(), brute_umatrix(learn.som.grid, learn.codebook(decoded=False)), eps=1e-9)

def test_umatrix_is_in_standardised_space():
    "Scaling one feature of the data by 1000 leaves the standardised map, so the U-matrix, unchanged."
    x = data()
    a = SomInterpretation.from_learner(trained(x)).umatrix()
    b = SomInterpretation.from_learner(trained(x * torch.tensor([1000., 1, 1, 1]))).umatrix()
    fct.test_close(a, b, eps=1e-3)

@pytest.mark.parametrize('grid_kind', GRIDS)
def test_neighbour_pairs_match_the_full_table(grid_kind):
    g = Grid(4, 6, *grid_kind)
    a, b = neighbour_pairs(g)
    i = torch.arange(g.n_units)
    full = g.are_neighbours(i[:, None], i[None, :]).nonzero()
    fct.test_eq(sorted(zip(a.tolist(), b.tolist())), sorted(map(tuple, full.tolist())))

def test_hits_sum_to_samples_and_match_bmus():
    x = data(n=517)
    learn = trained(x, (5, 7))
    interp = SomInterpretation.from_learner(learn, x=x)
    h = interp.hits()
    fct.test_eq(h.shape, (5, 7))
    fct.test_eq(int(h.sum()), 517)
    fct.test_eq(h.reshape(-1), torch.bincount(learn.bmus(x).index, minlength=35).numpy())

def test_train_and_valid_data():
    x = data(n=200)
    learn = som_learner(som_dataloaders(x, valid_pct=0.25, seed=0, device='cpu'), map_size=(3, 4), seed=0)
    fct.test_eq(SomInterpretation.from_learner(learn, ds_idx=0).hits().sum(), 150)
    fct.test_eq(SomInterpretation.from_learner(learn).hits().sum(), 50)       # the validation set by default, as in fastai
    fct.test_eq(SomInterpretation.from_learner(learn, dl=learn.dls.valid).hits().sum(), 50)

def test_bmus_follow_more_training():
    x = data()
    learn = trained(x, epochs=1)
    interp = SomInterpretation.from_learner(learn)
    before = interp.hits()
    with learn.no_bar(), learn.no_logging(): learn.fit(3)
    fct.test_eq(interp.bmu, learn.bmus(x).index)
    assert (interp.hits() != before).any()

def test_exported_learner_needs_data(tmp_path):
    from fastai.learner import load_learner
    x = data()
    learn = trained(x)
    learn.export(tmp_path / 'som.pkl')
    learn2 = load_learner(tmp_path / 'som.pkl')
    fct.test_fail(lambda: SomInterpretation.from_learner(learn2), contains='holds no data')
    fct.test_eq(SomInterpretation.from_learner(learn2, x=x).hits(), SomInterpretation.from_learner(learn).hits())

def test_label_map_hand_computed():
    "Units at the corners of a square; samples on units 0, 0, 0, 1, 1, 3 with labels a a b b c c."
    corners = torch.tensor([[0., 0.], [0., 1.], [1., 0.], [1., 1.]])
    learn = som_learner(som_dataloaders(corners, valid_pct=0, normalize=False, device='cpu'), map_size=(2, 2), seed=0)
    with torch.no_grad(): learn.som.weight.copy_(corners)
    x = corners[[0, 0, 0, 1, 1, 3]] + 0.01
    lm = SomInterpretation.from_learner(learn, x=x).label_map(pd.Series(['a', 'a', 'b', 'b', 'c', 'c']))
    fct.test_eq(lm.classes.tolist(), ['a', 'b', 'c'])
    fct.test_eq(lm.label.tolist(), [[0, 1], [-1, 2]])  # unit 1: a tie between b and c goes to b
    fct.test_close(lm.purity[[0, 0, 1], [0, 1, 1]], np.array([2 / 3, 1 / 2, 1.]))
    assert np.isnan(lm.purity[1, 0])

def test_label_map_equals_a_counting_loop():
    x, y = load_dataset('iris')
    learn = trained(x, (4, 5), epochs=5)
    interp = SomInterpretation.from_learner(learn, x=x, y=y)
    lm = interp.label_map()
    bmu = learn.bmus(x).index.numpy()
    for unit in range(20):
        won = y.to_numpy()[bmu == unit]
        if len(won) == 0:
            assert lm.label.reshape(-1)[unit] == -1 and np.isnan(lm.purity.reshape(-1)[unit])
            continue
        values, counts = np.unique(won, return_counts=True)
        fct.test_eq(lm.classes[lm.label.reshape(-1)[unit]], values[counts.argmax()])
        fct.test_close(lm.purity.reshape(-1)[unit], counts.max() / len(won))

def test_original_units_and_feature_names():
    x, _ = load_dataset('wine')
    learn = trained(x, (5, 6))
    interp = SomInterpretation.from_learner(learn)
    df = interp.codebook_df()
    fct.test_eq(list(df.columns), list(x.columns))
    fct.test_close(df.to_numpy(), learn.codebook().numpy())
    plane = interp.component_plane('proline')
    fct.test_close(plane.reshape(-1), learn.codebook()[:, list(x.columns).index('proline')].numpy())
    assert x.proline.min() - 1 <= plane.min() and plane.max() <= x.proline.max() + 1  # hundreds, not standardised
    fig = interp.plot_component_planes()
    fct.test_eq([a.get_title() for a in fig.axes[:len(x.columns)] if a.get_title()], list(x.columns))
    plt.close(fig)

def test_bad_input():
    x, _ = load_dataset('wine')
    learn = trained(x, (4, 4))
    interp = SomInterpretation.from_learner(learn, x=x)
    fct.test_fail(lambda: interp.label_map(np.zeros(10)), contains='labels have 10 entries but there are 178 samples')
    fct.test_fail(lambda: interp.plot_labels(np.zeros((178, 2))), contains='1-D')
    fct.test_fail(lambda: interp.label_map(), contains='no labels')
    fct.test_fail(lambda: SomInterpretation.from_learner(learn, x=x, y=[1, 2]), contains='labels have 2 entries')
    fct.test_fail(lambda: interp.component_plane('acidity'), contains="unknown feature 'acidity'; the features are: alcohol")
    fct.test_fail(lambda: interp.plot_component_planes(['alcohol', 'sugar']), contains="unknown feature 'sugar'")
    fct.test_fail(lambda: interp.plot_codebook(['alcohol', 'hue']), contains='exactly 3 features, got 2')
    fct.test_fail(lambda: interp.component_plane(13), contains='out of range')
    fct.test_fail(lambda: interp.plot_map(np.zeros(3)), contains='one value per unit (16), got 3')
    two = trained(x[['alcohol', 'hue']], (3, 3))
    fct.test_fail(lambda: SomInterpretation.from_learner(two).plot_codebook(), contains='at least 3 features, this data has 2')

@pytest.mark.parametrize('grid_kind', GRIDS)
def test_every_plot_draws_the_grid(grid_kind):
    "Every plot: one cell per unit, squares or hexagons, `height` rows of `width` units, row 0 at the top."
    x, _ = load_dataset('colors', n=300)
    learn = trained(x, (4, 6), grid_kind)
    y = np.where(x.red > 0.5, 'r', 'c')
    interp = SomInterpretation.from_learner(learn, y=y)
    corners = 6 if grid_kind[0] == 'hexagonal' else 4
    for name in ['codebook', 'umatrix', 'hitmap', 'labels', 'projection']:
        fig = getattr(interp, f'plot_{name}')()
        ax = fig.axes[0]
        cells = ax.collections[0]
        fct.test_eq(len(cells.get_paths()[0].vertices), corners + 1)  # closed polygon
        fct.test_close(cells.get_paths()[0].vertices[:-1].mean(0), np.zeros(2), eps=1e-9)  # centred on the offsets
        centres = cells.get_offsets()
        fct.test_close(centres, learn.som.grid.coords().numpy(), eps=1e-9)
        assert ax.yaxis_inverted()
        fct.test_eq(np.unique(centres[:, 1].round(6)).size, 4)  # 4 rows
        fct.test_eq(np.unique(centres[:, 0].round(6)).size, 6 if corners == 4 else 12)  # 6 columns (odd rows shifted on hexagons)
        plt.close(fig)

def test_plots_take_axes_and_return_the_figure():
    x, _ = load_dataset('colors', n=200)
    interp = SomInterpretation.from_learner(trained(x, (3, 5)))
    fig, axs = plt.subplots(1, 3)
    fct.test_is(interp.plot_codebook(ax=axs[0]), fig)
    fct.test_is(interp.plot_umatrix(ax=axs[1]), fig)
    fct.test_is(interp.plot_hitmap(ax=axs[2]), fig)
    fct.test_eq(len(plt.get_fignums()), 1)
    plt.close(fig)

def test_pca_colours_for_many_features():
    x, _ = load_dataset('digits')
    interp = SomInterpretation.from_learner(trained(x, (6, 8)))
    c = interp.rgb().reshape(-1, 3)
    fct.test_close(c.min(0), np.zeros(3)); fct.test_close(c.max(0), np.ones(3))
    axes = interp.principal_axes(3)
    fct.test_close(axes.t() @ axes, torch.eye(3, dtype=axes.dtype), eps=1e-9)
    fig = interp.plot_component_planes()
    fct.test_eq(sum(1 for a in fig.axes if a.get_title()), 64)
    plt.close(fig)

def test_show_map_saves_frames_and_leaves_no_figures(tmp_path):
    x, _ = load_dataset('colors', n=200)
    learn = som_learner(som_dataloaders(x, device='cpu'), map_size=(4, 5), seed=0)
    before = set(plt.get_fignums())
    with learn.no_bar(), learn.no_logging():
        learn.fit(3, cbs=ShowMap('umatrix', folder=tmp_path / 'u', live=False))
        learn.fit(2, cbs=ShowMap(live=False))  # neither live nor a folder: nothing
    fct.test_eq(sorted(p.name for p in (tmp_path / 'u').iterdir()), [f'umatrix_epoch{i:03d}.png' for i in (1, 2, 3)])
    fct.test_eq(set(plt.get_fignums()), before)
    assert not any(p.name != 'u' for p in tmp_path.iterdir())

def test_cli_writes_pictures(tmp_path):
    train(parser().parse_args(['train', 'iris', '--map', '5x7', '--epochs', '3', '--out', str(tmp_path / 'run'), '--topology', 'hexagonal']))
    for name in ['umatrix', 'component_planes', 'hitmap', 'codebook']:
        assert (tmp_path / 'run' / f'{name}.png').read_bytes()[:8] == b'\x89PNG\r\n\x1a\n', name

def test_cli_pictures_of_two_features(tmp_path):
    "Two features give no RGB codebook picture, and the run still succeeds with the other three."
    np.save(tmp_path / 'two.npy', np.random.default_rng(0).normal(size=(200, 2)).astype(np.float32))
    train(parser().parse_args(['train', str(tmp_path / 'two.npy'), '--map', '4x5', '--epochs', '2', '--out', str(tmp_path / 'run')]))
    fct.test_eq(sorted(p.name for p in (tmp_path / 'run').glob('*.png')), ['component_planes.png', 'hitmap.png', 'umatrix.png'])

# ---- the worst-represented samples: `top_losses`, `plot_top_losses`, and fastai's `Interpretation` on a SOM

def digits_learner(map_size=(6, 6), valid_pct=0.2):
    x, _ = load_dataset('digits')
    learn = som_learner(som_dataloaders(x, valid_pct=valid_pct, seed=0, device='cpu'), map_size=map_size, seed=0, metrics=[])
    with learn.no_bar(), learn.no_logging(): learn.fit(3)
    return learn

def table_learner():
    rng = np.random.default_rng(0)
    df = pd.DataFrame({'mass': rng.normal(4000, 500, 200), 'bill': rng.normal(44, 5, 200),
                       'species': rng.choice(['Adelie', 'Gentoo', 'Chinstrap'], 200)})
    df.loc[3, 'bill'] = np.nan
    learn = som_learner(som_dataloaders(df, valid_pct=0.2, seed=0, device='cpu'), map_size=(4, 4), seed=0, metrics=[])
    with learn.no_bar(), learn.no_logging(): learn.fit(3)
    return learn, df

def test_top_losses_are_fastais():
    "The same per-sample losses, largest first, with the same rows, as fastai's `Interpretation` on the validation data."
    from fastai.interpret import Interpretation
    for learn in (digits_learner(), table_learner()[0]):
        ours, theirs = SomInterpretation.from_learner(learn), Interpretation.from_learner(learn)
        fct.test_close(ours.losses, theirs.losses, eps=1e-4)
        (l, i), (fl, fi) = ours.top_losses(5), theirs.top_losses(5)
        fct.test_eq(i, fi); fct.test_close(l, fl, eps=1e-4)
        assert (l[:-1] >= l[1:]).all()
        fct.test_eq(ours.top_losses(3, largest=False)[1], theirs.top_losses(3, largest=False)[1])
        fct.test_eq(len(ours.top_losses()[0]), len(ours))

def test_plot_top_losses_draws_images_of_pixels():
    "Digits (features `pixel_<row>_<col>`): each panel is the sample, a gap, its unit, as 8 x 8 images in pixel units."
    learn = digits_learner()
    interp = SomInterpretation.from_learner(learn)
    loss, rows = interp.top_losses(9)
    fig = interp.plot_top_losses(9)
    fct.test_eq(len(fig.axes), 9)
    for ax, l, r in zip(fig.axes, loss.tolist(), rows.tolist()):
        pos = learn.som.grid.positions()[interp.bmu[r]].tolist()
        fct.test_eq(ax.get_title(), f"row {r}, loss {l:.3g}, unit ({pos[0]}, {pos[1]})")
        img = ax.images[0].get_array()
        fct.test_eq(img.shape, (8, 17))
        fct.test_close(img[:, :8].filled(np.nan).reshape(-1), learn.dls.decode(interp.x[r:r + 1])[0].double().numpy(), eps=1e-4)
        fct.test_close(img[:, 9:].filled(np.nan).reshape(-1), learn.codebook()[interp.bmu[r]].double().numpy(), eps=1e-4)
        assert img.mask[:, 8].all()
    plt.close(fig)
    fig = interp.plot_top_losses(4, img_shape=False, ncols=2)  # profiles instead
    fct.test_eq(len(fig.axes), 4); fct.test_eq(len(fig.axes[0].lines), 2)
    plt.close(fig)

def test_plot_top_losses_draws_profiles_of_a_table():
    "A table: the sample and its unit as profiles over the encoded features, named; the row of `x` in the title."
    learn, df = table_learner()
    interp = SomInterpretation.from_learner(learn, x=df)
    loss, rows = interp.top_losses(4)
    fig = interp.plot_top_losses(4)
    ax = fig.axes[0]
    fct.test_eq([t.get_text() for t in ax.get_xticklabels()], interp.feature_names)
    fct.test_eq(interp.feature_names[:2], ['mass', 'bill'])
    assert ax.get_title().startswith(f"row {rows[0]}, loss {loss[0]:.3g}")
    fct.test_close(ax.lines[0].get_ydata(), interp.x[rows[0]].double().numpy(), eps=1e-6)
    fct.test_close(ax.lines[1].get_ydata(), learn.som.weight.detach()[interp.bmu[rows[0]]].double().numpy(), eps=1e-6)
    plt.close(fig)

def test_fastai_plot_top_losses_names_the_som_one():
    "fastai's `Interpretation.plot_top_losses` cannot read a SOM's samples: it says what to call instead."
    from fastai.interpret import Interpretation
    for learn in (digits_learner(), table_learner()[0]):
        fct.test_fail(lambda: Interpretation.from_learner(learn).plot_top_losses(9), contains='SomInterpretation.from_learner(learn).plot_top_losses(k)')
        fct.test_fail(lambda: Interpretation.from_learner(learn).top_losses(3, items=True), contains='SomInterpretation')

def test_plot_top_losses_image_shapes():
    from fastsom.interpret import _image_shape
    fct.test_eq(_image_shape([f'pixel_{r}_{c}' for r in range(3) for c in range(5)]), (3, 5))
    fct.test_eq(_image_shape([f'pixel_{i}' for i in range(784)]), (28, 28))
    fct.test_eq(_image_shape([f'pixel_{i}' for i in range(10)]), None)                               # not a square
    fct.test_eq(_image_shape([f'pixel_{c}_{r}' for r in range(3) for c in range(5)]), None)         # not row by row
    fct.test_eq(_image_shape(['alcohol', 'hue']), None)
    x = data(n=60, d=6)
    interp = SomInterpretation.from_learner(trained(x, (3, 3)), x=x)
    fig = interp.plot_top_losses(2, img_shape=(2, 3))
    fct.test_eq(fig.axes[0].images[0].get_array().shape, (2, 7))
    plt.close(fig)
    fct.test_fail(lambda: interp.plot_top_losses(2, img_shape=(4, 4)), contains='img_shape (4, 4) does not hold the 6 features')
    fct.test_fail(lambda: interp.plot_top_losses(2, img_shape=True), contains='img_shape True does not hold the 6 features')
    fct.test_fail(lambda: interp.plot_top_losses(0), contains='k must be')
