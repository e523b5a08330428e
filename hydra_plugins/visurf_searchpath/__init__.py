"""Adds `experiments/conf` to Hydra's search path, so `experiment=pocket` finds the presets kept there."""

from hydra.core.config_search_path import ConfigSearchPath
from hydra.plugins.search_path_plugin import SearchPathPlugin


class VisurfSearchPathPlugin(SearchPathPlugin):
    def manipulate_search_path(self, search_path: ConfigSearchPath) -> None:
        from visurf.config.paths import EXPERIMENTS_DIR

        if (EXPERIMENTS_DIR / "conf").is_dir():
            search_path.append(provider="visurf-experiments", path=f"file://{EXPERIMENTS_DIR / 'conf'}")
