"""Configuration of the synthetic grounding world, and its validation."""

from __future__ import annotations

from dataclasses import dataclass

# RGB fill per colour name; a config may use any of these names.
PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "blue": (40, 80, 220),
    "green": (40, 160, 60),
    "yellow": (230, 200, 20),
    "purple": (140, 60, 180),
    "orange": (240, 130, 20),
    "cyan": (20, 190, 200),
    "pink": (240, 120, 180),
    "brown": (130, 80, 40),
    "black": (30, 30, 30),
}
SHAPES = ("circle", "square", "triangle", "diamond")
RELATIONS = ("left of", "right of", "above", "below")


@dataclass(frozen=True)
class SynthConfig:
    image_size: int = 112  # square side of the stored images in pixels (resized to the model's frame)
    min_objects: int = 2
    max_objects: int = 4
    known_colors: tuple[str, ...] = ("red", "blue", "green")
    novel_colors: tuple[str, ...] = ("yellow", "purple")
    known_shapes: tuple[str, ...] = ("circle", "square")
    novel_shapes: tuple[str, ...] = ("triangle",)
    known_relations: tuple[str, ...] = ("left of", "above")
    novel_relations: tuple[str, ...] = ("right of", "below")
    novel_fraction: float = 0.5  # share of rows whose question names a novel concept
    non_object_fraction: float = 0.15
    multi_fraction: float = 0.2
    relation_fraction: float = 0.2
    # 0: objects anywhere. N > 0: each object fills one cell of an N x N grid (a cell per object),
    # which makes the world learnable by a tiny model in minutes on a CPU.
    grid: int = 0
    background: str = "plain"  # plain | gradient (a tint that encodes each pixel's position)
    think_positions: bool = False  # the think text names each object's grid cell (needs grid > 0)

    def __post_init__(self):
        # Tuples keep the config hashable and immutable even if lists were passed.
        for name in _CONCEPT_FIELDS:
            value = getattr(self, name)
            if isinstance(value, str):
                raise ValueError(f"SynthConfig.{name} must be a sequence of names, got the string {value!r}")
            object.__setattr__(self, name, tuple(value))
        validate(self)

    @property
    def single_fraction(self) -> float:
        return 1.0 - self.non_object_fraction - self.multi_fraction - self.relation_fraction

    @property
    def novel_concepts(self) -> frozenset[str]:
        return frozenset(self.novel_colors + self.novel_shapes + self.novel_relations)


_CONCEPT_FIELDS = (
    "known_colors",
    "novel_colors",
    "known_shapes",
    "novel_shapes",
    "known_relations",
    "novel_relations",
)
_FRACTION_FIELDS = ("novel_fraction", "non_object_fraction", "multi_fraction", "relation_fraction")


# data.synth fields that size and seed the splits; every other field describes the world.
SPLIT_FIELDS = ("num_train", "num_test", "num_val", "seed")


def world_config(synth: dict) -> SynthConfig:
    """The world a `data.synth` config (a plain dict) describes: all but its SPLIT_FIELDS."""
    return SynthConfig(**{k: v for k, v in synth.items() if k not in SPLIT_FIELDS})


def validate(cfg: SynthConfig) -> None:
    """Raise ValueError naming the offending field when the config cannot generate data."""
    if isinstance(cfg.image_size, bool) or not isinstance(cfg.image_size, int) or cfg.image_size < 28:
        raise ValueError(f"SynthConfig.image_size must be an integer >= 28, got {cfg.image_size!r}")
    _check_names(cfg, "colors", PALETTE)
    _check_names(cfg, "shapes", SHAPES)
    _check_names(cfg, "relations", RELATIONS)
    for kind in ("colors", "shapes", "relations"):
        if not getattr(cfg, f"known_{kind}"):
            raise ValueError(f"SynthConfig.known_{kind} must not be empty")
    for name in _FRACTION_FIELDS:
        value = getattr(cfg, name)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            raise ValueError(f"SynthConfig.{name} must be a number in [0, 1], got {value!r}")
    if cfg.single_fraction < -1e-9:
        raise ValueError(
            "SynthConfig.non_object_fraction + multi_fraction + relation_fraction must be <= 1, got "
            f"{cfg.non_object_fraction + cfg.multi_fraction + cfg.relation_fraction}"
        )
    if cfg.background not in ("plain", "gradient"):
        raise ValueError(f"SynthConfig.background must be 'plain' or 'gradient', got {cfg.background!r}")
    if isinstance(cfg.grid, bool) or not isinstance(cfg.grid, int) or cfg.grid < 0:
        raise ValueError(f"SynthConfig.grid must be an int >= 0, got {cfg.grid!r}")
    if cfg.grid and (cfg.grid * cfg.grid < cfg.max_objects or cfg.image_size // cfg.grid < 8):
        raise ValueError(f"SynthConfig.grid={cfg.grid} leaves too few or too small cells for max_objects")
    if not isinstance(cfg.think_positions, bool):
        raise ValueError(f"SynthConfig.think_positions must be true or false, got {cfg.think_positions!r}")
    if cfg.think_positions and not cfg.grid:
        raise ValueError("SynthConfig.think_positions=true needs grid > 0 (positions are grid cells)")
    known_pairs = len(cfg.known_colors) * len(cfg.known_shapes)
    if not isinstance(cfg.min_objects, int) or cfg.min_objects < 2:
        raise ValueError(f"SynthConfig.min_objects must be an int >= 2, got {cfg.min_objects!r}")
    if not isinstance(cfg.max_objects, int) or cfg.max_objects < cfg.min_objects:
        raise ValueError(f"SynthConfig.max_objects must be an int >= min_objects, got {cfg.max_objects!r}")
    # Objects have unique (colour, shape) pairs, and absent-object questions need a pair left over.
    if cfg.max_objects >= known_pairs:
        raise ValueError(
            f"SynthConfig.max_objects must be < the number of known (colour, shape) pairs ({known_pairs}), "
            f"got {cfg.max_objects}"
        )
    if cfg.max_objects > 6:
        raise ValueError(f"SynthConfig.max_objects must be <= 6 to fit the scene, got {cfg.max_objects}")
    if cfg.novel_fraction > 0 and not cfg.novel_concepts:
        raise ValueError("SynthConfig.novel_fraction > 0 needs at least one novel colour, shape or relation")
    if cfg.novel_fraction > 0 and not (cfg.novel_colors or cfg.novel_shapes) and cfg.relation_fraction == 0:
        raise ValueError(
            "SynthConfig.novel_fraction > 0 with only novel relations needs relation_fraction > 0"
        )


def _check_names(cfg: SynthConfig, kind: str, supported) -> None:
    known, novel = getattr(cfg, f"known_{kind}"), getattr(cfg, f"novel_{kind}")
    for field, names in ((f"known_{kind}", known), (f"novel_{kind}", novel)):
        for name in names:
            if name not in supported:
                raise ValueError(
                    f"SynthConfig.{field}: unknown {kind[:-1]} {name!r}; supported: {list(supported)}"
                )
        if len(set(names)) != len(names):
            raise ValueError(f"SynthConfig.{field} has duplicates: {list(names)}")
    both = sorted(set(known) & set(novel))
    if both:
        raise ValueError(f"SynthConfig.known_{kind} and novel_{kind} overlap: {both} is in both")
