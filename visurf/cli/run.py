"""`python -m visurf.run objective=visurf reward_control=all`: one post-training run (Hydra).

Works from any working directory: the config directory is found next to the package. Errors in
the input end it with one `visurf:` line and status 2 (`visurf.cli.args`).
"""

from __future__ import annotations

import hydra
from hydra.core.hydra_config import HydraConfig

from visurf.cli.args import reported
from visurf.config.paths import CONF_DIR
from visurf.runs.naming import register_resolvers

register_resolvers()  # ${visurf.run_name:} in the run and sweep directories


@hydra.main(version_base=None, config_path=str(CONF_DIR), config_name="config")
def main(cfg) -> None:
    from visurf.recipes.post_train import post_train
    from visurf.recipes.train import run_dir_for
    from visurf.training.console import quiet_libraries

    quiet_libraries()  # after Hydra's logging setup: it removes Lightning's second console handler
    with reported("visurf"):
        post_train(cfg, run_dir_for(cfg, HydraConfig.get().runtime.output_dir))
