"""Name -> reward class registry, so new reward functions plug in without touching callers."""

REWARDS: dict[str, type] = {}


class UnknownRewardError(KeyError, ValueError):
    """Raised for an unregistered name; both a KeyError (lookup) and a ValueError (bad config)."""

    def __str__(self) -> str:
        # KeyError would otherwise print the repr of the message, quotes and all.
        return str(self.args[0]) if self.args else ""


def register_reward(name: str):
    """Class decorator: register a reward class under `name` (and record it as `cls.name`)."""

    def decorate(cls: type) -> type:
        if name in REWARDS and REWARDS[name] is not cls:
            raise ValueError(f"reward {name!r} is already registered to {REWARDS[name].__name__}")
        REWARDS[name] = cls
        cls.name = name
        return cls

    return decorate


def build_reward(name: str, **kwargs):
    """Instantiate the reward registered under `name` with `kwargs`."""
    if name not in REWARDS:
        known = ", ".join(sorted(REWARDS)) or "(none)"
        raise UnknownRewardError(f"unknown reward {name!r}; registered rewards: {known}")
    return REWARDS[name](**kwargs)
