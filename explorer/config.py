"""Every setting of a model and of its training, written once.

``ModelConfig`` (what shapes the network) and ``TrainConfig`` (how it is trained) are dataclasses
whose fields carry their ``Setting``: type, default, unit, help, the values allowed, whether a
resumed run may change it, and its label on the Train page's form. Everything else is derived from
them: the validation of both configs, the ``vae-explorer train`` flags (``explorer.cli.train``), the
Train form (``explorer.ui.train_form``) and the rules of ``--resume`` and ``--init-from``. To add a
setting, add one field here (and read it where it takes effect). What a dataset implies
(likelihood, binarisation, image shape, preprocessing) lives in ``explorer.data.specs``.

Pure Python: importing it loads no torch. Both configs are stored in a checkpoint's config.json.
"""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, asdict, dataclass, field, fields
from typing import Any

from explorer.data.specs import DATASETS, binarized, spec


@dataclass(frozen=True)
class Setting:
    """What one config field is, what it may be, and who may change it when."""

    help: str
    unit: str = ""  # what a number counts, for help texts
    choices: tuple = ()  # the allowed values, when they are few
    labels: tuple = ()  # (choice, words) pairs for the form
    low: float | None = None  # inclusive bounds of a number (each width of a tuple)
    high: float | None = None
    optional: bool = False  # None allowed ("all", "the dataset's")
    resumable: bool = False  # a resumed run may change it
    form: str = ""  # the Train form's label; "": not on the form
    name: str = ""  # the field's name (filled in from the dataclass)
    kind: type = object  # int, float, str or tuple (filled in from the default)
    default: Any = None  # the field's default (filled in from the dataclass)

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    def check(self, value: Any) -> str | None:
        """Why ``value`` is not allowed, in words, or None when it is."""
        if value is None:
            return None if self.optional else f"{self.name} must be given"
        if self.choices and value not in self.choices:
            return f"{self.name} must be one of {', '.join(map(str, self.choices))}, not {value!r}"
        numbers = tuple(value) if isinstance(value, (tuple, list)) else (value,)
        if self.kind in (int, float, tuple):
            if not numbers or any(isinstance(v, bool) or not isinstance(v, (int, float)) for v in numbers):
                return f"{self.name} must be {'numbers' if self.kind is tuple else 'a number'}, not {value!r}"
            if not all(math.isfinite(v) for v in numbers):
                return f"{self.name} must be a finite number, not {value!r}"
            if self.kind in (int, tuple) and any(int(v) != v for v in numbers):
                return f"{self.name} must be whole, not {value!r}"
            if self.low is not None and min(numbers) < self.low:
                return f"{self.name} must be >= {self.low:g}, not {value!r}"
            if self.high is not None and max(numbers) > self.high:
                return f"{self.name} must be <= {self.high:g}, not {value!r}"
        return None


def setting(default: Any, help: str, **kw) -> Any:
    """A dataclass field with its ``Setting`` (see the module's docstring)."""
    factory = (lambda: default) if isinstance(default, (list, dict)) else None
    meta = {"setting": Setting(help, **kw)}
    return field(default_factory=factory, metadata=meta) if factory else field(default=default, metadata=meta)


def settings(config_class) -> tuple[Setting, ...]:
    """The ``Setting`` of each field of ``config_class`` that has one, with its name and kind."""
    out = []
    for f in fields(config_class):
        if "setting" not in f.metadata:
            continue
        value = f.default if f.default is not MISSING else f.default_factory()
        kind = {int: int, float: float, str: str, tuple: tuple}.get(type(value), _kind_of(f.type))
        fields_ = {**asdict(f.metadata["setting"]), "name": f.name, "kind": kind, "default": value}
        out.append(Setting(**fields_))
    return tuple(out)


def _kind_of(annotation: str) -> type:
    """The kind of a field whose default is None, from its annotation ("int | None")."""
    for kind in (int, float, str):
        if annotation.startswith(kind.__name__):
            return kind
    return str


def _check(config) -> None:
    problems = [p for s in settings(type(config)) if (p := s.check(getattr(config, s.name))) is not None]
    if problems:
        raise ValueError("; ".join(problems))


