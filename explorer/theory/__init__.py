"""The theory behind AEVB as live, checked experiments (the Theory page's library, no Streamlit).

One module per idea, in the order the teaching deck walks them:

- ``mixtures``: EM for a Gaussian mixture (Bishop 2006, section 9.2) and CAVI for the Bayesian
  mixture of Gaussians (Blei, Kucukelbir & McAuliffe 2017, section 3);
- ``divergences``: KL's two directions, a Gaussian fitted to a bimodal target (Bishop 2006,
  section 10.1.2, Figure 10.3);
- ``mean_field``: the factorised q of a correlated 2-D Gaussian and its shrunken variances
  (Bishop 2006, section 10.1.2, Figure 10.2);
- ``evidence``: log p(x) = ELBO + KL(q(z|x) || p(z|x)) on a trained VAE, and the importance-weighted
  bounds L_K (Burda et al. 2015) from ``bounds``; ``budget``: work sized to the page's time;
- ``gradients``: why reparameterise: gradient variance of the pathwise and score-function
  estimators, and SGVB estimator A against B (Kingma & Welling 2013, sections 2.2-2.3);
- ``figures``: their plotly figures.

Nothing here is imported by the package root except ``evidence`` (lazily, see ``explorer/__init__``).
"""
