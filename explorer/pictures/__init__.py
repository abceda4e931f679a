"""Pictures in and out: reading a user's file (``reading``), preparing drawings and photographs as
the dataset prepared its own (``preprocess``, ``photos``), PNG and GIF (``images``) and every
plotly figure (``plots``, ``latent_plots``)."""