# The devices a setting may name (``pick_device`` in explorer.devices finds them on the machine).
DEVICES = "auto, cpu, cuda, cuda:N (a GPU by number) or mps"
DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")  # what the Train form offers (cuda:N: the CLI)


def check_device_name(name: str) -> str:
    """``name`` if it names a device VAE Explorer can run on (pure Python: no torch).

    Raises:
        ValueError: any other name, saying what is accepted.
    """
    kind, _, index = str(name).partition(":")
    if kind in ("auto", "cpu", "mps") and not index:
        return name
    if kind == "cuda" and (not index or index.isdigit()):
        return name
    raise ValueError(f"unknown device {name!r}: use {DEVICES}")


DEFAULT_DATASET = "mnist"
MODELS = ("vae", "ae", "dae")  # the VAE and its two deterministic baselines
AUTOENCODERS = ("ae", "dae")
NETWORKS = ("mlp", "conv")  # the values of ModelConfig.arch: fully connected or convolutional
LIKELIHOODS = ("bernoulli", "gaussian", "logistic")
CORRUPTIONS = ("mask", "gaussian")
ALGORITHMS = ("aevb", "wake-sleep", "mcem")  # how the parameters are learnt (the paper's Figures 2, 3)
NO_ENCODER = (  # what a Monte Carlo EM model's encoder figures mean, said wherever they are shown
    "This model was trained by Monte Carlo EM (the paper's Figure 3): only its decoder p(x|z) was "
    "learnt, from Hybrid Monte Carlo draws of z per training image; its encoder q(z|x) was never "
    "trained. Every figure that goes through the encoder (codes on a map, reconstructions, ELBO, KL, "
    "active units, L_K) describes that untrained network. What the model learnt shows in decoded "
    "draws z ~ p(z); its log-likelihood: vae-explorer evaluate NAME --estimator paper-hmc."
)


def encoder_trained(config: dict) -> bool:
    """Whether the checkpoint's config.json (``config``) describes a model whose encoder was
    trained: not one of Monte Carlo EM (``--algorithm mcem``), which learns the decoder alone."""
    return (config.get("train") or {}).get("algorithm", "aevb") != "mcem"


BOUND_ESTIMATORS = ("elbo", "paper-hmc")  # what the log-spaced points of a run measure
INITS = ("default", "paper")  # PyTorch's layer initialisation, or the paper's N(0, 0.01)


