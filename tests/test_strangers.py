"""Strangers: the detector's mathematics on small synthetic statistics, then the shipped models
on the handed cases, on other datasets and on their own test images."""

from pathlib import Path

import numpy as np
import pytest
import torch

from explorer.data.specs import spec
from explorer.explore.outliers import MARK_KINDS, noise_images, synthetic_marks
from explorer.explore.strangers import (
    STRANGER_QUANTILE,
    Judgement,
    Reference,
    StrangerDetector,
    Verdict,
    png_bits,
    rank_words,
    stranger_message,
)

CASES = Path(__file__).parent / "cases"


def _ink(n, rng, full=0.5, width=4.3) -> np.ndarray:
    """Ink statistics (n, 2): full ink share and ink width, about MNIST's digits by default."""
    return np.column_stack([np.clip(rng.normal(full, 0.1, n), 0, 1), rng.normal(width, 0.8, n)])


def _reference(n=2000, seed=0) -> np.ndarray:
    """Statistics (distortion, rate, complexity, added ink, full ink, ink width) of
    in-distribution images, with the ELBO and the complexity correlated as in a real dataset:
    simpler images, higher ELBO."""
    rng = np.random.default_rng(seed)
    complexity = rng.normal(1500, 200, n)
    elbo = -0.08 * complexity + rng.normal(0, 8, n)
    rate = rng.normal(10, 1, n)
    added = rng.normal(20, 4, n)
    return np.column_stack([elbo + rate, rate, complexity, added, _ink(n, rng)])


def _outliers(n=400, seed=5) -> np.ndarray:
    """Outliers of the three kinds a detector is shown: poorly explained images (low ELBO, low
    rate, much added ink), images far simpler than the data (a high ELBO, a small PNG), and
    photographed objects explained as well as the data but inked otherwise (little full ink,
    wide)."""
    rng = np.random.default_rng(seed)
    complexity = rng.normal(1500, 400, n)
    elbo = -0.08 * complexity - 60 + rng.normal(0, 20, n)
    rate = rng.normal(6, 1.5, n)
    poor = np.column_stack([elbo + rate, rate, complexity, rng.normal(40, 8, n), _ink(n, rng)])
    complexity = rng.normal(500, 100, n)
    elbo = -0.04 * complexity + rng.normal(0, 8, n)
    simple = np.column_stack([elbo + 10, np.full(n, 10.0), complexity, rng.normal(20, 4, n), _ink(n, rng)])
    objects = _reference(n, seed + 1)
    objects[:, 4:] = _ink(n, rng, full=0.15, width=7.0)
    return np.vstack([poor, simple, objects])


def test_typical_images_pass_and_atypical_ones_are_strangers():
    detector = StrangerDetector().fit(_reference(), _outliers())
    fresh = detector.verdicts(_reference(2000, seed=1))
    assert np.mean([v.stranger for v in fresh]) == pytest.approx(1 - STRANGER_QUANTILE, abs=0.02)
    low_elbo = np.array([[-400.0, 10.0, 1500.0, 20.0, 0.5, 4.3]])  # far lower ELBO than any test image
    too_simple = np.array([[-40.0 + 10, 10.0, 400.0, 20.0, 0.5, 4.3]])  # a high ELBO, a far simpler image
    added_ink = np.array([[-110.0, 6.0, 1500.0, 60.0, 0.5, 4.3]])  # the decoder draws what is not there
    photo = np.array([[-120.0 + 10, 10.0, 1500.0, 20.0, 0.1, 8.0]])  # well explained; grey, wide ink
    for stats in (low_elbo, too_simple, added_ink, photo):
        verdict = detector.verdicts(stats)[0]
        assert verdict.stranger and verdict.percentile > 98, (stats, verdict)
    centre = np.array([[-120.0 + 10, 10.0, 1500.0, 20.0, 0.5, 4.3]])
    assert not detector.verdicts(centre)[0].stranger


