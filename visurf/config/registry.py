"""Name -> component registries: how a config names a reward, a stage kind, a reward-control
strategy or an advantage estimator, and how a user adds one without touching the package.

    STAGES = Registry("stage kind")

    @STAGES.register("policy")
    class PolicyStage: ...

    STAGES.get("policy")  # the class; an unknown name is an error listing the registered ones
"""

from __future__ import annotations

from collections.abc import Callable, Iterator


class UnknownNameError(KeyError, ValueError):
    """An unregistered name; a KeyError for lookups and a ValueError for config checks."""

    def __str__(self) -> str:
        # KeyError would otherwise print the repr of the message, quotes and all.
        return str(self.args[0]) if self.args else ""


class Registry:
    """Components of one kind by name, in registration order."""

    def __init__(self, what: str):
        self.what = what  # e.g. "reward", named in errors
        self._items: dict[str, object] = {}

    def register(self, name: str) -> Callable:
        """Decorator: register a class or function under `name` (a class also gets `cls.name`)."""

        def decorate(item):
            old = self._items.get(name)
            if old is not None and old is not item and _definition(old) != _definition(item):
                raise ValueError(f"{self.what} {name!r} is already registered to {old!r}")
            self._items[name] = item
            if isinstance(item, type):
                item.name = name
            return item

        return decorate

    def get(self, name: str):
        if name not in self._items:
            known = ", ".join(self._items) or "(none)"
            raise UnknownNameError(f"unknown {self.what} {name!r}; registered: {known}")
        return self._items[name]

    def remove(self, name: str) -> None:
        """Forget `name` (a test's or a notebook's own component, registered for a while)."""
        self._items.pop(name, None)

    def names(self) -> list[str]:
        return list(self._items)

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)


def _definition(item) -> tuple:
    """Where an item is defined: a file run again (a reloaded script, or one imported under a
    second name) registers its own anew."""
    import inspect

    try:
        where = inspect.getfile(item)
    except TypeError:  # a built-in or an instance: its module stands for its file
        where = getattr(item, "__module__", None)
    return (where, getattr(item, "__qualname__", None))