@dataclass
class ModelConfig:
    """What shapes the network; stored in config.json and in the weights' own metadata."""

    model: str = setting("vae", "vae (Kingma & Welling's variational autoencoder), ae (a plain "
                         "autoencoder, Hinton & Salakhutdinov 2006: a deterministic code, the "
                         "reconstruction loss only) or dae (a denoising autoencoder, Vincent et al. "
                         "2008: the input corrupted, the clean image reconstructed)", choices=MODELS,
                         labels=(("vae", "VAE"), ("ae", "Autoencoder (AE)"),
                                 ("dae", "Denoising autoencoder (DAE)")),
                         form="Model kind")  # fmt: skip
    latent_dim: int = setting(2, "size of z, at least 2 (the explorer's maps are planes); 2 shows the "
                              "latent space as it is", low=2, high=1024, form="Latent size")  # fmt: skip
    arch: str = setting("mlp", "the network: mlp (the paper's fully connected layers) or conv "
                        "(stride-2 convolutions in the encoder, transposed convolutions in the "
                        "decoder, then the hidden layers)", choices=NETWORKS,
                        labels=(("mlp", "MLP (the paper's)"), ("conv", "Convolutional")),
                        form="Architecture")  # fmt: skip
    hidden: tuple = setting((512, 512), "widths of the fully connected hidden layers, mirrored in the "
                            "decoder (conv: between the convolutions and z)", unit="units per layer",
                            low=1, high=65_536, form="Hidden sizes")  # fmt: skip
    channels: tuple = setting((32, 64, 128), "conv only: channels of each stride-2 convolution (each "
                              "halves height and width), mirrored in the decoder", unit="channels",
                              low=1, high=4096, form="Conv channels")  # fmt: skip
    activation: str = setting("relu", "the hidden layers' nonlinearity (the paper used tanh)",
                              choices=("relu", "tanh"), form="Activation")  # fmt: skip
    likelihood: str = setting(spec(DEFAULT_DATASET).likelihood,
                              "p(x|z): bernoulli (logits; binary or grey images), gaussian (mean and "
                              "learned variance per pixel, the paper's appendix C.2) or logistic (the "
                              "discretised logistic of 8-bit images, reported in bits per dimension); "
                              "default: the dataset's", choices=LIKELIHOODS,
                              labels=(("bernoulli", "Bernoulli"), ("gaussian", "Gaussian"),
                                      ("logistic", "Discretised logistic")),
                              form="Likelihood")  # fmt: skip
    image_shape: tuple = spec(DEFAULT_DATASET).image_shape  # (C, H, W) of the data: the dataset's
    gaussian_min_logvar: float = -8.0  # floor on the Gaussian decoder's log-variance (stability)
    extra: dict = field(default_factory=dict)  # free-form notes (not used by the network)

    def __post_init__(self) -> None:
        self.image_shape = tuple(int(s) for s in self.image_shape)
        self.hidden = tuple(int(h) if isinstance(h, (int, float)) else h for h in self.hidden)
        self.channels = tuple(int(c) if isinstance(c, (int, float)) else c for c in self.channels)
        _check(self)
        if len(self.image_shape) != 3 or min(self.image_shape) < 1:
            raise ValueError(f"image_shape must be (C, H, W) of positive sizes, got {self.image_shape}")
        smallest = min(self.image_shape[1:])
        if self.arch == "conv" and smallest >> len(self.channels) < 1:
            most, (_, h, w) = smallest.bit_length() - 1, self.image_shape
            raise ValueError(
                f"{len(self.channels)} stride-2 convolutions halve {smallest} pixels to nothing; "
                f"use at most {most} conv channel sizes for {h}x{w} images"
            )

    @property
    def variational(self) -> bool:
        """Whether the model has a posterior q(z|x) and a prior (a VAE), or is one of the
        deterministic autoencoders, which have neither: no KL term, no L_K, no ellipses."""
        return self.model == "vae"

    @property
    def pixels(self) -> int:
        c, h, w = self.image_shape
        return c * h * w

    def to_dict(self) -> dict:
        d = asdict(self)
        d["image_shape"], d["hidden"] = list(self.image_shape), list(self.hidden)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        known = {k: v for k, v in d.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)


