"""A run's config: where the Hydra configs live (`paths`), composing one in code (`compose`), and
the one check of its values (`validate`)."""
