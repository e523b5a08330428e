"""Questions about a synthetic scene (as short noun phrases) and the think text that describes it."""

from __future__ import annotations

from dataclasses import dataclass

from visurf.data.synth_scene import SceneObject

KINDS = ("single", "multi", "non_object", "relation")


@dataclass(frozen=True)
class Question:
    kind: str  # one of KINDS
    text: str  # e.g. "the red circle", "all the blue shapes", "the square left of the red circle"
    targets: tuple[SceneObject, ...]  # the answer, left to right; empty for an absent object
    concepts: frozenset[str]  # colours, shapes and relations the text names
    reference: SceneObject | None = None  # relation questions only
    relation: str | None = None
    absent: str | None = None  # non-object questions: the name of the missing object


def candidates(kind: str, objects, colors, shapes, relations, margin: int) -> list[Question]:
    """Every question of `kind` whose answer in this scene is unambiguous."""
    if kind == "single":
        return _single(objects)
    if kind == "multi":
        return _multi(objects)
    if kind == "non_object":
        return _non_object(objects, colors, shapes)
    if kind == "relation":
        return _relation(objects, relations, margin)
    raise ValueError(f"unknown question kind {kind!r}; expected one of {KINDS}")


def _single(objects) -> list[Question]:
    out = []
    for obj in objects:
        out.append(Question("single", f"the {obj.name}", (obj,), frozenset({obj.color, obj.shape})))
        # Naming one attribute is enough when it is unique, and teaches each concept on its own.
        if sum(o.shape == obj.shape for o in objects) == 1:
            out.append(Question("single", f"the {obj.shape}", (obj,), frozenset({obj.shape})))
        if sum(o.color == obj.color for o in objects) == 1:
            out.append(Question("single", f"the {obj.color} shape", (obj,), frozenset({obj.color})))
    return out


def _multi(objects) -> list[Question]:
    out = []
    for color in sorted({o.color for o in objects}):
        hits = _left_to_right(o for o in objects if o.color == color)
        if len(hits) >= 2:
            out.append(Question("multi", f"all the {color} shapes", hits, frozenset({color})))
    for shape in sorted({o.shape for o in objects}):
        hits = _left_to_right(o for o in objects if o.shape == shape)
        if len(hits) >= 2:
            out.append(Question("multi", f"all the {shape}s", hits, frozenset({shape})))
    return out


def _non_object(objects, colors, shapes) -> list[Question]:
    present = {(o.color, o.shape) for o in objects}
    seen = {o.color for o in objects} | {o.shape for o in objects}
    out = []
    for color in colors:
        for shape in shapes:
            # Only near misses (the colour or the shape is in the scene): the question must be read whole.
            if (color, shape) not in present and (color in seen or shape in seen):
                name = f"{color} {shape}"
                out.append(Question("non_object", f"the {name}", (), frozenset({color, shape}), absent=name))
    return out


def relation_offset(obj: SceneObject, ref: SceneObject, relation: str) -> int:
    """Positive when `obj` is `relation` `ref`, judged by the object centres."""
    (ox, oy), (rx, ry) = obj.center, ref.center
    return {"left of": rx - ox, "right of": ox - rx, "above": ry - oy, "below": oy - ry}[relation]


def _relation(objects, relations, margin: int) -> list[Question]:
    # The target is described by its shape ("the square") or its colour ("the blue shape").
    descriptions = [(s, s, "shape") for s in sorted({o.shape for o in objects})]
    descriptions += [(f"{c} shape", c, "color") for c in sorted({o.color for o in objects})]
    needed, redundant = [], []
    for ref in objects:
        for relation in relations:
            for phrase, concept, attr in descriptions:
                pool = [o for o in objects if o is not ref and getattr(o, attr) == concept]
                offsets = [relation_offset(o, ref, relation) for o in pool]
                holders = [o for o, d in zip(pool, offsets) if d > 0]
                # Exactly one object satisfies it, and no centre is within `margin` of the dividing line.
                if len(holders) != 1 or any(abs(d) < margin for d in offsets):
                    continue
                q = Question(
                    "relation",
                    f"the {phrase} {relation} the {ref.name}",
                    (holders[0],),
                    frozenset({concept, relation, ref.color, ref.shape}),
                    reference=ref,
                    relation=relation,
                )
                (needed if len(pool) >= 2 else redundant).append(q)
    # Prefer questions where the relation is what tells the candidates apart.
    return needed or redundant


def _left_to_right(objs) -> tuple[SceneObject, ...]:
    return tuple(sorted(objs, key=lambda o: (o.center[0], o.center[1])))


def think_text(question: Question, objects, cell_size: int = 0) -> str:
    """A short description of the scene and of how the answer follows from it.

    With `cell_size` > 0 each object's grid cell is named too, as (column,row) counted from 1.
    """

    def seen_as(o: SceneObject) -> str:
        where = f" at ({o.box[0] // cell_size + 1},{o.box[1] // cell_size + 1})" if cell_size else ""
        return f"{_article(o.name)} {o.name}{where}"

    seen = "I see " + _join([seen_as(o) for o in _left_to_right(objects)]) + "."
    if question.kind == "non_object":
        return f"{seen} None of them is {_article(question.absent)} {question.absent}."
    if question.kind == "multi":
        matched = _join([f"the {o.name}" for o in question.targets])
        return f"{seen} {matched[0].upper()}{matched[1:]} match."
    target = question.targets[0]
    if question.kind == "relation":
        return f"{seen} The {question.reference.name} is the reference. The {target.name} is {question.relation} it."
    return f"{seen} The {target.name} is the target."


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _article(phrase: str) -> str:
    return "an" if phrase[:1] in "aeiou" else "a"
