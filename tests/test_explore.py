"""The exploration library: nearest neighbours, traversals, factor correlations, attribute vectors
and analogies, t-SNE/UMAP maps that place new points, code exports, and the TensorBoard export
read back with TensorBoard's own readers."""

import io

import numpy as np
import pytest
import torch

from explorer.evaluate import latent_stats
from explorer.explore.neighbours import nearest
from explorer.explore.traversals import (
    analogy,
    attribute_vector,
    factor_correlations,
    informative_order,
    label_mean,
    traversal,
    traversal_dims,
    walk,
)
from explorer.model import VAE, ModelConfig
from explorer.ui.explore import codes_npy, codes_table, selected_indices


def test_nearest_matches_a_full_sort_and_leaves_the_query_out():
    g = torch.Generator().manual_seed(0)
    reference = torch.randn(5000, 3, 4, 4, generator=g)
    query = reference[17] + 0.01
    found = nearest(query, reference, 6, exclude=17)
    brute = (reference.flatten(1) - query.flatten()).norm(dim=1)
    brute[17] = float("inf")
    assert found.indices == torch.argsort(brute)[:6].tolist()
    assert found.distances == pytest.approx(torch.sort(brute).values[:6].tolist(), rel=1e-6)
    assert nearest(query, reference, 6).indices[0] == 17  # without exclude: itself first
    assert len(nearest(query, reference[:3], 10, exclude=0).indices) == 2
    with pytest.raises(ValueError, match="values"):
        nearest(torch.zeros(5), reference, 3)


def test_nearest_agrees_with_float64_where_float32_cannot_tell_items_apart():
    g = torch.Generator().manual_seed(4)
    base = torch.rand(300, 1, 28, 28, generator=g)
    reference = torch.cat([base, base[:100], base[:100] + 1e-7])  # exact and near duplicates
    query = base[50] + 0.05 * torch.rand(1, 28, 28, generator=g)
    found = nearest(query, reference, 5)
    brute = (reference.double().flatten(1) - query.double().flatten()).norm(dim=1)
    assert found.indices == torch.sort(brute, stable=True).indices[:5].tolist()  # ties: lower index
    assert found.distances == pytest.approx(torch.sort(brute, stable=True).values[:5].tolist(), rel=1e-12)


def test_a_traversal_moves_one_dimension_per_row():
    torch.manual_seed(0)
    model = VAE(ModelConfig(image_shape=(1, 4, 4), hidden=(8,), latent_dim=3)).eval()
    seen = []
    decode = model.decode
    model.decode = lambda z: seen.append(z.clone()) or decode(z)
    base = torch.tensor([0.5, -1.0, 2.0])
    images = traversal(model, base, [2, 0], [-1.0, 0.0, 1.0])
    assert images.shape == (6, 1, 4, 4)
    z = torch.cat(seen)
    assert z[:3, 2].tolist() == [-1.0, 0.0, 1.0] and (z[:3, :2] == base[:2]).all()
    assert z[3:, 0].tolist() == [-1.0, 0.0, 1.0] and (z[3:, 1:] == base[1:]).all()
    assert traversal_dims([0.1, 3.0, 0.0, 2.0], [9, 9, 9, 9], [True, True, False, True]) == ([1, 3, 0], [2])
    # An autoencoder (no KL): its rows by the code's spread
    assert traversal_dims([0.0] * 4, [0.5, 0.1, 0.0, 2.0], [True, True, False, True]) == ([3, 0, 1], [2])


def test_a_conv_autoencoders_dimensions_come_by_code_variance_not_index():
    """The Manifold page's server-side sliders (a conv decoder) and its axes, and the Traversals
    rows, come most informative first. An autoencoder has no KL (all zero): by its code's spread."""
    torch.manual_seed(0)
    shape = dict(image_shape=(1, 8, 8), channels=(4,), hidden=(8,), latent_dim=4)
    config = ModelConfig(model="ae", arch="conv", **shape)
    model = VAE(config).eval()
    with torch.no_grad():  # the code's spread planted per dimension: dimension 2 widest, then 0
        head = model.enc_head
        head.weight.mul_(torch.tensor([3.0, 0.1, 10.0, 1.0])[:, None])
    variance, kl = latent_stats(model, torch.rand(200, 1, 8, 8))
    assert kl.abs().sum() == 0
    order = informative_order(kl.tolist(), variance.tolist())
    assert order == torch.argsort(variance, descending=True).tolist() and order[:2] == [2, 0]
    assert order != sorted(order)  # not index order
    # A VAE goes by its KL, whatever its codes' spread.
    assert informative_order([0.5, 2.0, 0.0], [9.0, 0.1, 5.0]) == [1, 0, 2]


