"""Exploring a trained model: latent maps (``latent``), q(z|x) of single images (``posterior``),
the aggregate posterior against the prior (``density``), t-SNE and UMAP (``projections``),
nearest neighbours, traversals, the stranger score (``strangers``) and the TensorBoard export."""
