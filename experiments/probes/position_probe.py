"""Do a model's image tokens say where they are? A linear probe on the vision tower's output.

    python experiments/probes/position_probe.py [Hydra overrides, e.g. model.source=path model.path=DIR]

Runs the vision tower of the config's model (default: the embedded base `tiny_base`) on
training images of the synthetic world and fits a linear classifier from each image token (the
features the language model reads) to the token's place in the image (one of (frame / 28)^2),
on three quarters of the tokens; prints its accuracy on the other quarter, for tokens with an
object under their centre and for empty ones. High accuracy means the place of each object is
there for the language model to read: if its answers still miss the named object
(`experiments/probes/scene_reading.py`), what it lacks is binding a name to that place. A second probe
names the colour of the tokens with an object (the palette colour under the token's centre):
a name can only be bound through attention if what it names is readable from the token too.
A third set of probes names the shape under the token's centre, one probe per pair of shapes
(balanced accuracy: the mean of the two shapes' hit rates, so chance is 50%): a shape whose
tokens read like another's cannot be told from it, by any answer the model is taught.
"""

from __future__ import annotations

import itertools
import sys

import torch
from omegaconf import OmegaConf

from visurf.config.compose import compose_config
from visurf.data.sources import load_examples
from visurf.data.synth import generate_items
from visurf.data.synth_config import world_config
from visurf.data.synth_scene import colour_at
from visurf.models.loading import load_policy
from visurf.recipes.base_model import ensure_model

MERGED_PATCH = 28  # Qwen2.5-VL: 14-px patches merged 2 x 2 into one language-model token


def linear_probe(
    features: torch.Tensor, labels: torch.Tensor, classes: int, steps: int = 300, balanced: bool = False
) -> float:
    """Held-out accuracy of a softmax classifier fitted on the first 3/4 of the rows (`balanced`:
    the mean over classes of each class's held-out hit rate)."""
    torch.manual_seed(0)
    x = (features - features.mean(0)) / (features.std(0) + 1e-6)
    n = len(x) * 3 // 4
    weight = torch.zeros(x.shape[1], classes, requires_grad=True)
    bias = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.Adam([weight, bias], lr=0.05)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(x[:n] @ weight + bias, labels[:n])
        (loss + 1e-3 * weight.pow(2).sum()).backward()
        opt.step()
    with torch.no_grad():
        hits = (x[n:] @ weight + bias).argmax(1) == labels[n:]
        if not balanced:
            return hits.float().mean().item()
        return torch.stack([hits[labels[n:] == c].float().mean() for c in labels[n:].unique()]).mean().item()


@torch.no_grad()
def image_tokens(model, processor, images) -> torch.Tensor:
    """(images, tokens, hidden) features of the vision tower, in the language model's token order."""
    vision = processor.image_processor(images=images, return_tensors="pt")
    out = model.model.get_image_features(vision["pixel_values"], vision["image_grid_thw"])
    per_image = out.pooler_output if hasattr(out, "pooler_output") else out
    return torch.stack(list(per_image))


def main(overrides: list[str], num_images: int = 400) -> dict:
    cfg = compose_config(overrides)
    ensure_model(cfg.model)  # the embedded base is trained on first use
    model, processor = load_policy(cfg.model)
    model.eval()
    frame = int(cfg.model.frame)
    side = frame // MERGED_PATCH
    images = [e.image.convert("RGB") for e in load_examples(cfg.data, frame, "train")[:num_images]]
    world = world_config(OmegaConf.to_container(cfg.data.synth, resolve=True))
    scenes = [item.objects for item in generate_items(len(images), int(cfg.data.synth.seed), world)]
    scale = int(cfg.data.synth.image_size) / frame  # scene boxes are in the dataset's frame
    features, places, occupied, colours, shapes = [], [], [], [], []
    for i in range(0, len(images), 50):
        batch = images[i : i + 50]
        for image, objects, tokens in zip(batch, scenes[i : i + 50], image_tokens(model, processor, batch)):
            for k, token in enumerate(tokens):
                row, col = divmod(k, side)
                centre = (col * MERGED_PATCH + MERGED_PATCH // 2, row * MERGED_PATCH + MERGED_PATCH // 2)
                features.append(token)
                places.append(k)
                colours.append(colour_at(image, *centre))
                occupied.append(colours[-1] is not None)
                shapes.append(
                    shape_under(objects, centre[0] * scale, centre[1] * scale) if occupied[-1] else None
                )
    x, y, occ = torch.stack(features), torch.tensor(places), torch.tensor(occupied)
    result = {"tokens": len(x), "places": side * side}
    for name, mask in (("object", occ), ("empty", ~occ)):
        result[name] = linear_probe(x[mask], y[mask], side * side)
    names = sorted({c for c in colours if c})
    colour = torch.tensor([names.index(c) for c in colours if c])
    result["colour"] = linear_probe(x[occ], colour, len(names))
    kinds = sorted({s for s in shapes if s})
    for k, first in enumerate(kinds):
        for second in kinds[k + 1 :]:
            pair = torch.tensor([s in (first, second) for s in shapes])
            label = torch.tensor([s == second for s in shapes if s in (first, second)]).long()
            result[f"{first} / {second}"] = linear_probe(x[pair], label, 2, balanced=True)
    print(
        f"{len(images)} images, {side * side} places per image: a linear probe names the place of a "
        f"token with an object {result['object']:.1%} and of an empty one {result['empty']:.1%} of the "
        f"time (held-out quarter; chance {1 / (side * side):.1%}); the colour of a token with an "
        f"object {result['colour']:.1%} ({len(names)} colours); balanced accuracy of telling two shapes "
        "apart: "
        + ", ".join(f"{a} / {b} {result[f'{a} / {b}']:.1%}" for a, b in itertools.combinations(kinds, 2))
    )
    return result


def shape_under(objects, x: float, y: float) -> str | None:
    """The shape of the object whose box holds (x, y) in the scene's frame (None if no box does)."""
    for obj in objects:
        x1, y1, x2, y2 = obj.box
        if x1 <= x < x2 and y1 <= y < y2:
            return obj.shape
    return None


if __name__ == "__main__":
    main(sys.argv[1:])