def test_only_a_detector_for_drawings_reads_the_ink():
    """MNIST's detector reads the ink statistics; Fashion-MNIST's and the photographs' do not
    (measured: they cost Fashion-MNIST's verdict on uploaded digits), whatever the ink."""
    from explorer.explore.strangers import reads_ink

    assert reads_ink("mnist") and not reads_ink("fashion-mnist") and not reads_ink("shapes")
    blind = StrangerDetector(ink=False).fit(_reference(), _outliers())
    photo = np.array([[-120.0 + 10, 10.0, 1500.0, 20.0, 0.1, 8.0]])
    centre = np.array([[-120.0 + 10, 10.0, 1500.0, 20.0, 0.5, 4.3]])
    assert blind.strangeness(photo) == pytest.approx(blind.strangeness(centre))
    assert blind.features(photo).shape == (1, 5) and not blind.verdicts(photo)[0].stranger


def test_an_elbo_too_high_for_the_images_complexity_is_caught_by_the_density():
    """What the likelihood alone gets wrong (Nalisnick et al.): a simpler image with a higher ELBO
    than any in-distribution image is atypical in the (ELBO, complexity) density."""
    detector = StrangerDetector().fit(_reference(), _outliers())
    typical = detector.density_score(_reference(500, seed=2))
    simple = detector.density_score(np.array([[0.0, 10.0, 300.0, 20.0, 0.5, 4.3]]))
    assert simple[0] > np.quantile(typical, 0.999)


def test_non_finite_statistics_are_strangers_and_cannot_be_fitted():
    detector = StrangerDetector().fit(_reference(), _outliers())
    verdict = detector.verdicts(np.array([[np.nan, 1.0, 1000.0, 20.0, 0.5, 4.3]]))[0]
    assert verdict.stranger and verdict.percentile == 100.0
    bad = _reference()
    bad[3, 0] = np.inf
    with pytest.raises(ValueError, match="not finite"):
        StrangerDetector().fit(bad, _outliers())
    with pytest.raises(ValueError, match="at least 2 reference images"):
        StrangerDetector().fit(_reference(1), _outliers())
    few = StrangerDetector().fit(_reference(50), _outliers())  # few images: 20 per component
    assert few.mixture.n_components == 2 and len(few.reference) == 50
    with pytest.raises(ValueError, match="outliers"):
        StrangerDetector().fit(_reference(), _outliers()[:0])
    with pytest.raises(ValueError, match="6 columns"):  # statistics of before the ink's
        StrangerDetector().fit(_reference()[:, :4], _outliers()[:, :4])


def test_the_warning_names_the_kind_of_image():
    assert stranger_message(Verdict(1.0, 50.0, False)) is None
    message = stranger_message(Verdict(12.0, 99.4, True), spec("fashion-mnist").a_item)
    assert (
        "99.4%" in message and "a clothing item" in message and f"{100 * STRANGER_QUANTILE:.0f}%" in message
    )
    assert spec("shapes").a_item == "a shape" and spec("cifar10").a_item == "a photo"
    # a flat T-shirt silhouette, flagged on fashion-mnist-z2, is told why beside "not a clothing item"
    assert "made unlike the training images (a flat silhouette where they are photographs" in message


def test_a_stranger_is_told_what_made_it_strange():
    """The regression's largest terms, in words: an image far plainer than the data (a small PNG
    and an ELBO too high for it) and a poorly explained one are told that their ELBO and PNG size
    together are unlike the test images' (the density term, the largest here), a photographed
    object that its ink is grey or wide; a typical image has no reasons, and a detector restored
    from its arrays gives the same."""
    from explorer.explore.detector_store import detector_arrays, detector_from_arrays
    from explorer.explore.reasons import REASONS

    detector = StrangerDetector().fit(_reference(), _outliers())
    plain = np.array([[-10.0 + 10.0, 10.0, 450.0, 20.0, 0.5, 4.3]])  # ELBO -10: too high for its size
    poor = np.array([[-260.0 + 6.0, 6.0, 1500.0, 45.0, 0.5, 4.3]])
    photo = np.array([[-120.0 + 10.0, 10.0, 1500.0, 20.0, 0.12, 7.5]])
    typical = _reference(1, seed=3)
    verdicts = detector.verdicts(np.vstack([plain, poor, photo, typical]))
    assert [v.stranger for v in verdicts] == [True, True, True, False]
    together = "its ELBO and its PNG size together are unlike any test image's"
    assert together in verdicts[0].reasons[0] and together in verdicts[1].reasons[0]
    assert set(verdicts[2].reasons) == {REASONS["full ink"][0], REASONS["ink width"][1]}
    assert verdicts[3].reasons == () and 1 <= len(verdicts[0].reasons) <= 2
    message = stranger_message(verdicts[0], "a digit")
    said = "; and ".join(verdicts[0].reasons)
    assert message.endswith(f"What made it strange, most (in the prepared picture the model reads): {said}.")
    arrays = detector_arrays(detector)
    scalars = {"components": detector.components, "quantile": detector.quantile,
               "threshold": detector.threshold, "ink": detector.ink}  # fmt: skip
    restored = detector_from_arrays(arrays, scalars)
    again = restored.verdicts(np.vstack([plain, poor, photo, typical]))
    assert [v.reasons for v in again] == [v.reasons for v in verdicts]


