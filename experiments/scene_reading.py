"""How well a model reads the synthetic scenes: its "I see …" sentence against the true one.

    python experiments/scene_reading.py [Hydra overrides, e.g. model.source=path model.path=DIR]

Evaluates the model of the config (default: the embedded base `tiny_base`) greedily on the
test split, as a run's evaluation does, and compares the first sentence of each completion's
think text with the dataset's own, on the rows that have one (known concepts). Prints the share
with the right number of objects, and among those the share of objects whose colour and whose
shape are named right, and the share of whole scenes read exactly.

Then, for the known questions about one object, where the answer's point lands: on the named
object, on another object (a palette colour under the point), or on the empty background. A
model that reads the scene right but answers on empty cells has not learnt to bind a name to
the place of its object.
"""

from __future__ import annotations

import re
import sys

from visurf.compose import compose_config
from visurf.data.sources import load_examples
from visurf.data.synth_config import RELATIONS
from visurf.data.synth_scene import shape_at
from visurf.evaluation.runner import evaluate
from visurf.models.loading import load_policy
from visurf.recipes.base_model import ensure_model
from visurf.rewards import build_reward, parse_completion
from visurf.rewards.geometry import inside
from visurf.rewards.parsing import as_coords

SEEN = re.compile(r"I see (.*?)\.(?!\d)")  # a "." inside "(1,2)" does not end the sentence


def objects_seen(text: str) -> list[tuple[str, str]] | None:
    """[(colour, shape), ...] of the "I see …" sentence, or None when there is none."""
    match = SEEN.search(text)
    if not match:
        return None
    out = []
    for part in re.split(r", | and ", match.group(1)):
        words = re.sub(r" at \(.*?\)", "", part).split()  # drop think_positions' cell
        out.append(tuple(words[1:3]) if len(words) >= 3 else ("?", "?"))
    return out


def scene_reading(pairs) -> dict:
    """Counts over (true sentence, predicted completion) pairs."""
    n = count_ok = exact = objects = colour_ok = shape_ok = 0
    for truth, completion in pairs:
        true, seen = objects_seen(truth), objects_seen(completion) or []
        n += 1
        exact += seen == true
        if len(seen) == len(true):
            count_ok += 1
            objects += len(true)
            colour_ok += sum(a[0] == b[0] for a, b in zip(true, seen))
            shape_ok += sum(a[1] == b[1] for a, b in zip(true, seen))
    return {
        "rows": n,
        "count": count_ok / n,
        "colour": colour_ok / max(objects, 1),
        "shape": shape_ok / max(objects, 1),
        "exact": exact / n,
    }


def landing(image, completion: str, target: dict) -> str:
    """Where the first answered point lands: "target", "other object", "empty" or "no answer"."""
    objects = parse_completion(completion).objects or []
    first = objects[0] if objects else None
    point = as_coords(first.get("point_2d"), 2) if isinstance(first, dict) else None
    if point is None:
        return "no answer"
    if inside(point, target["bbox_2d"]):
        return "target"
    return "other object" if shape_at(image, *point) else "empty"


LANDINGS = ("target", "other object", "empty", "no answer")


def landings(rows) -> dict:
    """Shares of LANDINGS per question kind ("single", "relation") over (example, completion) rows."""
    counts: dict[str, dict[str, int]] = {}
    for example, completion in rows:
        kind = "relation" if any(f" {r} " in example.problem for r in RELATIONS) else "single"
        where = landing(example.image, completion, example.objects[0])
        counts.setdefault(kind, dict.fromkeys(LANDINGS, 0))[where] += 1
    return {
        kind: {k: v / sum(c.values()) for k, v in c.items()} | {"rows": sum(c.values())}
        for kind, c in counts.items()
    }


def main(overrides: list[str]) -> dict:
    cfg = compose_config(overrides)
    ensure_model(cfg.model)  # the embedded base is trained on first use
    model, processor = load_policy(cfg.model)
    frame = int(cfg.model.frame)
    examples = load_examples(cfg.data, frame, "test")
    _, samples = evaluate(
        model,
        processor,
        build_reward(cfg.reward.name, **dict(cfg.reward.kwargs)),
        examples,
        batch_size=int(cfg.eval.batch_size),
        max_new_tokens=int(cfg.eval.max_new_tokens),
        num_samples_logged=len(examples),
    )
    pairs = [(e.think, s["completion"]) for e, s in zip(examples, samples) if e.think]
    result = scene_reading(pairs)
    print(
        f"{result['rows']} rows with a think text: object count right {result['count']:.1%}; "
        f"of those objects, colour right {result['colour']:.1%}, shape right {result['shape']:.1%}; "
        f"whole scene exact {result['exact']:.1%}"
    )
    one_object = [
        (e, s["completion"]) for e, s in zip(examples, samples) if e.group == "known" and len(e.objects) == 1
    ]
    result["landing"] = landings(one_object)
    for kind, shares in sorted(result["landing"].items()):
        print(
            f"known {kind} questions ({shares['rows']}): the answer lands "
            + ", ".join(f"{where} {shares[where]:.1%}" for where in LANDINGS)
        )
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