def test_factor_correlations_find_a_planted_factor_even_when_it_wraps():
    g = torch.Generator().manual_seed(0)
    n = 4000
    factors = torch.stack(
        [torch.rand(n, generator=g), torch.rand(n, generator=g) * 360], 1
    )  # scale, rotation
    angle = torch.deg2rad(factors[:, 1])
    means = torch.stack([3 * factors[:, 0] + 0.05 * torch.randn(n, generator=g), angle.sin(),
                         torch.randn(n, generator=g)], 1)  # fmt: skip
    table = factor_correlations(means, factors, ("scale", "rotation"))
    assert table.shape == (3, 2)
    assert table[0, 0] > 0.99 and table[0, 1] < 0.05  # z1 follows the scale
    assert table[1, 1] > 0.99 and table[1, 0] < 0.05  # z2 follows the rotation through its sine
    assert table[2].max() < 0.05  # z3 is noise


def test_attribute_vectors_walks_and_analogies():
    means = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 4.0], [0.0, 6.0]])
    labels = torch.tensor([0, 0, 1, 1])
    assert label_mean(means, labels, 1).tolist() == [0.0, 5.0]
    vector = attribute_vector(means, labels, 0, 1)
    assert vector.tolist() == [-1.0, 5.0]
    path = walk(torch.tensor([1.0, 1.0]), vector, 3, reach=2.0)
    assert path.tolist() == [[1.0, 1.0], [0.0, 6.0], [-1.0, 11.0]]
    assert analogy(torch.tensor([1.0, 0.0]), torch.tensor([2.0, 1.0]), torch.tensor([5.0, 5.0])).tolist() == [
        6.0,
        6.0,
    ]
    with pytest.raises(ValueError, match="no test image has label 7"):
        label_mean(means, labels, 7)


def test_codes_export_round_trips():
    codes, labels = torch.randn(10, 3), torch.arange(10) % 2
    text = codes_table(codes, labels, [3, 5], ["even", "odd"]).decode()
    lines = text.strip().split("\n")
    assert lines[0] == "index,label,name,z1,z2,z3" and lines[1].startswith("3,1,odd,")
    assert [float(v) for v in lines[2].split(",")[3:]] == pytest.approx(codes[5].tolist(), rel=1e-5)
    table = np.load(io.BytesIO(codes_npy(codes, labels, range(10))), allow_pickle=False)
    assert table["index"].tolist() == list(range(10)) and np.allclose(table["z"], codes.numpy())
    box = {"box": [{"x": [0, 1]}], "points": [{"customdata": [4]}, {"customdata": 2}, {"customdata": [4]}]}
    assert selected_indices(box) == [2, 4]
    assert selected_indices({"points": [{"customdata": [4]}], "box": [], "lasso": []}) is None  # a click


@pytest.mark.parametrize("kind", ["tsne", "umap"])
def test_a_nonlinear_map_keeps_its_points_and_places_new_ones_among_their_neighbours(kind):
    from explorer.explore.projections import fit_nonlinear

    g = torch.Generator().manual_seed(0)
    centres = torch.tensor([[0.0] * 5, [8.0] * 5, [-8.0, 8.0, -8.0, 8.0, -8.0]])
    means = torch.cat([c + 0.3 * torch.randn(150, 5, generator=g) for c in centres])
    projection = fit_nonlinear(kind, means)
    assert torch.equal(projection(means[:40]), projection.points[:40])  # the fitted places
    new = projection(centres + 0.05)  # placed, not refitted
    assert new.shape == (3, 2)
    for i in range(3):  # each new point lands nearest its own cluster's places
        cluster_centres = torch.stack([projection.points[150 * k : 150 * (k + 1)].mean(0) for k in range(3)])
        assert int((cluster_centres - new[i]).norm(dim=1).argmin()) == i


