"""A model on an evaluation set, scored by the released protocol (docs/evaluation.md).

Per batch: greedy completions of the rows' prompts (images in the model frame), each answer's
boxes and points mapped back to the original image, its mask from the segmenter when there is
one, and the sample's scores. Without a segmenter the figures are box-level (`box_giou`,
`box_ciou`) beside the box hit rate and N-Acc, which need no mask.
"""

from __future__ import annotations

import logging

import torch

from visurf.data.benchmarks import benchmark_batches
from visurf.data.dataset import frame_size
from visurf.evaluation.answers import map_answer
from visurf.evaluation.protocol import summarise
from visurf.rollout import model_inputs
from visurf.training.distributed import generation_context

log = logging.getLogger(__name__)

PROTOCOL = (
    "VisionReasoner's released evaluation (evaluation_segmentation.py, calculate_iou_with_bbox_nonobj.py)"
)


@torch.no_grad()
def greedy_texts(
    model, processor, prompts: list[str], images: list, max_new_tokens: int, device
) -> list[str]:
    """One greedy completion per prompt, generated as the released evaluation generates it.

    `generate(do_sample=False)` with the checkpoint's own generation settings left in force (a
    Qwen-Instruct checkpoint's repetition penalty of 1.05 applies to greedy decoding too), ending
    at the chat template's end of turn or any end token the checkpoint names; decoded without
    special tokens or clean-up of spaces. (Training rollouts instead neutralise those settings:
    visurf.rollout.sample.)
    """
    inputs = {k: v.to(device) for k, v in processor(prompts, images).items()}
    configured = getattr(model.generation_config, "eos_token_id", None)
    configured = configured if isinstance(configured, list) else [configured]
    eos = list(dict.fromkeys([processor.eos_token_id, *(i for i in configured if i is not None)]))
    with generation_context(model) as generate_kwargs:
        out = model.generate(
            **model_inputs(inputs),
            do_sample=False,
            max_new_tokens=max_new_tokens,
            eos_token_id=eos,
            pad_token_id=processor.pad_token_id,
            use_cache=True,
            **generate_kwargs,
        )
    new = out[:, inputs["input_ids"].shape[1] :]
    return processor.tokenizer.batch_decode(new, skip_special_tokens=True, clean_up_tokenization_spaces=False)


def evaluate_benchmark(
    model,
    processor,
    ds,
    *,
    frame,
    template: str,
    batch_size: int,
    max_new_tokens: int,
    device=None,
    segmenter=None,
    on_bad_row: str = "error",
) -> tuple[dict, list[dict]]:
    """(the set's figures, one record per sample) for `ds`, a dataset of the evaluation schema.

    Records hold the sample's ids, question, completion, boxes and points in original pixels,
    and its scores (visurf.evaluation.protocol.sample_record).
    """
    from visurf.evaluation.protocol import sample_record

    device = device or next(model.parameters()).device
    width, height = frame_size(frame)
    records: list[dict] = []
    skipped: list[str] = []
    for batch in benchmark_batches(ds, frame, template, batch_size, on_bad_row, log, skipped):
        texts = greedy_texts(
            model, processor, [b.prompt for b in batch], [b.image for b in batch], max_new_tokens, device
        )
        for item, text in zip(batch, texts):
            # Original size over the model frame, per axis, as the released code scales answers.
            answer = map_answer(text, item.original.width / width, item.original.height / height)
            masked = segmenter.answer_mask(item.original, answer.boxes, answer.points) if segmenter else None
            records.append(
                {
                    "index": item.index,
                    "image_id": item.image_id,
                    "ann_id": item.ann_id,
                    "question": item.question,
                    "completion": text,
                    "boxes": answer.boxes,
                    "points": answer.points,
                    **sample_record(answer.boxes, item.mask, masked, item.bbox),
                }
            )
        log.info("evaluated %d samples", len(records))
    figures = summarise(records, ("mask", "box") if segmenter is not None else ("box",))
    figures["level"] = "mask" if segmenter is not None else "box"
    figures["skipped_rows"] = skipped
    return figures, records
