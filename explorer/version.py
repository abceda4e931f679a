"""VAE Explorer's version, in a module of its own so that no module needs the package root."""

__version__ = "0.2.0"