@pytest.mark.integration
def test_tensorboard_export_reads_back_with_tensorboard(tmp_path):
    from google.protobuf import text_format
    from PIL import Image
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from tensorboard.plugins.projector.projector_config_pb2 import ProjectorConfig

    from explorer.checkpoints import load_checkpoint
    from explorer.data.cache import eval_images
    from explorer.evaluate import encode_means
    from explorer.explore.tensorboard import export_tensorboard
    from explorer.train.run import start_run
    from tests.runs import SMALL, read_metrics, small_config

    run = start_run(tmp_path / "run", SMALL, small_config(), progress=False)
    done = export_tensorboard(run, tmp_path / "tb", limit=300, metrics=read_metrics(run))
    config = text_format.Parse((tmp_path / "tb" / "projector_config.pbtxt").read_text(), ProjectorConfig())
    (embedding,) = config.embeddings
    tensors = np.loadtxt(tmp_path / "tb" / embedding.tensor_path, delimiter="\t")
    x, labels = eval_images("mnist", binarized=False, limit=300)
    expected = encode_means(load_checkpoint(run).eval(), x).numpy()
    assert tensors.shape == (300, 2) and np.allclose(tensors, expected, atol=1e-5)
    rows = (tmp_path / "tb" / embedding.metadata_path).read_text().strip().split("\n")
    assert rows[0] == "label\tname" and rows[1] == f"{int(labels[0])}\t{int(labels[0])}" and len(rows) == 301
    assert list(embedding.sprite.single_image_dim) == [28, 28]
    sprite = Image.open(tmp_path / "tb" / embedding.sprite.image_path)
    assert sprite.size[0] >= 28 * 18  # ceil(sqrt(300)) = 18 images a side
    events = EventAccumulator(str(tmp_path / "tb")).Reload()
    assert {"epoch/test_elbo", "train/train_loss", "epoch/kl"} <= set(events.Tags()["scalars"])
    epochs = [r for r in read_metrics(run) if r["type"] == "epoch"]
    logged = [e.value for e in events.Scalars("epoch/test_elbo")]  # float32 in the event file
    assert logged == pytest.approx([r["test_elbo"] for r in epochs], rel=1e-6)
    assert done.points == 300 and done.scalars > 0


def test_a_categorical_factor_counts_by_the_share_the_classes_explain():
    g = torch.Generator().manual_seed(1)
    kinds = torch.randint(0, 3, (3000,), generator=g).float()
    means = torch.stack([torch.tensor([0.0, 2.0, -2.0])[kinds.long()] + 0.1 * torch.randn(3000, generator=g),
                         torch.randn(3000, generator=g)], 1)  # fmt: skip
    table = factor_correlations(means, kinds[:, None], ("shape",))
    assert table[0, 0] > 0.99 and table[1, 0] < 0.1  # the middle class has the middle index: no line


def test_a_fitted_code_keeps_its_own_place_wherever_it_is_asked_for():
    from explorer.explore.projections import fit_nonlinear

    g = torch.Generator().manual_seed(2)
    means = torch.randn(300, 4, generator=g)
    projection = fit_nonlinear("tsne", means)
    asked = torch.stack([means[250], means[10] + 1.0, means[3]])  # two fitted codes, one new
    placed = projection(asked)
    assert torch.equal(placed[0], projection.points[250]) and torch.equal(placed[2], projection.points[3])
    assert not torch.equal(placed[1], projection.points[10])


def test_a_rotation_that_repeats_every_90_degrees_is_found():
    g = torch.Generator().manual_seed(3)
    rotation = torch.rand(3000, generator=g) * 360
    means = torch.stack([torch.cos(torch.deg2rad(4 * rotation)), torch.randn(3000, generator=g)], 1)
    table = factor_correlations(means, rotation[:, None], ("rotation",))
    assert table[0, 0] > 0.99 and table[1, 0] < 0.1


def test_the_tensorboard_export_refuses_a_used_or_impossible_folder(tmp_path):
    from explorer.errors import ExplorerError
    from explorer.explore.tensorboard import export_tensorboard

    (tmp_path / "used").mkdir()
    (tmp_path / "used" / "projector_config.pbtxt").write_text("")
    (tmp_path / "afile").write_text("")
    for target, message in (("used", "already holds files"), ("afile", "is a file")):
        with pytest.raises(ExplorerError, match=message):
            export_tensorboard("mnist-z2", tmp_path / target, limit=10)
    with pytest.raises(ExplorerError, match="cannot create"):
        export_tensorboard("mnist-z2", "/proc/forbidden/tb", limit=10)
