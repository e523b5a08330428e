"""Entry point: `python -m visurf.run objective=visurf reward_control=all` (Hydra).

Works from any working directory: the config directory is found next to the package.
"""

from __future__ import annotations

import sys

import hydra
from hydra.core.hydra_config import HydraConfig

from visurf.naming import register_resolvers
from visurf.paths import CONF_DIR

register_resolvers()  # ${visurf.run_name:} in the run and sweep directories


@hydra.main(version_base=None, config_path=str(CONF_DIR), config_name="config")
def main(cfg) -> None:
    from visurf.checkpoints import ResumeError
    from visurf.config import ConfigError
    from visurf.data.errors import DataError
    from visurf.logs import quiet_libraries
    from visurf.recipes.run import fit, run_dir_for
    from visurf.train import IncompleteRunError

    quiet_libraries()  # after Hydra's logging setup: it removes Lightning's second console handler

    try:
        fit(cfg, run_dir_for(cfg, HydraConfig.get().runtime.output_dir))
    except (ConfigError, ResumeError, DataError, FileNotFoundError) as err:
        print(f"visurf: {err}", file=sys.stderr)  # one line, no traceback: the input is at fault
        sys.exit(2)
    except IncompleteRunError as err:
        print(f"visurf: {err}", file=sys.stderr)
        sys.exit(3)


if __name__ == "__main__":
    main()
