"""The reference prompts, rendered through visurf's chat-template path, against the strings built
the way the public sources build them (Seg-Zero's `verl/utils/rl_dataset.py` for training,
VisionReasoner's `visurf_model.py` / `vision_reasoner_model.py` for inference)."""

from __future__ import annotations

import pytest
from PIL import Image

from visurf.data.prompt import build_prompt
from visurf.models.processing import VLProcessor

# The public sources' template, with their own placeholders, filled with str.format as they fill it.
SOURCE_TEMPLATE = (
    'Please find "{Question}" with bboxs and points.'
    "Compare the difference between object(s) and find the most closely matched object(s)."
    "Output the thinking process in <think> </think> and final answer in <answer> </answer> tags."
    "Output the bbox(es) and point(s) inside the interested object(s) in JSON format."
    "i.e., <think> thinking process here </think>"
    "<answer>{Answer}</answer>"
)
TRAIN_ANSWER = '[{"bbox_2d": [10,100,200,210], "point_2d": [30,110]}, {"bbox_2d": [225,296,706,786], "point_2d": [302,410]}]'
VISURF_ANSWER = (
    '[{"bbox_2d": [10, 100, 200, 210], "point_2d": [30, 110]}, '
    '{"bbox_2d": [225, 296, 706, 786], "point_2d": [302, 410]}]'
)
VISION = "<|vision_start|><|image_pad|><|vision_end|>"
PROBLEMS = ["The Dog On The Left.", "..a cat..", "What would you sit on?", '"the red car"']


@pytest.fixture(scope="module")
def processor(tiny_dir):
    return VLProcessor.from_pretrained(tiny_dir)


def test_seg_zero_renders_as_in_the_reference_string():
    # The rendering written out in full for one question, as the reference produces it.
    expected = (
        '<image>\nPlease find "the dog" with bboxs and points.Compare the difference between object(s) and '
        "find the most closely matched object(s).Output the thinking process in <think> </think> and final "
        "answer in <answer> </answer> tags.Output the bbox(es) and point(s) inside the interested object(s) "
        'in JSON format.i.e., <think> thinking process here </think><answer>[{"bbox_2d": [10,100,200,210], '
        '"point_2d": [30,110]}, {"bbox_2d": [225,296,706,786], "point_2d": [302,410]}]</answer>'
    )
    assert build_prompt("The Dog.", "seg_zero") == expected


@pytest.mark.parametrize("problem", PROBLEMS)
def test_seg_zero_is_the_training_prompt_token_for_token(processor, problem):
    # rl_dataset.py: "<image>\n" + the template, the question lower-cased and '.'-stripped, given to
    # the chat template as a plain string; "<image>" then becomes the vision tokens. (Its explicit
    # system message is the one Qwen2.5-VL's chat template inserts by itself.)
    user = "<image>\n" + SOURCE_TEMPLATE.format(Question=problem.lower().strip("."), Answer=TRAIN_ANSWER)
    reference = processor.tokenizer.apply_chat_template(
        [{"role": "user", "content": user}],
        chat_template=processor.chat_template,
        tokenize=False,
        add_generation_prompt=True,
    ).replace("<image>", VISION)
    ours = processor.prompt_text(build_prompt(problem, "seg_zero"))
    assert ours == reference
    assert f"{VISION}\nPlease find" in ours  # the newline follows the image, as in training
    # And as token ids, once the processor has expanded the image into its patches.
    image = Image.new("RGB", (112, 112), (120, 30, 200))
    ids = processor([build_prompt(problem, "seg_zero")], [image])["input_ids"][0].tolist()
    patches = ids.count(processor.image_token_id)
    expanded = reference.replace("<|image_pad|>", "<|image_pad|>" * patches)
    assert patches > 0 and ids == processor.tokenizer(expanded, add_special_tokens=False)["input_ids"]


@pytest.mark.parametrize(
    ("name", "answer", "strip"), [("visurf", VISURF_ANSWER, '"!'), ("vision_reasoner", TRAIN_ANSWER, '."?!')]
)
def test_the_inference_prompts_are_the_released_evaluation_s(processor, name, answer, strip):
    # The evaluation driver lower-cases and strips '."?!' first; the model class strips again and
    # sends [image, text] as one user turn: no newline between the image and the text.
    for problem in PROBLEMS:
        question = problem.lower().strip('."?!')
        text = SOURCE_TEMPLATE.format(Question=question.lower().strip(strip), Answer=answer)
        reference = processor.tokenizer.apply_chat_template(
            [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": text}]}],
            chat_template=processor.chat_template,
            tokenize=False,
            add_generation_prompt=True,
        )
        assert processor.prompt_text(build_prompt(question, name)) == reference


def test_a_template_may_place_the_image_anywhere(processor):
    text = processor.prompt_text("Look: <image> and find it.")
    assert "user\nLook: " + VISION + " and find it.<|im_end|>" in text
    # Without the marker (visurf's short prompt), the image comes first.
    assert "user\n" + VISION + "Find a cat. Think in" in processor.prompt_text(build_prompt("a cat"))
