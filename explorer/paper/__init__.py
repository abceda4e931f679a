"""The paper's own experiments, reproduced (Kingma & Welling 2013, Section 5).

``figure2``: AEVB against the wake-sleep algorithm, the lower bound against training samples
evaluated, for each latent size, on the paper's settings. ``curves``: the curves of those runs,
shipped and the user's, as plain lists. For Figure 3 (Appendices D and E): ``hmc``, Hybrid Monte
Carlo over per-datapoint posteriors; ``marginal``, the Appendix D marginal-likelihood estimator;
``mcem``, Monte Carlo EM and its chains.
"""
