"""The Train page's form: one widget per setting that ``explorer.config`` puts on the form, with
the setting's label, default, bounds, choices and help; the checks are the configs' own, and the
answer is the ``vae-explorer train`` command line the job runs. A setting added to the configs
with a form label appears here by itself."""

from __future__ import annotations

import time

import streamlit as st
import torch

from explorer.checkpoints import dataset_of, read_config
from explorer.config import (
    DEVICE_CHOICES,
    MODEL_SETTINGS,
    TRAIN_SETTINGS,
    ModelConfig,
    Setting,
    TrainConfig,
    check_combination,
)
from explorer.data.specs import all_datasets, spec
from explorer.errors import ExplorerError
from explorer.ui.models import RUN_PREFIX, folder_of

NEW_MODEL = "a new model"
LOG_EVERY = 20  # steps per metrics line for runs started here: the live curves move often
COLUMNS = 4


def widget_key(name: str) -> str:
    """The form widget of setting ``name`` (tests find widgets by it)."""
    return f"setting-{name}"


RUN_NAME = "run-name"  # the run name's widget key
DATASETS_OWN = "the dataset's"  # the Likelihood choice that defers to the dataset's DatasetSpec
# Chosen above the form, so that choosing them at once enables the fields that apply (the form
# itself reruns only on Start): setting name -> the settings that apply only with this value.
# The choices drawn above the form (a form's widgets cannot react to each other before Start), in
# this order, and the settings each value uses (USES: a setting listed there is disabled unless its
# choice has one of the values, and the run gets its default): wake-sleep and Monte Carlo EM train
# on no SGVB bound, and an autoencoder has no KL term (no objective, L, estimator or KL weight),
# nor an algorithm other than gradient descent on its loss.
ABOVE_FORM = ("model", "arch", "algorithm")
SGVB = ("objective", "samples", "estimator", "beta")
USES = (
    ("model", ("dae",), ("corruption", "corruption_level")),
    ("model", ("vae",), (*SGVB, "algorithm")),
    ("arch", ("conv",), ("channels",)),
    ("algorithm", ("aevb",), SGVB),
)


def unused(chosen: dict) -> set[str]:
    """The settings that do nothing with the ``chosen`` values of ABOVE_FORM (see USES)."""
    return {
        name for key, values, names in USES if key in chosen and chosen[key] not in values for name in names
    }


def run_started() -> None:
    """Call once a run has started: the page reruns at once and the form suggests a fresh name.
    (Only then: a Start that was refused keeps the name the user typed. And only on a rerun of
    our own: a widget's state cannot change once it is drawn, and changing it at the start of
    the user's next submit would drop what they typed meanwhile.)"""
    st.session_state["new-run-name"] = True
    st.rerun()


def start_point(models: list[str]) -> tuple[str, dict] | None:
    """The "Start from" choice above the form: None for a new model, or (the model's name or
    folder for --init-from, its config.json). Outside the form, so that choosing a model at once
    shows its architecture in the form."""
    choice = st.selectbox(
        "Start from",
        [NEW_MODEL, *models],
        key="start-from",
        help="Fine-tune a shipped model or one of your runs: the new run starts from its weights "
        "and takes its architecture and dataset, with a fresh optimiser. (To continue a stopped "
        "or finished run with its own optimiser state, choose it under Run below and press Resume.)",
    )
    if st.session_state.get("start-choice") != choice:
        # Another start point: its architecture and recipe replace what the form showed (widgets
        # with a key would otherwise keep their values).
        for key in [k for k in st.session_state if str(k).startswith(widget_key(""))]:
            del st.session_state[key]
        st.session_state["start-choice"] = choice
    if choice == NEW_MODEL:
        return None
    folder = folder_of(choice)
    try:
        config = read_config(folder)
        arch, dataset = config["model"], dataset_of(config)
    except (ExplorerError, KeyError, TypeError) as exc:
        st.error(f"Cannot start from {choice!r}: {exc}. Pick another model, or a new one.")
        return None
    if dataset not in all_datasets():
        st.error(f"Cannot start from {choice!r}: it was trained on {dataset!r}, which this app cannot load.")
        return None
    st.caption(
        f"Starting from the weights of **{choice}**: {dataset}, latent size {arch['latent_dim']}, "
        f"hidden {','.join(map(str, arch['hidden']))}, {arch['activation']}. The training settings "
        "below start as the ones it was trained with; change them as you like."
    )
    # A shipped model by its name (its lineage reads "mnist-z2"), a run by its folder.
    return (str(folder) if choice.startswith(RUN_PREFIX) else choice), config


