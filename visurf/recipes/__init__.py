"""Recipes: what visurf builds by training. `run` is one post-training run; `base_model` is the
embedded base model (an SFT run of the tiny model on the synthetic world's known concepts).

The model layer (`visurf.models`) only loads; anything that has to be trained first is made here,
before the model layer is asked for it.
"""