@dataclass
class TrainConfig:
    """How a model is trained (Kingma & Welling's Algorithm 1 and its options); stored in the
    run's config.json."""

    dataset: str = setting(DEFAULT_DATASET, f"what to train on: {', '.join(DATASETS)}, or a folder of "
                           "images added with 'vae-explorer data add NAME PATH'", form="Dataset")  # fmt: skip
    epochs: int = setting(50, "passes over the (limited) training set, in all", unit="epochs", low=1,
                          high=1_000_000, resumable=True, form="Epochs")  # fmt: skip
    batch_size: int = setting(100, "M, images per minibatch (paper: 100)", unit="images", low=1,
                              high=65_536, form="Batch size M")  # fmt: skip
    samples: int = setting(1, "L draws of eps per image (K of the iwae objective)", unit="draws", low=1,
                           high=100_000, resumable=True, form="Samples L")  # fmt: skip
    objective: str = setting("elbo", "elbo (the VAE's bound) or iwae (the importance-weighted bound L_K "
                             "with K = samples)", choices=("elbo", "iwae"), resumable=True,
                             labels=(("elbo", "ELBO (VAE)"), ("iwae", "IWAE bound L_K, K = L")),
                             form="Objective")  # fmt: skip
    algorithm: str = setting("aevb", "how encoder and decoder are learnt: aevb (the paper's Algorithm 1, "
                             "one gradient of the SGVB estimate for both) or wake-sleep (Hinton et al. "
                             "1995: the decoder on log p(x|z) at z ~ q(z|x), the encoder on log q(z|x) "
                             "at dreamt (z, x) ~ p(z) p(x|z)); both report the same ELBO; or mcem "
                             "(Monte Carlo EM, the paper's Figure 3: no encoder, a Hybrid Monte Carlo "
                             "chain per training image, 5 decoder updates per minibatch)",
                             choices=ALGORITHMS,
                             labels=(("aevb", "AEVB (SGVB gradient)"), ("wake-sleep", "Wake-sleep"),
                                     ("mcem", "Monte Carlo EM (HMC)")),
                             form="Algorithm")  # fmt: skip
    init: str = setting("default", "a new model's weights: default (PyTorch's layer initialisation) or "
                        "paper (every weight and bias drawn from N(0, 0.01), standard deviation 0.01: "
                        "the paper's Section 5)", choices=INITS,
                        labels=(("default", "PyTorch's default"), ("paper", "The paper's N(0, 0.01)")),
                        form="Initialisation")  # fmt: skip
    estimator: str = setting("analytic", "SGVB estimator: analytic = B (analytic KL), mc = A (Monte "
                             "Carlo)", choices=("analytic", "mc"),
                             labels=(("analytic", "B: analytic KL"), ("mc", "A: Monte Carlo")),
                             form="Estimator")  # fmt: skip
    beta: float = setting(1.0, "weight on the KL term (1: the ELBO)", low=0.0, high=100.0,
                          form="Beta (KL weight)")  # fmt: skip
    optimizer: str = setting("adam", "the update rule", choices=("adam", "adagrad", "rmsprop", "sgd"),
                             form="Optimiser")  # fmt: skip
    lr: float = setting(1e-3, "learning rate", unit="per step, not scaled by M", low=1e-12,
                        resumable=True, form="Learning rate")  # fmt: skip
    weight_decay: float = setting(0.0, "L2 on all weights: the paper's prior on theta", low=0.0,
                                  form="Weight decay")  # fmt: skip
    corruption: str = setting("mask", "dae only: how the input is corrupted; mask sets a fraction of "
                              "the pixels to 0 (Vincent et al. 2008's masking noise), gaussian adds "
                              "N(0, level^2) to every pixel", choices=CORRUPTIONS,
                              labels=(("mask", "Masking noise"), ("gaussian", "Gaussian noise")),
                              form="DAE corruption")  # fmt: skip
    corruption_level: float = setting(0.25, "dae only: the fraction of pixels masked (below 1), or the "
                                      "Gaussian noise's standard deviation (pixels run 0 to 1)",
                                      low=0.0, high=10.0, form="DAE corruption level")  # fmt: skip
    binarize: str = setting("auto", "dynamic binarisation of every minibatch (auto: on for a Bernoulli "
                            "model of a binarised dataset, MNIST's likelihood protocol); none: grey "
                            "levels", choices=("auto", "dynamic", "none"))  # fmt: skip
    limit: int | None = setting(None, "train on the first N images only", unit="images", low=1,
                                optional=True, form="Training images (0 = all)")  # fmt: skip
    test_limit: int | None = setting(None, "evaluate on the first N test images only", unit="images",
                                     low=1, optional=True)  # fmt: skip
    seed: int = setting(0, "seeds initialisation, permutations, eps and binarisation")
    device: str = setting("auto", "auto (cuda, then mps, then cpu), cpu, cuda, cuda:N or mps",
                          resumable=True, form="Device")  # fmt: skip
    log_every: int = setting(100, "steps between metric lines", unit="steps", low=1)
    bound_points: int = setting(0, "evaluate the ELBO on a fixed subset of the training set and on the "
                                "test set at this many log-spaced counts of training samples per "
                                "decade (the x-axis of the paper's Figure 2); 0: only at epoch ends",
                                unit="points per decade", low=0, high=100)  # fmt: skip
    bound_estimator: str = setting("elbo", "what those points measure: elbo (the SGVB bound, one draw "
                                   "per image) or paper-hmc (the marginal likelihood by the paper's "
                                   "Appendix D estimator: HMC posterior samples; slow, for small "
                                   "latent spaces)", choices=BOUND_ESTIMATORS)  # fmt: skip
    bound_train_images: int = setting(10_000, "size of the fixed training subset those evaluations "
                                      "use (the first N training images, binarised once)",
                                      unit="images", low=1)  # fmt: skip
    eval_seed: int = setting(0, "seed of the test set's fixed binarisation")

    def __post_init__(self) -> None:
        _check(self)
        spec(self.dataset)  # a built-in dataset or an added folder (ValueError: the known ones)
        if self.objective == "iwae" and self.beta != 1.0:
            raise ValueError(
                f"the iwae objective has no KL weight: set beta to 1 (not {self.beta:g}) "
                "or use the elbo objective"
            )
        if self.corruption == "mask" and self.corruption_level >= 1:
            raise ValueError(
                f"masking noise hides a fraction of the pixels: its level must be below 1, not "
                f"{self.corruption_level:g}"
            )
        if self.algorithm != "aevb" and (self.objective != "elbo" or self.samples != 1):
            raise ValueError(
                f"--algorithm {self.algorithm} does not train on an SGVB bound with L draws: use "
                "--objective elbo --samples 1 with it"
            )
        if self.algorithm != "aevb" and self.beta != 1.0:
            raise ValueError(
                f"--algorithm {self.algorithm} has no KL weight: set --beta 1 (not {self.beta:g}), "
                "or use --algorithm aevb"
            )
        check_device_name(self.device)

    def binarized(self, likelihood: str) -> bool:
        """Whether training binarises each minibatch (and evaluation the test set, once)."""
        if self.binarize == "auto":
            return binarized(self.dataset, likelihood)
        return self.binarize == "dynamic"