def _options(s: Setting) -> list | None:
    """The choices of a setting shown as a select box, or None for a typed value."""
    if not (s.choices or s.name in ("device", "dataset")):
        return None
    options = list(s.choices or (DEVICE_CHOICES if s.name == "device" else all_datasets()))
    return [DATASETS_OWN, *options] if s.name == "likelihood" else options


def _shown(s: Setting, value, options: list | None):
    """``value`` as the setting's widget holds it."""
    if options is not None:
        return value if value in options else options[0]
    if s.kind is tuple:
        return ",".join(map(str, value))
    return int(value or 0) if s.kind is int else float(value)


def _widget(column, s: Setting, value, disabled: bool):
    """The widget of one setting, starting at ``value``; returns what the user set. The start
    goes through the session state (not the widget's default), so that a new start point's
    values reach the browser (a keyed widget ignores a changed default)."""
    key, options = widget_key(s.name), _options(s)
    if key not in st.session_state or (options is not None and st.session_state[key] not in options):
        st.session_state[key] = _shown(s, value, options)
    common = {"key": key, "help": s.help + (f" ({s.unit})" if s.unit else ""), "disabled": disabled}
    if options is not None:
        words = {**dict(s.labels), DATASETS_OWN: _datasets_own()}
        return column.selectbox(s.form, options, format_func=lambda o: words.get(o, str(o)), **common)
    if s.kind is tuple:
        return column.text_input(s.form, **common)
    if s.kind is int:
        low = 0 if s.optional else int(s.low or 0)  # an optional count: 0 means all
        high = int(s.high) if s.high is not None else None
        return column.number_input(s.form, low, high, step=1, **common)
    high = float(s.high) if s.high is not None else None
    return column.number_input(s.form, float(s.low or 0.0), high, format="%.6g", **common)


def _datasets_own() -> str:
    """The Likelihood choice that defers to the dataset, naming what that is for the dataset the
    form holds (a choice reading "Choose an option" looked like an empty required field)."""
    default = next(s.default for s in TRAIN_SETTINGS if s.name == "dataset")
    dataset = st.session_state.get(widget_key("dataset")) or default
    try:
        return f"{DATASETS_OWN} ({spec(dataset).likelihood})" if dataset else DATASETS_OWN
    except (KeyError, ExplorerError, ValueError):
        return DATASETS_OWN


def _above_form(fixed: bool, arch: dict, recipe: dict) -> dict:
    """The settings of ABOVE_FORM (model kind, architecture, algorithm), drawn above the form;
    returns {setting name: value}. Starting from a model fixes its kind and architecture, not how
    it goes on being trained; an autoencoder's algorithm is fixed (see USES)."""
    by_name = {s.name: s for s in (*MODEL_SETTINGS, *TRAIN_SETTINGS)}
    columns = st.columns(COLUMNS)
    values: dict = {}
    for i, name in enumerate(ABOVE_FORM):
        s = by_name[name]
        is_model = s in MODEL_SETTINGS
        off = name in unused(values)
        if off:  # shown at its default, which the run gets
            st.session_state[widget_key(name)] = _shown(s, s.default, _options(s))
        start = (arch if is_model else recipe).get(name, s.default)
        values[name] = _widget(columns[i], s, start, (fixed and is_model) or off)
    return values


# The form's fields in the order a person fills them: what to learn from, the model, how to train
# it. Drawn in rows of COLUMNS, each group under its name: on a phone Streamlit stacks each row's
# columns in turn, so the fields read in this order there too (dealt across four columns, a
# phone read the first column down, then the second: Latent size, Likelihood, Samples L, ...).
GROUPS = (
    ("Data", ("dataset", "limit", "corruption", "corruption_level")),
    ("Model", ("latent_dim", "hidden", "channels", "activation", "likelihood", "init")),
    ("Training", ("epochs", "batch_size", "optimizer", "lr", "objective", "estimator", "samples", "beta",
                  "weight_decay", "device")),
)  # fmt: skip


