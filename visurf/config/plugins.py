"""A user's own components, without touching the package: `plugins=[my_reward.py]`.

Each entry is a Python file or an importable module name. It is imported before the config is
checked, so what it registers (a reward, a reward-control strategy, an advantage estimator, a
stage kind) is a name the rest of the config may use. docs/extending.md has worked examples.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
from pathlib import Path


class PluginError(ValueError):
    pass


def load_plugins(entries) -> list:
    """Import every entry (a `.py` path or a module name); the modules, in order."""
    modules = []
    for entry in list(entries or []):
        entry = str(entry)
        try:
            modules.append(_import(entry))
        except Exception as err:  # anything a user's file raises names the file
            raise PluginError(
                f"plugins: {entry!r} could not be imported: {type(err).__name__}: {err}"
            ) from err
    return modules


def _import(entry: str):
    if not entry.endswith(".py"):
        return importlib.import_module(entry)
    path = Path(entry).expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"no such file {path}")
    name = f"visurf_plugin_{path.stem}"
    if name in sys.modules and getattr(sys.modules[name], "__file__", None) == str(path):
        return sys.modules[name]  # imported already (a multirun's later runs)
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module