def test_the_words_are_the_largest_terms_that_add_to_the_log_odds():
    """``strongest``: terms coef * z, positive only, at least a quarter of the largest, most
    first; the side of the mean picks the words; mismatched or unknown names are refused."""
    from explorer.explore.reasons import REASONS, strongest

    names = ["ELBO", "rate", "complexity", "added ink"]
    coef = np.array([-2.0, 0.5, -1.0, 1.0])
    z = np.array([-3.0, 4.0, -1.0, -2.0])  # terms 6, 2, 1, -2
    assert strongest(names, coef, z) == (REASONS["ELBO"][0], REASONS["rate"][1])
    assert strongest(names, coef, z, top=3) == (REASONS["ELBO"][0], REASONS["rate"][1])  # 1 < 6 / 4
    assert strongest(names, coef, -z) == (REASONS["added ink"][1],)  # the only term that adds
    assert strongest(names, coef, np.zeros(4)) == ()
    assert strongest(["density"], [1.0], [-2.0]) == ()  # below the mean: "" says nothing
    with pytest.raises(ValueError, match="names for"):
        strongest(names, coef[:3], z)
    with pytest.raises(ValueError, match="no words"):
        strongest(["sharpness"], [1.0], [1.0])


def test_png_bits_measure_complexity():
    blank = torch.zeros(1, 1, 28, 28)
    stroke = blank.clone()
    stroke[0, 0, 5:23, 13:15] = 1
    noise = torch.rand(1, 1, 28, 28, generator=torch.Generator().manual_seed(0))
    bits = png_bits(torch.cat([blank, stroke, noise]))
    assert bits[0] < bits[1] < bits[2]


def test_probes_are_seeded_and_of_every_kind():
    a, b = synthetic_marks(16, seed=3), synthetic_marks(16, seed=3)
    assert [k for k, _ in a] == [k for k, _ in b]
    assert all(np.array_equal(np.asarray(x), np.asarray(y)) for (_, x), (_, y) in zip(a, b))
    assert {k for k, _ in a} == set(MARK_KINDS) and "silhouette" in MARK_KINDS
    noise = noise_images(8, seed=1)
    assert noise.shape == (8, 1, 28, 28) and noise.min() >= 0 and noise.max() <= 1
    assert torch.equal(noise, noise_images(8, seed=1))


def _brute_ink(a: np.ndarray) -> tuple[float, float]:
    """Full ink share and ink width of one grey image (H, W) by brute force: every inked pixel's
    distance to every pixel of the image that is not inked."""
    inked = a > 0.1
    d = np.sqrt(((np.argwhere(inked)[:, None] - np.argwhere(~inked)[None]) ** 2).sum(2)).min(1)
    return float((a[inked] >= 0.9).mean()), 2.0 * float(np.percentile(d, 95))


