"""An answer's mask from SAM2, through transformers' own SAM2 classes, as the released evaluation draws it.

The reference (VisionReasoner's `generate_masks`, with `SAM2ImagePredictor`) gives SAM2 the image at
its original size and, for each predicted object, its box and its point (a positive click);
SAM2 proposes three masks per object (its default multimask output) and the one with the
highest predicted IoU is kept; the answer's mask is the OR of its objects' masks. Its edge cases:

- no boxes: an empty mask, SAM2 not run;
- boxes without points (the answer's points did not parse) or a different number of each: an
  empty mask (its box-only branch computes masks but never adds them);
- ties between proposals: the last of the best (its descending argsort of three scores).

Objects are prompted together, one forward pass per image: each object is decoded on its own in
the mask decoder, so this equals one call per object.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

log = logging.getLogger(__name__)


class Sam2Segmenter:
    """`answer_mask(image, boxes, points)`: the [H, W] boolean mask of an answer's objects."""

    def __init__(self, model, processor, device="cpu", max_objects_per_pass: int = 32):
        self.model = model.eval().to(device)
        self.processor = processor
        self.device = torch.device(device)
        self.max_objects_per_pass = max_objects_per_pass  # bounds the full-size masks held at once

    @classmethod
    def from_pretrained(cls, path: str | Path, device="cpu") -> Sam2Segmenter:
        """A SAM2 model directory (`model_type` sam2, or sam2_video as facebook/sam2-hiera-large is
        saved), loaded offline into transformers' `Sam2Model`, in float32."""
        from transformers import AutoModelForMaskGeneration, Sam2Model

        from visurf.models.sam2_processing import load_sam2_processor

        path = Path(path)
        if not (path / "config.json").is_file():
            raise FileNotFoundError(f"{path} holds no SAM2 model (looked for {path / 'config.json'})")
        model = AutoModelForMaskGeneration.from_pretrained(
            str(path), local_files_only=True, dtype=torch.float32
        )
        if not isinstance(model, Sam2Model):
            raise ValueError(f"{path} holds a {type(model).__name__}, not a SAM2 model (Sam2Model)")
        return cls(model, load_sam2_processor(path), device)

    @torch.no_grad()
    def answer_mask(self, image, boxes: list, points: list) -> np.ndarray:
        """The OR of every object's best mask, at the image's size; `image` is the original RGB PIL image."""
        combined = np.zeros((image.height, image.width), dtype=bool)
        if not boxes or len(points) != len(boxes):
            return combined
        embeddings = None
        for start in range(0, len(boxes), self.max_objects_per_pass):
            stop = start + self.max_objects_per_pass
            masks, embeddings = self._best_masks(image, boxes[start:stop], points[start:stop], embeddings)
            combined |= masks.any(dim=0).cpu().numpy()
        return combined

    def _best_masks(self, image, boxes: list, points: list, embeddings):
        """[n, H, W] best mask per object, and the image's embeddings for the next pass."""
        inputs = self.processor(
            images=[image],
            input_points=[[[point] for point in points]],  # [image][object][point][x, y]
            input_labels=[[[1] for _ in points]],  # one positive click per object
            input_boxes=[boxes],  # [image][object][x1, y1, x2, y2]
            return_tensors="pt",
        )
        if embeddings is None:
            embeddings = self.model.get_image_embeddings(inputs["pixel_values"].to(self.device))
        out = self.model(
            image_embeddings=embeddings,
            input_points=inputs["input_points"].to(self.device),
            input_labels=inputs["input_labels"].to(self.device),
            input_boxes=inputs["input_boxes"].to(self.device),
            multimask_output=True,
        )
        scores = out.iou_scores[0]  # [n, 3]
        best = scores.shape[1] - 1 - scores.flip(1).argmax(dim=1)  # the last of equal best scores
        logits = out.pred_masks[0, torch.arange(len(boxes), device=best.device), best]  # [n, h, w]
        masks = self.processor.post_process_masks([logits[:, None].float().cpu()], inputs["original_sizes"])[
            0
        ]
        return masks[:, 0], embeddings
