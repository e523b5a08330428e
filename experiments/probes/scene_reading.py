"""How well a model reads the synthetic scenes: its "I see …" sentence against the true one.

    python experiments/probes/scene_reading.py [Hydra overrides, e.g. model.source=path model.path=DIR]

Evaluates the model of the config (default: the embedded base `tiny_base`) greedily on the
test split, as a run's evaluation does, and compares the first sentence of each completion's
think text with the dataset's own, on the rows that have one (known concepts). Prints the share
with the right number of objects, and among those the share of objects whose colour and whose
shape are named right, and the share of whole scenes read exactly.

Then, for the known questions about one object, where the answer's point lands: on the named
object, on another object (a palette colour under the point), or on the empty background. A
model that reads the scene right but answers on empty cells has not learnt to bind a name to
the place of its object.

Last, binding on the one-object questions named without a relation ("the green shape"), over
the answers that land on some object: the share on the target against chance (1 / the scene's
objects), and the share on the object the think text lists first (the leftmost) against the
share of targets that are leftmost. A model that picks objects by their place in the list, not
by the name, sits at chance with a first-listed share above the targets'.
"""

from __future__ import annotations

import re
import sys

from visurf.config.compose import compose_config
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


def first_point(completion: str) -> list | None:
    """The point of the first object a completion answers, or None."""
    objects = parse_completion(completion).objects or []
    first = objects[0] if objects else None
    return as_coords(first.get("point_2d"), 2) if isinstance(first, dict) else None


def is_relation(problem: str) -> bool:
    return any(f" {r} " in problem for r in RELATIONS)


def landing(image, completion: str, target: dict) -> str:
    """Where the first answered point lands: "target", "other object", "empty" or "no answer"."""
    point = first_point(completion)
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
        kind = "relation" if is_relation(example.problem) else "single"
        where = landing(example.image, completion, example.objects[0])
        counts.setdefault(kind, dict.fromkeys(LANDINGS, 0))[where] += 1
    return {
        kind: {k: v / sum(c.values()) for k, v in c.items()} | {"rows": sum(c.values())}
        for kind, c in counts.items()
    }


def scene_objects(image) -> list[set[tuple[int, int]]]:
    """The pixel sets of the shapes in a synthetic scene (4-connected shape pixels), left to right
    by centre as the think text lists them."""
    todo = {(x, y) for x in range(image.width) for y in range(image.height) if shape_at(image, x, y)}
    parts = []
    while todo:
        part, stack = set(), [todo.pop()]
        while stack:
            x, y = stack.pop()
            part.add((x, y))
            for near in ((x + 1, y), (x - 1, y), (x, y + 1), (x, y - 1)):
                if near in todo:
                    todo.remove(near)
                    stack.append(near)
        parts.append(part)

    def centre(part):
        xs, ys = zip(*part)
        return ((min(xs) + max(xs)) / 2, (min(ys) + max(ys)) / 2)

    return sorted(parts, key=centre)


def binding(rows) -> dict:
    """Binding counts over (example, completion) rows of one-object questions without a relation."""
    n = on_target = first = target_first = 0
    chance = 0.0
    for example, completion in rows:
        point = first_point(completion)
        if point is None:
            continue
        parts = scene_objects(example.image)
        where = tuple(int(v) for v in point)
        target = tuple(int(v) for v in example.objects[0]["point_2d"])
        landed = next((i for i, part in enumerate(parts) if where in part), None)
        wanted = next((i for i, part in enumerate(parts) if target in part), None)
        if landed is None or wanted is None:
            continue
        n += 1
        on_target += landed == wanted
        first += landed == 0
        target_first += wanted == 0
        chance += 1 / len(parts)
    if not n:
        return {"rows": 0}
    return {
        "rows": n,
        "target": on_target / n,
        "chance": chance / n,
        "first listed": first / n,
        "target first listed": target_first / n,
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
    single = [(e, c) for e, c in one_object if not is_relation(e.problem)]
    result["binding"] = b = binding(single)
    if b["rows"]:
        print(
            f"known single questions answered on an object ({b['rows']}): on the target {b['target']:.1%} "
            f"(chance {b['chance']:.1%}); on the first-listed object {b['first listed']:.1%} "
            f"(targets first-listed {b['target first listed']:.1%})"
        )
    return result


if __name__ == "__main__":
    main(sys.argv[1:])