def test_ink_statistics_match_a_brute_force_distance():
    from explorer.explore.ink import ink_statistics

    rng = np.random.default_rng(0)
    square = np.zeros((12, 12))
    square[2:10, 3:9] = 1.0  # a filled 8x6 block
    square[0, 0] = 0.5  # inked, not at full strength
    blobs = (rng.random((5, 12, 12)) < 0.35) * rng.uniform(0.05, 1.0, (5, 12, 12))
    images = np.concatenate([square[None], blobs])
    got = ink_statistics(torch.from_numpy(images)[:, None])
    assert got == pytest.approx(np.array([_brute_ink(a) for a in images]), abs=1e-12)
    assert got[0] == pytest.approx([48 / 49, 6.0])  # 8 of the block's pixels lie 3 deep: width 6
    colour = torch.from_numpy(np.stack([square, square, np.zeros_like(square)]))[None]  # mean 2/3
    assert ink_statistics(colour)[0] == pytest.approx(_brute_ink(square * 2 / 3))
    assert np.array_equal(ink_statistics(torch.zeros(2, 1, 8, 8)), np.zeros((2, 2)))


# -- the shipped models -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def mnist_z2():
    """mnist-z2, its test images and its shipped figures as the app and the CLI read them (the
    detector in derived/ is the one ``Reference.of`` would fit: ``fit_detector``)."""
    from explorer.checkpoints import load_checkpoint, resolve
    from explorer.data.cache import load_dataset
    from explorer.explore.derived import load
    from explorer.explore.strangers import Reference

    model, figures = load_checkpoint("mnist-z2"), load(resolve("mnist-z2"))
    test = load_dataset("mnist", "test").images.float() / 255.0
    return model, Reference(figures.elbo, figures.detector), test


HANDED = [
    "letter-A.png",
    "plus-sign.png",
    "three-clean.png",
    "three-shadow.jpg",
    "seven-sheet-clean.png",
    "seven-sheet-dot.png",
    "mnist-test-0-ink-on-paper.png",
    "mnist-test-1-ink-on-paper.png",
]


@pytest.mark.integration
def test_the_handed_cases_on_mnist_z2(mnist_z2):
    """The plus sign is a stranger; the digits, shadowed or not, are not, and the shadowed 3 sits
    near its clean twin's ELBO percentile (before: 10 against 66). (The letter: below.)"""
    from explorer.data.uploads import preprocess_image

    model, reference, _ = mnist_z2
    names = HANDED
    x = torch.stack([preprocess_image(CASES / n) for n in names])
    judged = dict(zip(names, reference.judge(model, x)))
    assert judged["plus-sign.png"].verdict.stranger
    for name in names[2:]:
        assert not judged[name].verdict.stranger, (name, judged[name])
    shadow, clean = judged["three-shadow.jpg"].elbo_percentile, judged["three-clean.png"].elbo_percentile
    assert abs(shadow - clean) < 10 and clean > 50, (shadow, clean)


@pytest.mark.integration
@pytest.mark.xfail(
    strict=True,
    reason="since the ink statistics and the photographed objects joined the detector, mnist-z2 "
    "ranks the handed letter A stranger than 93.3% of its test images, short of the 96% line "
    "(it was flagged, narrowly; mnist-z20 still flags it): bench/README.md, Strangers",
)
def test_the_handed_letter_is_a_stranger_to_mnist_z2(mnist_z2):
    from explorer.data.uploads import preprocess_image

    model, reference, _ = mnist_z2
    judged = reference.judge(model, preprocess_image(CASES / "letter-A.png")[None])[0]
    assert judged.verdict.stranger, judged


@pytest.mark.integration
def test_judgements_do_not_depend_on_the_other_images(mnist_z2):
    model, reference, test = mnist_z2
    together = reference.judge(model, test[100:110])
    alone = reference.judge(model, test[103:104])[0]
    assert together[3].elbo == pytest.approx(alone.elbo, abs=1e-4)
    assert together[3].verdict.strangeness == pytest.approx(alone.verdict.strangeness, abs=1e-3)
    assert together[3].verdict.stranger == alone.verdict.stranger