MODEL_SETTINGS = settings(ModelConfig)
TRAIN_SETTINGS = settings(TrainConfig)
RESUMABLE = tuple(s.name for s in TRAIN_SETTINGS if s.resumable)  # what --resume may change
# Every model setting: what --init-from takes from its checkpoint (none may be given with it).
ARCHITECTURE_SETTINGS = tuple(s.name for s in MODEL_SETTINGS)


def check_combination(model: ModelConfig, train: TrainConfig) -> None:
    """Refuse settings that mean nothing for this kind of model, rather than ignore them: the
    variational ones (objective, beta, samples, estimator) for the deterministic autoencoders, and
    the corruption for anything but a denoising autoencoder.

    Raises:
        ValueError: which setting does not apply, and what to do.
    """
    defaults = {s.name: s.default for s in TRAIN_SETTINGS}
    changed = [n for n in ("objective", "beta", "samples", "estimator") if getattr(train, n) != defaults[n]]
    if not model.variational and changed:
        flags = ", ".join("--" + n for n in changed)
        raise ValueError(
            f"{'an' if model.model == 'ae' else 'a denoising'} autoencoder has no posterior and no KL term, "
            f"so {flags} do{'es' if len(changed) == 1 else ''} not apply to it: leave "
            f"{'it' if len(changed) == 1 else 'them'} at the default, or train --model vae"
        )
    if train.algorithm != "aevb" and not model.variational:
        raise ValueError(
            f"--algorithm {train.algorithm} learns a recognition model q(z|x) beside the decoder: "
            f"use it with --model vae, not --model {model.model}"
        )
    if train.algorithm == "wake-sleep" and model.likelihood not in ("bernoulli", "gaussian"):
        raise ValueError(
            f"wake-sleep's sleep phase draws images from p(x|z): it is written for the bernoulli and "
            f"gaussian likelihoods, not {model.likelihood}; use --likelihood bernoulli or gaussian"
        )
    corrupted = [n for n in ("corruption", "corruption_level") if getattr(train, n) != defaults[n]]
    if model.model != "dae" and corrupted:
        raise ValueError(
            f"--{corrupted[0].replace('_', '-')} sets the denoising autoencoder's corruption: "
            f"use it with --model dae, not --model {model.model}"
        )