def _grouped(shown: list[Setting]) -> list[tuple[str, list[Setting]]]:
    """``shown`` in GROUPS' order, each group with its settings; any setting GROUPS does not name
    goes last under "Training" (a new setting given a form label still shows)."""
    by_name = {s.name: s for s in shown}
    groups = [(title, [by_name.pop(n) for n in names if n in by_name]) for title, names in GROUPS]
    groups[-1][1].extend(by_name.values())
    return [(title, settings) for title, settings in groups if settings]


def _values(fixed: bool, arch: dict, recipe: dict, above: dict) -> dict:
    """The form's widgets, grouped (GROUPS) in rows of four; returns {setting name: value} (with
    ``above``, the values chosen above the form). A setting that does nothing with the model kind
    or architecture chosen (conv channels for an MLP, the corruption of a plain VAE) is disabled."""
    shown = [s for s in (*MODEL_SETTINGS, *TRAIN_SETTINGS) if s.form and s.name not in ABOVE_FORM]
    # Starting from a model, its weights replace any initialisation: that field is off as well.
    off_here = unused(above) | ({"init"} if fixed else set())
    values = dict(above)
    places = []  # (the column of each setting's widget, the setting), in reading order
    for title, settings in _grouped(shown):
        st.markdown(f"**{title}**")
        for row in range(0, len(settings), COLUMNS):
            places += zip(st.columns(COLUMNS), settings[row : row + COLUMNS])
    for column, s in places:
        is_model = s in MODEL_SETTINGS
        start = (arch if is_model else recipe).get(s.name, s.default)
        if s.name in ("epochs", "device", "limit"):
            start = s.default  # how long and where: a new choice every run, not the parent's
        if s.name == "likelihood" and not fixed:
            start = DATASETS_OWN  # a new model: the likelihood of whichever dataset is chosen
        if s.name in off_here:  # shown at its default, which the run gets (see USES)
            st.session_state[widget_key(s.name)] = _shown(s, s.default, _options(s))
        off = (fixed and (is_model or s.name == "dataset")) or s.name in off_here
        values[s.name] = _widget(column, s, start, off)
    return values


def _configs(values: dict) -> tuple[ModelConfig, TrainConfig]:
    """The configs the form's values make (their own checks: ValueError with the reasons)."""
    model = {s.name: values[s.name] for s in MODEL_SETTINGS if s.form}
    for s in MODEL_SETTINGS:
        if s.kind is tuple and isinstance(model.get(s.name), str):
            model[s.name] = _widths(s, model[s.name])
    train = {s.name: values[s.name] for s in TRAIN_SETTINGS if s.form}
    train["limit"] = train.get("limit") or None
    described = spec(train["dataset"])
    if model.get("likelihood") in (None, DATASETS_OWN):
        model["likelihood"] = described.likelihood
    # The configs' own checks and the rules between them (a beta for an autoencoder, Monte Carlo
    # EM with L draws): said now, not when the run fails, and in the form's words.
    try:
        configs = ModelConfig(**model, image_shape=described.image_shape), TrainConfig(**train)
        check_combination(*configs)
    except ValueError as exc:
        raise ValueError(in_form_words(str(exc))) from None
    return configs


VALUE_END = ",.;:)"  # punctuation that may follow a flag or its value in a message


def in_form_words(message: str) -> str:
    """A refusal written for the command line in the Train form's words: each flag of a setting
    on the form becomes its label, a value after it the words its widget shows (``--objective
    elbo --samples 1`` -> ``Objective "ELBO (VAE)" and Samples L "1"``; a bare flag, ``--beta``,
    its label in quotes), ``or`` another choice of the same setting its words too. Flags of
    settings not on the form are left as they are."""
    by_flag = {s.flag: s for s in (*MODEL_SETTINGS, *TRAIN_SETTINGS) if s.form}
    words = message.replace("train --model vae", "choose --model vae").split(" ")
    out: list[str] = []
    joined = False  # the last word was a flag with nothing after it: a flag next to it is joined
    i = 0
    while i < len(words):
        core = words[i].rstrip(VALUE_END)
        s = by_flag.get(core)
        if s is None:
            out.append(words[i])
            joined, i = False, i + 1
            continue
        tail, said = words[i][len(core) :], f'"{s.form}"'
        if not tail and i + 1 < len(words) and _value_words(s, words[i + 1].rstrip(VALUE_END)):
            i += 1
            value = words[i].rstrip(VALUE_END)
            tail, said = words[i][len(value) :], f'{s.form} "{_value_words(s, value)}"'
            while not tail and words[i + 1 : i + 2] == ["or"] and _value_words(s, _word(words, i + 2)):
                i += 2
                other = words[i].rstrip(VALUE_END)
                said += f' or "{_value_words(s, other)}"'
                tail = words[i][len(other) :]
        out += ["and", said + tail] if joined else [said + tail]
        joined, i = not tail, i + 1
    return " ".join(out)