@pytest.mark.integration
def test_a_fashion_model_flags_digits_though_their_elbo_is_higher():
    """Nalisnick et al.'s case: the Fashion-MNIST model gives MNIST digits a higher ELBO than its
    own test images, yet the verdict calls them strangers (the old ELBO-percentile warning caught
    1.2%), and flags few of its own unseen test images."""
    from explorer.checkpoints import load_checkpoint
    from explorer.data.cache import load_dataset
    from explorer.explore.strangers import fit_detector, image_statistics

    model = load_checkpoint("fashion-mnist-z2")
    own = load_dataset("fashion-mnist", "test").images.float() / 255.0
    digits = load_dataset("mnist", "test").images[:500].float() / 255.0
    detector = fit_detector(model, own, "fashion-mnist")
    digit_stats, own_stats = image_statistics(model, digits), image_statistics(model, own[5000:6000])
    assert np.median(digit_stats[:, 0] - digit_stats[:, 1]) > np.median(own_stats[:, 0] - own_stats[:, 1])
    assert np.mean([v.stranger for v in detector.verdicts(digit_stats)]) > 0.9
    assert np.mean([v.stranger for v in detector.verdicts(own_stats)]) <= 0.06


def _uploaded(images: torch.Tensor) -> torch.Tensor:
    """28x28 uint8 images (N, 1, 28, 28) saved as pictures and prepared as uploads to a digit
    model (shrunk into the 20x20 box, centred by mass); those refused as blank are left out."""
    from PIL import Image

    from explorer.data.uploads import preprocess_image
    from explorer.errors import ImageError

    out = []
    for a in images:
        try:
            out.append(preprocess_image(Image.fromarray(a[0].numpy()), "mnist"))
        except ImageError:
            continue
    return torch.stack(out)


@pytest.mark.integration
@pytest.mark.parametrize("name", ["mnist-z2", "mnist-z20"])
def test_clothing_and_objects_uploaded_to_a_digit_model_are_strangers(name):
    """Photos of clothing prepared as digits were the MNIST models' weak spot (38% and 64% of
    Fashion-MNIST items flagged): the shipped detectors, which never saw any, flag at least 80%
    of 80 of them, and of photographed objects drawn from a seed they were not fitted on, and
    at most 5% of 2,000 of the model's own test images they were not fitted on."""
    from explorer.checkpoints import load_checkpoint, resolve
    from explorer.data.cache import load_dataset
    from explorer.explore.derived import load
    from explorer.explore.outliers import _prepared, synthetic_objects
    from explorer.explore.strangers import image_statistics

    model, detector = load_checkpoint(name), load(resolve(name)).detector
    clothing = _uploaded(load_dataset("fashion-mnist", "train").images[2000:2080])
    objects = _prepared(synthetic_objects(35, seed=3), "mnist")[0]
    own = load_dataset("mnist", "test").images[5000:7000].float() / 255.0
    flagged = {
        what: float(np.mean(detector.strangeness(image_statistics(model, x)) > detector.threshold))
        for what, x in {"clothing": clothing, "objects": objects, "own": own}.items()
    }
    assert len(clothing) >= 70 and flagged["clothing"] >= 0.8, flagged
    assert flagged["objects"] >= 0.8 and flagged["own"] <= 0.05, flagged


@pytest.mark.integration
def test_photographed_objects_are_inked_otherwise_than_digits():
    """What the ink statistics see: MNIST's digits are mostly full ink in strokes a few pixels
    wide, bold 0s and 8s included; a photographed object prepared as a digit keeps its spread
    of tones and fills a wider area."""
    from explorer.data.cache import load_dataset
    from explorer.explore.ink import ink_statistics
    from explorer.explore.outliers import _prepared, synthetic_objects

    digits = load_dataset("mnist", "test")
    ink = ink_statistics(digits.images[:2000].float() / 255.0)
    bold = ink[np.isin(digits.labels[:2000].numpy(), [0, 8])]
    objects = ink_statistics(_prepared(synthetic_objects(35, seed=3), "mnist")[0])
    assert np.median(objects[:, 0]) < np.percentile(ink[:, 0], 5) < np.median(bold[:, 0])
    assert np.median(objects[:, 1]) > np.percentile(ink[:, 1], 95) > np.median(bold[:, 1])


