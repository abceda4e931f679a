"""Estimators of the marginal likelihood log p(x) of a trained model: the importance-weighted
bound L_K, blocked to stay in cache (``importance``; Burda et al. 2015), Hamiltonian Monte Carlo
chains per datapoint on the posterior p(z|x) (``hmc``; Neal 2011), and the paper's own estimator
from those chains (``marginal``; Kingma & Welling 2013, Appendix D)."""
