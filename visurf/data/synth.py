"""The synthetic grounding world: rows in the ViSurf schema, written as parquet splits.

Concepts (colours, shapes, relations) are split into known and novel sets. Known rows show and name
known concepts only and carry a think text; novel rows name a novel concept and carry none, so a base
model trained on known rows has to learn the novel concepts in post-training.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import random
from collections import Counter
from dataclasses import dataclass, replace
from pathlib import Path

from visurf.data.groups import GROUPS
from visurf.data.prompt import build_prompt
from visurf.data.synth_config import SynthConfig
from visurf.data.synth_questions import Question, candidates, think_text
from visurf.data.synth_scene import SceneObject, png_bytes, render_scene, sample_scene
from visurf.rewards.parsing import format_answer

__all__ = [
    "SynthConfig",
    "SynthItem",
    "corpus_texts",
    "generate_items",
    "generate_rows",
    "main",
    "write_splits",
]

_MAX_TRIES = 1000


@dataclass(frozen=True)
class SynthItem:
    """One generated question with its scene, before rendering."""

    objects: tuple[SceneObject, ...]
    question: Question
    uses_novel: bool
    group: str
    think: str

    @property
    def labels(self) -> list[dict]:
        return [t.label() for t in self.question.targets]


def sample_item(rng: random.Random, cfg: SynthConfig) -> SynthItem:
    novel = rng.random() < cfg.novel_fraction
    kind = _pick_kind(rng, cfg, novel)
    colors = cfg.known_colors + (cfg.novel_colors if novel else ())
    shapes = cfg.known_shapes + (cfg.novel_shapes if novel else ())
    relations = cfg.known_relations + (cfg.novel_relations if novel else ())
    margin = max(2, cfg.image_size // 20)
    for _ in range(_MAX_TRIES):
        objects = sample_scene(
            rng, colors, shapes, rng.randint(cfg.min_objects, cfg.max_objects), cfg.image_size, grid=cfg.grid
        )
        if objects is None:
            continue
        # A novel row's question must name a novel concept; a known row's scene has none to name.
        options = [
            q
            for q in candidates(kind, objects, colors, shapes, relations, margin)
            if q.concepts & cfg.novel_concepts or not novel
        ]
        if options:
            return _item(objects, rng.choice(options), cfg)
    raise RuntimeError(
        f"could not generate a {'novel' if novel else 'known'} {kind} question; check SynthConfig"
    )


def _pick_kind(rng: random.Random, cfg: SynthConfig, novel: bool) -> str:
    weights = {
        "single": max(cfg.single_fraction, 0.0),
        "multi": cfg.multi_fraction,
        "non_object": cfg.non_object_fraction,
        "relation": cfg.relation_fraction,
    }
    if novel and not (cfg.novel_colors or cfg.novel_shapes):
        weights = {"relation": 1.0}  # only a relation can be novel
    u, total = rng.random() * sum(weights.values()), 0.0
    for kind, weight in weights.items():
        total += weight
        if u < total:
            return kind
    return next(k for k, w in reversed(weights.items()) if w > 0)


def _item(objects, question: Question, cfg: SynthConfig) -> SynthItem:
    named = set(question.concepts)
    for t in question.targets:
        named |= {t.color, t.shape}
    uses_novel = bool(named & cfg.novel_concepts)
    n = len(question.targets)
    group = "non_object" if n == 0 else "multi" if n >= 2 else "novel" if uses_novel else "known"
    cell_size = cfg.image_size // cfg.grid if cfg.think_positions else 0
    think = "" if uses_novel else think_text(question, objects, cell_size)
    return SynthItem(tuple(objects), question, uses_novel, group, think)


def generate_items(num: int, seed: int, cfg: SynthConfig | None = None) -> list[SynthItem]:
    """Scenes and questions only (no images); item i depends on (seed, i) alone."""
    cfg = cfg or SynthConfig()
    if not isinstance(num, int) or num < 0:
        raise ValueError(f"num must be a non-negative int, got {num!r}")
    # A string seed goes through SHA-512 in `random`, so it is stable across runs and platforms.
    return [sample_item(random.Random(f"visurf.synth:{seed}:{i}"), cfg) for i in range(num)]


def generate_rows(num: int, seed: int, split: str = "train", cfg: SynthConfig | None = None) -> list[dict]:
    """`num` rows in the ViSurf schema (plus group, uses_novel, think), deterministic for a seed."""
    cfg = cfg or SynthConfig()
    size = cfg.image_size
    rows = []
    for i, item in enumerate(generate_items(num, seed, cfg)):
        rows.append(
            {
                "id": f"{split}-{i:06d}",
                "problem": item.question.text,
                # The dataset's own layout (json.dumps defaults, as VisionReasoner's data), not the
                # compact canonical one the policy writes: `align` is what bridges the two.
                "solution": json.dumps(item.labels),
                "image": {"bytes": png_bytes(render_scene(item.objects, size, cfg.background)), "path": None},
                "img_height": size,
                "img_width": size,
                "group": item.group,
                "uses_novel": item.uses_novel,
                "think": item.think,
            }
        )
    return rows


def split_seed(seed: int, split: str) -> int:
    """The train split uses `seed` itself; other splits a seed derived from it and their name."""
    if split == "train":
        return seed
    return int(hashlib.sha256(f"{seed}:{split}".encode()).hexdigest()[:12], 16)


def features():
    import datasets

    return datasets.Features(
        {
            "id": datasets.Value("string"),
            "problem": datasets.Value("string"),
            "solution": datasets.Value("string"),
            "image": datasets.Image(),
            "img_height": datasets.Value("int32"),
            "img_width": datasets.Value("int32"),
            "group": datasets.Value("string"),
            "uses_novel": datasets.Value("bool"),
            "think": datasets.Value("string"),
        }
    )


def write_splits(
    out_dir, num_train: int, num_test: int, seed: int, cfg: SynthConfig | None = None, num_val: int = 0
) -> tuple[Path, Path]:
    """Write DIR/train.parquet, DIR/val.parquet (when `num_val` > 0), then DIR/test.parquet;
    returns the train and test paths. The validation split is drawn like the test split, from a
    seed of its own: settings are chosen on it, never on the test split."""
    splits = [("train", num_train), ("val", num_val), ("test", num_test)]
    paths = [write_split(out_dir, name, n, seed, cfg) for name, n in splits if n > 0 or name != "val"]
    return paths[0], paths[-1]


def write_split(out_dir, split: str, num: int, seed: int, cfg: SynthConfig | None = None) -> Path:
    """Write DIR/<split>.parquet: `num` rows from the split's own seed (see split_seed)."""
    import datasets

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = generate_rows(num, split_seed(seed, split), split, cfg)
    path = out / f"{split}.parquet"
    # Write then rename, so a crash never leaves a half-written split that looks complete.
    tmp = path.with_name(f".{path.name}.tmp")
    datasets.Dataset.from_list(rows, features=features()).to_parquet(str(tmp))
    os.replace(tmp, path)
    return path