@pytest.mark.integration
def test_a_flat_t_shirt_silhouette_is_told_it_is_plainer_than_the_photos():
    """The walk's case: a plain T-shirt silhouette on fashion-mnist-z2, reconstructed as a T-shirt,
    is a stranger (no photo of the training set is that flat); the warning says that is why."""
    from PIL import Image, ImageDraw

    from explorer.checkpoints import load_checkpoint, resolve
    from explorer.data.uploads import preprocess_image
    from explorer.explore.derived import load
    from explorer.explore.strangers import image_statistics

    picture = Image.new("L", (280, 280), 255)
    ImageDraw.Draw(picture).polygon(
        [(90, 40), (190, 40), (260, 100), (225, 135), (200, 115), (200, 250), (80, 250), (80, 115),
         (55, 135), (20, 100)], fill=40,
    )  # fmt: skip
    model = load_checkpoint("fashion-mnist-z2")
    detector = load(resolve("fashion-mnist-z2")).detector
    x = preprocess_image(picture, "fashion-mnist")[None]
    verdict = detector.verdicts(image_statistics(model, x))[0]
    assert verdict.stranger and "plainer than the training images" in verdict.reasons[0]
    said = "What made it strange, most (in the prepared picture the model reads): it is plainer"
    assert said in stranger_message(verdict, "a clothing item")


@pytest.mark.parametrize(
    "percentile, count, said",
    [
        (85.71, 7, "higher than 6 of the 7 test images"),  # a folder of a dozen images: not "85.7%"
        (0.0, 7, "higher than none of the 7 test images"),
        (100.0, 12, "higher than all 12 test images"),
        (100.0, 1, "at or above the one test image's"),  # the test image itself, ranked among one
        (0.0, 1, "below the one test image's"),
        (42.0, 250, "higher than 42% of the test images"),
        (85.71, 10_000, "higher than 85.7% of the test images"),
        (85.71, 0, "higher than 85.7% of the test images"),  # count not known
        # the ends in words: an autoencoder's drawing was "higher than 100.0% of the test images"
        (100.0, 10_000, "higher than all 10,000 test images"),
        (0.0, 10_000, "higher than none of the 10,000 test images"),
        (99.96, 10_000, "higher than over 99.9% of the test images"),  # not rounded up to 100.0%
        (0.03, 10_000, "higher than under 0.1% of the test images"),
        (99.7, 250, "higher than over 99% of the test images"),
        (100.0, 0, "higher than all the test images"),
    ],
)
def test_a_rank_among_few_test_images_is_said_as_a_count(percentile, count, said):
    assert rank_words(percentile, count) == said


def test_a_judgement_names_how_many_test_images_it_is_ranked_among():
    """A model of a folder of a dozen images ranked an upload "higher than 85.7% of the test
    images" among 7: the count is carried with the judgement and said as a count."""
    detector = type("Flat", (), {"verdicts": lambda self, stats: [None] * len(stats)})()
    reference = Reference(torch.tensor([-90.0, -80, -70, -60, -50, -40, -30]), detector)
    assert reference.elbo_percentile(-45.0) == pytest.approx(100 * 5 / 7)
    verdict = Verdict(strangeness=0.0, percentile=50.0, stranger=False)
    judged = Judgement(-45.0, reference.elbo_percentile(-45.0), verdict, len(reference.test_elbo))
    assert judged.ranked() == "higher than 5 of the 7 test images"
    assert judged.to_dict()["test_images"] == 7


def test_an_autoencoders_figure_is_not_said_to_draw_eps():
    """Reconstruct said of mnist-ae-z2's log p(x|z) "the mean of 8 draws of eps": it has none."""
    from explorer.ui.image_report import ranking_words

    autoencoder = ranking_words("log p(x|z)")
    assert "draws of eps" not in autoencoder and "at its code z = f(x)" in autoencoder
    assert "8 draws of eps" in ranking_words("ELBO")


def test_the_reconstruct_caption_of_an_autoencoder_names_its_code():
    from tests.apptest import RECONSTRUCT, page

    at = page(RECONSTRUCT)
    at.session_state["model"] = "mnist-ae-z2"
    at.run()
    said = " ".join(c.value for c in at.caption)
    assert "at the image's code z = f(x)" in said and "the encoder's mean" not in said
