"""The Home page's model card: what a model is, how it was trained and what it measures, from its
card.json (``explorer.cards.Card``: the one reader of that file) or its run's record; this module
only formats it."""

from __future__ import annotations

import math

from explorer.cards import Card, Measured
from explorer.evaluate import bits_per_dim
from explorer.ui.models import folder_of


def _count(n: int | None) -> str:
    """A card's count as people write it (10,000), or "?" where the card has none."""
    return f"{n:,}" if n is not None else "?"


def _fid(card: Card) -> tuple[float, str, str] | None:
    """(FID, its label naming the features, a note) from a card's sample quality, or None."""
    fid = card.sample_quality
    if fid is None:
        return None
    note = f"FID of {fid.generated} against {fid.real}, in the features of the {fid.feature_source}"
    if fid.floor is not None:
        note += f"; the test set against the training set scores {fid.floor:.2f}"
    if fid.features == "classifier":
        note += ". Not comparable with the Inception FID of papers."
    return fid.value, f"FID ({fid.features} features)", note


def _evidence(card: Card) -> str | None:
    """The identity's figures on the card (a 2-D latent model's), as one line, or None."""
    ev = card.evidence
    if ev is None:
        return None
    median = f" (median {ev.median_gap:.3f})" if ev.median_gap is not None else ""
    residual = f"; ELBO + KL meets log p(x) within {ev.residual:.3f} nats" if ev.residual is not None else ""
    return (
        f"On its first {ev.n:,} test images, log p(x) by quadrature against L_5000: "
        f"{ev.mean_gap:.2f} nats apart on average{median}; KL(q(z|x) ‖ p(z|x)), the ELBO's gap to "
        f"log p(x): {ev.mean_kl:.2f} nats on average{residual}. See the Theory page's identity."
    )


def _measured(card: Card, ev: Measured) -> dict:
    """The headline figures of a card's evaluation, with the note that says how they were had."""
    trained = (
        f"Trained for {card.epochs if card.epochs is not None else '?'} epochs on {card.machine or '?'}."
    )
    if ev.elbo is None and ev.recon is not None:  # an autoencoder's card
        note = f"Measured on {_count(ev.n)} test images. {trained}"
        return {"elbo": None, "nll": None, "recon": ev.recon, "nll_label": "", "note": note}
    note = (
        f"Measured on {_count(ev.n)} test images; NLL with K = {_count(ev.k)} importance samples. {trained}"
    )
    if card.target_nll is not None and ev.nll is not None:
        gap = ev.nll - card.target_nll
        verdict = "met" if gap <= 0 else f"not met, {gap:.1f} nats short"
        note += f" Target: NLL <= {card.target_nll:g} nats ({verdict})."
    if ev.binarized is False and ev.likelihood == "bernoulli":
        note += (
            " A Bernoulli decoder of grey or colour levels (cross-entropy): its NLL is a score "
            "to compare models by, not a normalised likelihood of the images."
        )
    return {"elbo": ev.elbo, "nll": ev.nll, "nll_label": f"Test NLL, K={ev.k} (nats)", "note": note}


def _from_training(config: dict, folder) -> dict:
    """A run's headline figures without a card: the test figure its training measured at the
    epoch of the saved weights (its metrics' row of that epoch; the run's best figure, said so,
    where the rows do not reach it: the best epoch's figure is not the saved model's)."""
    epoch = config.get("epoch", "?")
    if (config.get("train") or {}).get("algorithm") == "mcem":
        return _mcem_figures(folder)
    variational = (config.get("model") or {}).get("model", "vae") == "vae"
    key = "test_elbo" if variational else "test_recon"
    rows = [r for r in _metrics(folder) if r.get("type") == "epoch" and r.get("epoch") == epoch and key in r]
    figure = rows[-1][key] if rows else config.get("best_test_elbo")
    when = (
        f"at epoch {epoch}, the saved model's"
        if rows
        else f"best during training (the model saved after {epoch} epoch{'' if epoch == 1 else 's'})"
    )
    if not variational:  # an autoencoder's figure is its reconstruction term
        note = f"Test log p(x|z) (the reconstruction term) {when}; an autoencoder has no ELBO or NLL."
        return {"elbo": None, "nll": None, "recon": figure, "note": note}
    note = (
        f"Test ELBO {when}, measured in training. Run `vae-explorer evaluate` for the importance-sampled NLL."
    )
    return {"elbo": figure, "nll": None, "nll_label": "Test NLL (nats)", "note": note}


def _mcem_figures(folder) -> dict:
    """A Monte Carlo EM run's headline figure: no ELBO (its encoder was never trained), the test
    NLL by the paper's Appendix D estimator at its last bound point, where it has one."""
    bound = [r for r in _metrics(folder) if r.get("type") == "bound" and r.get("test_bound") is not None]
    if not bound:
        note = ("Monte Carlo EM learns the decoder alone: no ELBO (its encoder was never trained). Its "
                "log-likelihood: vae-explorer evaluate RUN --estimator paper-hmc.")  # fmt: skip
        return {"elbo": None, "nll": None, "nll_label": "Test NLL (nats)", "note": note}
    last = bound[-1]
    note = (f"Monte Carlo EM learns the decoder alone: no ELBO (its encoder was never trained). Test NLL "
            f"by the paper's Appendix D estimator (HMC) at {last.get('samples', 0):,} training samples, "
            "the run's last bound point.")  # fmt: skip
    label = "Test NLL, Appendix D (nats)"
    return {"elbo": None, "nll": -last["test_bound"], "nll_label": label, "note": note}


def _metrics(folder) -> list[dict]:
    """The run's metrics rows, or none (a shipped model, an unreadable file)."""
    from explorer.train.runfolder import RunFolder

    try:
        return RunFolder(folder).read_metrics()
    except (OSError, ValueError):
        return []


def model_card(choice: str, config: dict) -> dict:
    """Headline figures for the Home page, formatted from the model's ``Card`` (shipped models,
    measured by ``vae-explorer evaluate``) or from the run's own record (test ELBO during
    training)."""
    card = Card.find(folder_of(choice))
    evaluation = card.evaluation if card is not None else None
    out = {"fid": None, "evidence": None, "recon": None, "nll_label": "Test NLL (nats)"}
    if evaluation is not None:
        out.update(_measured(card, evaluation), fid=_fid(card), evidence=_evidence(card))
    else:
        out.update(_from_training(config, folder_of(choice)))
    model = config.get("model") or {}
    if model.get("model", "vae") != "vae":  # an autoencoder: no ELBO, no NLL, no bits/dim
        return {
            **out,
            "elbo": None,
            "nll": None,
            "recon": out["recon"] if out["recon"] is not None else out["elbo"],
        }
    bits = (
        None
        if out["elbo"] is None
        else config_bits_per_dim(model, out["nll"] if out["nll"] is not None else -out["elbo"])
    )
    if bits is not None:  # colour and grey-level data: bits/dim
        out["bits_per_dim"] = bits
        out["bits_label"] = "Test NLL (bits/dim)" if out["nll"] is not None else "Test -ELBO (bits/dim)"
    return out


def config_bits_per_dim(model: dict, nats: float) -> float | None:
    """``nats`` per image of the model a config's ``model`` section describes, in bits per
    dimension, for a decoder of grey levels or colour (logistic or Gaussian:
    ``evaluate.bits_per_dim``); None for a Bernoulli one, whose figure stays in nats as the
    paper's."""
    likelihood = model.get("likelihood", "bernoulli")
    if likelihood == "bernoulli":
        return None
    return bits_per_dim(nats, math.prod(model.get("image_shape") or (1, 28, 28)), likelihood, False)