def _word(words: list[str], i: int) -> str:
    return words[i].rstrip(VALUE_END) if i < len(words) else ""


def _value_words(s: Setting, value: str) -> str | None:
    """How the form shows ``value`` of setting ``s``: a choice's words, a number as it is; None
    when ``value`` is not one (the next word of the sentence)."""
    if s.choices:
        return dict(s.labels).get(value, value) if value in s.choices else None
    if s.kind in (int, float):
        try:
            float(value)
        except ValueError:
            return None
        return value
    return None


def _widths(s: Setting, text: str) -> tuple[int, ...]:
    """'512,512' -> (512, 512). Raises ValueError naming the setting for anything else (an empty
    width such as '32,,32' included)."""
    parts = text.replace(" ", "").split(",")
    if not all(p.isdigit() and int(p) > 0 for p in parts):
        what = s.form.lower() if s.form else s.name
        example = ",".join(map(str, s.default))
        raise ValueError(f"{what} must be positive whole numbers like {example}, not {text!r}")
    return tuple(int(p) for p in parts)


def _arguments(model: ModelConfig, train: TrainConfig, values: dict, start) -> list[str]:
    """The command line of the form's settings (all of them, said explicitly)."""
    args = []
    settings = [s for s in TRAIN_SETTINGS if s.form] + (
        [] if start else [s for s in MODEL_SETTINGS if s.form]
    )
    for s in settings:
        value = getattr(model if s in MODEL_SETTINGS else train, s.name)
        if s.name == "likelihood" and values.get("likelihood") in (None, DATASETS_OWN):
            continue  # the dataset's, as the CLI would choose
        if value is not None:
            args += [
                s.flag,
                ",".join(map(str, value))
                if s.kind is tuple
                else repr(value)
                if s.kind is float
                else str(value),
            ]
    if start:
        args += ["--init-from", start[0]]
    return [*args, "--log-every", str(LOG_EVERY)]


def train_form(start: tuple[str, dict] | None = None) -> tuple[str, list[str]] | None:
    """The Train page's settings form; returns (run name, CLI arguments) when Start is pressed.
    With ``start`` (from :func:`start_point`) the run fine-tunes that model: its dataset and
    architecture are shown, fixed, and the arguments carry --init-from instead."""
    fixed = start is not None
    arch = start[1]["model"] if fixed else {}
    recipe = {**(start[1].get("train") or {}), "dataset": dataset_of(start[1])} if fixed else {}
    above = _above_form(fixed, arch, recipe)
    with st.form("train_form", border=True, enter_to_submit=False):  # Enter in a field must not start a run
        values = _values(fixed, arch, recipe, above)
        # A name is suggested once per session and after each start (see run_started).
        if st.session_state.pop("new-run-name", False) or RUN_NAME not in st.session_state:
            st.session_state[RUN_NAME] = f"run-{time.strftime('%m%d-%H%M%S')}"
        a, b = st.columns(2)
        name = a.text_input("Run name", help="the folder runs/NAME", key=RUN_NAME)
        gpus = torch.cuda.device_count()
        processes = 1
        if gpus > 1:
            processes = b.number_input(
                "Processes (GPUs)",
                1,
                gpus,
                1,
                key="processes",
                help="DistributedDataParallel: one process per GPU, each on its share of every batch",
            )
        started = st.form_submit_button("Start training", type="primary", key="start-training")
    if not started:
        return None
    try:
        model, train = _configs(values)
    except ValueError as exc:
        st.error(f"These settings cannot train: {exc}.")
        return None
    if train.batch_size % processes:
        st.error(
            f"Batch size {train.batch_size} does not split over {processes} processes; "
            f"use a multiple of {processes}."
        )
        return None
    args = _arguments(model, train, values, start)
    return name.strip(), args + (["--nproc", str(processes)] if processes > 1 else [])
