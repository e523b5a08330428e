"""SAM2's processor, with or without torchvision.

transformers' `Sam2Processor` scales point and box prompts to the model's input square and hands
the image to `Sam2ImageProcessor`, which needs torchvision. Where torchvision is missing, the same
`Sam2Processor` class is built with `Sam2ImageProcessorTorch` in the image processor's place: the
stock preprocessing redone in plain torch, step for step, and its mask post-processing.

The stock preprocessing: the RGB image as a uint8 tensor, resized to `size` with bilinear,
antialiased interpolation (on a CPU with AVX2 in uint8 itself, elsewhere in float32 and rounded
back to uint8, as torchvision chooses), then `(x - 255 * mean) / (255 * std)` in float32 (the
rescale by 1/255 fused into the normalisation). Masks: the low-resolution logits interpolated
bilinearly (corners not aligned) to the original size, then `> mask_threshold`.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from transformers.feature_extraction_utils import BatchFeature
from transformers.image_processing_base import ImageProcessingMixin
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

log = logging.getLogger(__name__)

BILINEAR = 2  # PIL's resample code, the only one the stock SAM2 processor is configured with


class Sam2ImageProcessorTorch(ImageProcessingMixin):
    """`Sam2ImageProcessor`'s image preprocessing and `post_process_masks`, without torchvision.

    Reads the same saved settings (`preprocessor_config.json`): `size`, `image_mean`, `image_std`,
    `rescale_factor`, `resample` and the `do_*` switches; saves under the stock class's name, as
    the settings describe the stock preprocessing.
    """

    model_input_names = ["pixel_values"]

    def __init__(
        self,
        size: dict | None = None,
        image_mean=IMAGENET_DEFAULT_MEAN,
        image_std=IMAGENET_DEFAULT_STD,
        rescale_factor: float = 1 / 255,
        resample: int = BILINEAR,
        do_resize: bool = True,
        do_rescale: bool = True,
        do_normalize: bool = True,
        **kwargs,
    ):
        kwargs.pop("image_processor_type", None)
        super().__init__(**kwargs)
        self.size = dict(size or {"height": 1024, "width": 1024})
        if set(self.size) != {"height", "width"}:
            raise ValueError(f"SAM2's image size must be {{'height', 'width'}}, got {self.size}")
        if resample not in (BILINEAR, None):
            raise ValueError(f"only bilinear resampling (2) is reproduced for SAM2, got resample={resample}")
        self.image_mean, self.image_std = list(image_mean), list(image_std)
        self.rescale_factor, self.resample = rescale_factor, BILINEAR
        self.do_resize, self.do_rescale, self.do_normalize = do_resize, do_rescale, do_normalize

    def to_dict(self) -> dict:
        out = super().to_dict()
        out["image_processor_type"] = "Sam2ImageProcessor"
        return out

    def resize(self, image: torch.Tensor) -> torch.Tensor:
        """[C, H, W] uint8 -> [C, height, width] uint8, as torchvision's bilinear antialiased resize."""
        target = (int(self.size["height"]), int(self.size["width"]))
        batch = image.unsqueeze(0)
        native = image.device.type == "cpu" and "AVX2" in torch.backends.cpu.get_cpu_capability()
        if native:  # torch's uint8 kernel, which torchvision uses on such CPUs
            out = F.interpolate(batch, size=target, mode="bilinear", align_corners=False, antialias=True)
        else:
            out = F.interpolate(
                batch.float(), size=target, mode="bilinear", align_corners=False, antialias=True
            )
            out = out.round_().to(torch.uint8)
        return out[0]

    def pixel_values(self, image) -> torch.Tensor:
        """One PIL image (or [H, W, 3] uint8 array) -> [3, height, width] float32."""
        array = np.array(image.convert("RGB") if hasattr(image, "convert") else image, dtype=np.uint8)
        x = torch.from_numpy(array).permute(2, 0, 1).contiguous()
        if self.do_resize:
            x = self.resize(x)
        if self.do_normalize:
            scale = 1.0 / self.rescale_factor if self.do_rescale else 1.0
            mean = torch.tensor(self.image_mean) * scale
            std = torch.tensor(self.image_std) * scale
            return (x.to(torch.float32) - mean[:, None, None]) / std[:, None, None]
        x = x.to(torch.float32)
        return x * self.rescale_factor if self.do_rescale else x

    def __call__(self, images, segmentation_maps=None, return_tensors=None, **kwargs) -> BatchFeature:
        if segmentation_maps is not None:
            raise ValueError("Sam2ImageProcessorTorch takes images only, not segmentation maps")
        images = list(images) if isinstance(images, (list, tuple)) else [images]
        sizes = [[int(np.asarray(im).shape[0]), int(np.asarray(im).shape[1])] for im in images]
        pixels = torch.stack([self.pixel_values(im) for im in images])
        return BatchFeature({"pixel_values": pixels, "original_sizes": sizes}, tensor_type=return_tensors)

    def post_process_masks(
        self,
        masks,
        original_sizes,
        mask_threshold: float = 0.0,
        binarize: bool = True,
        max_hole_area: float = 0.0,
        max_sprinkle_area: float = 0.0,
        apply_non_overlapping_constraints: bool = False,
        **kwargs,
    ) -> list[torch.Tensor]:
        """Per image, [n_obj, n_masks, h, w] logits -> [n_obj, n_masks, H, W] at its original size.

        The stock signature; like the stock processor, holes and sprinkles are never filled.
        """
        if apply_non_overlapping_constraints:
            raise ValueError("non-overlapping constraints are not reproduced for SAM2's masks")
        if isinstance(original_sizes, torch.Tensor):
            original_sizes = original_sizes.tolist()
        out = []
        for logits, size in zip(masks, original_sizes):
            up = F.interpolate(logits, [int(v) for v in size], mode="bilinear", align_corners=False)
            out.append(up > mask_threshold if binarize else up)
        return out


def load_sam2_processor(path: str | Path, prefer_stock: bool = True):
    """transformers' `Sam2Processor` for a SAM2 model directory: the stock one where it builds,
    else the same class around `Sam2ImageProcessorTorch`.

    Settings: `processor_config.json` (prompts: `target_size`, `point_pad_value`; and the image
    settings under `image_processor`, as transformers 5 saves them) or `preprocessor_config.json`
    (image settings, as older checkpoints keep them). Without image settings, the square is the
    model's prompt encoder's `image_size`, the size its prompts are scaled to.
    """
    from transformers import Sam2Processor

    path = Path(path)
    if prefer_stock:
        try:
            return Sam2Processor.from_pretrained(str(path), local_files_only=True)
        except (ImportError, ValueError, OSError) as err:
            log.info("stock SAM2 processor unavailable (%s); building it without torchvision", str(err)[:120])
    prompts = _read(path / "processor_config.json")
    image_config = dict(prompts.get("image_processor") or _read(path / "preprocessor_config.json"))
    if "size" not in image_config:
        side = _prompt_square(path)
        image_config["size"] = {"height": side, "width": side}
    image_processor = Sam2ImageProcessorTorch(**image_config)
    settings = {k: prompts[k] for k in ("target_size", "point_pad_value") if k in prompts}
    settings.setdefault("target_size", int(image_processor.size["height"]))
    return Sam2Processor(image_processor=image_processor, **settings)


def _read(path: Path) -> dict:
    return json.loads(path.read_text()) if path.is_file() else {}


def _prompt_square(path: Path) -> int:
    config = _read(path / "config.json")
    side = (config.get("prompt_encoder_config") or {}).get("image_size")
    return int(side) if side else 1024