def corpus_texts(cfg: SynthConfig | None = None, num: int = 2000, seed: int = 0) -> list[str]:
    """Text lines for training a tokenizer: problems, prompts, think texts, answers, completions."""
    cfg = _corpus_config(cfg or SynthConfig())
    lines = []
    for item in generate_items(num, seed, cfg):
        answer = format_answer(item.labels)
        lines += [item.question.text, build_prompt(item.question.text), answer]
        if item.think:
            lines += [item.think, f"<think>{item.think}</think><answer>{answer}</answer>"]
    # Every object name, so post-trained models can describe novel objects with whole-word tokens.
    for color in cfg.known_colors + cfg.novel_colors:
        for shape in cfg.known_shapes + cfg.novel_shapes:
            lines.append(f"I see a {color} {shape}. The {color} {shape} is the target.")
    return lines


def _corpus_config(cfg: SynthConfig) -> SynthConfig:
    # The tokenizer must cover novel words even when the data config (e.g. the base model's) has none.
    if cfg.novel_fraction == 0 and cfg.novel_concepts:
        try:
            return replace(cfg, novel_fraction=0.5)
        except ValueError:
            return cfg
    return cfg


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m visurf.data.synth", description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, help="output folder for train.parquet and test.parquet")
    parser.add_argument("--num-train", type=int, required=True)
    parser.add_argument("--num-test", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--image-size", type=int, default=SynthConfig.image_size)
    parser.add_argument("--novel-fraction", type=float, default=SynthConfig.novel_fraction)
    args = parser.parse_args(argv)
    try:
        cfg = SynthConfig(image_size=args.image_size, novel_fraction=args.novel_fraction)
    except ValueError as err:
        parser.error(str(err))
    for path in write_splits(args.out, args.num_train, args.num_test, args.seed, cfg):
        counts = _group_counts(path)
        detail = ", ".join(f"{g}={counts.get(g, 0)}" for g in GROUPS)
        print(f"{path}: {sum(counts.values())} rows ({detail})")
    return 0


def _group_counts(path: Path) -> Counter:
    import pyarrow.parquet as pq

    return Counter(pq.read_table(path, columns=["group"]).column("group").to_pylist())


if __name__ == "__main__":
    raise SystemExit(main())
