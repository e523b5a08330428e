"""W&B (offline) and MLflow (a local store) through Lightning's loggers, read back from what they
wrote: the resolved config, every metric, the summary and the completions tables with images."""

from __future__ import annotations

import base64
import csv
import glob
import io
import json
import re
import struct

import pytest
from PIL import Image

from tests.conftest import run

BLOCK = 32768  # the W&B transaction log's block size (a LevelDB-style log)


def wandb_records(path: str) -> list:
    """Every record of an offline W&B run file (`run-ID.wandb`): a 7-byte file header, then
    records in 32 KiB blocks, each chunk headed by crc32 (4), length (2) and type (1 full,
    2 first, 3 middle, 4 last)."""
    from wandb.proto import wandb_internal_pb2 as pb

    raw = open(path, "rb").read()
    assert raw[:4] == b":W&B", "not a W&B run file"
    pos, buffer, out = 7, b"", []
    while pos + 7 <= len(raw):
        left = BLOCK - pos % BLOCK
        if left < 7:  # the block's tail is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", raw[pos : pos + 7])
        if length == 0 and kind == 0:
            pos += left
            continue
        buffer += raw[pos + 7 : pos + 7 + length]
        pos += 7 + length
        if kind in (1, 4):
            record = pb.Record()
            record.ParseFromString(buffer)
            out.append(record)
            buffer = b""
    return out


def wandb_run(run_dir) -> dict:
    """config, history rows, summary and table artifacts of the run's one offline W&B run."""
    files = glob.glob(str(run_dir / "wandb" / "offline-run-*" / "run-*.wandb"))
    assert len(files) == 1, files
    config, history, summary, artifacts, kinds = {}, [], {}, [], []
    for record in wandb_records(files[0]):
        kind = record.WhichOneof("record_type")
        kinds.append(kind)
        if kind in ("run", "config"):  # a config update may be folded into the run's first record
            updates = record.run.config.update if kind == "run" else record.config.update
            config.update({u.key: json.loads(u.value_json) for u in updates})
        elif kind == "history":
            history.append(
                {"/".join(i.nested_key) or i.key: json.loads(i.value_json) for i in record.history.item}
            )
        elif kind == "summary":
            summary.update(
                {u.key or "/".join(u.nested_key): json.loads(u.value_json) for u in record.summary.update}
            )
        elif kind == "artifact":
            artifacts.append(record.artifact)
    return {"config": config, "history": history, "summary": summary, "artifacts": artifacts, "kinds": kinds}


def metrics_rows(run_dir) -> list[dict]:
    with open(run_dir / "metrics.csv") as f:
        return [r for r in csv.DictReader(f) if r.get("train/reward")]


def page_images(html: str) -> list[Image.Image]:
    uris = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    return [Image.open(io.BytesIO(base64.b64decode(u))) for u in uris]


@pytest.fixture(scope="module")
def tracked_run(tmp_path_factory):
    import os

    tmp = tmp_path_factory.mktemp("tracked")
    env = {f"WANDB_{k}_DIR": str(tmp / f"wandb-{k.lower()}") for k in ("DATA", "CACHE", "CONFIG")}
    old = {k: os.environ.get(k) for k in env}
    os.environ.update(env)  # W&B's staging and settings stay in the test's folder
    try:
        run_dir, summary = run(
            tmp,
            "experiment=smoke",
            "objective=visurf",
            "logging.wandb=true",
            "logging.mlflow=true",
            "logging.samples_every=1",
            "trainer.max_steps=1",
        )
    finally:
        for k, v in old.items():
            os.environ.pop(k) if v is None else os.environ.__setitem__(k, v)
    return run_dir, summary


def test_the_completions_page_shows_each_row_beside_its_image(tracked_run):
    run_dir, _ = tracked_run
    rows = metrics_rows(run_dir)
    first = next(r for r in rows if float(r["step"]) == 0)  # the first batch's row (logged at step 0)
    records = [json.loads(line) for line in (run_dir / "samples" / "train_step00001.jsonl").open()]
    html = (run_dir / "samples" / "train_step00001.html").read_text()
    labels = [r for r in records if r["is_label"]]
    rollouts = [r for r in records if not r["is_label"]]
    batch, group = 2, 2  # experiment=smoke
    assert len(labels) == round(float(first["train/label/entered"]) * batch)
    assert len(rollouts) + len(labels) == len(records) and len(rollouts) <= batch * group
    assert html.count("<tr class=") == len(records)
    # The advantages and rewards in the table are the ones the step logged.
    mean_abs = sum(abs(r["advantage"]) for r in records) / len(records)
    assert mean_abs == pytest.approx(float(first["train/advantage_abs"]), rel=1e-5)
    if labels:
        label_reward = sum(r["rewards"]["total"] for r in labels) / len(labels)
        assert label_reward == pytest.approx(float(first["train/label/reward"]), rel=1e-5)
    assert {"accuracy", "think_format", "total"} <= rollouts[0]["rewards"].keys()
    # A prompt's image is inline once for its consecutive rows, in the model frame (112 px).
    images = page_images(html)
    runs = sum(1 for i, r in enumerate(records) if i == 0 or r["id"] != records[i - 1]["id"])
    assert len(images) == runs and all(im.size == (112, 112) for im in images)
    assert html.count("<i>as above</i>") == len(records) - runs
    assert [im.size for im in page_images((run_dir / "samples" / "eval_step00000.html").read_text())] == [
        (112, 112)
    ] * 2  # eval.num_samples_logged=2


def test_wandb_offline_holds_config_metrics_summary_and_tables_with_images(tracked_run):
    run_dir, summary = tracked_run
    wb = wandb_run(run_dir)
    # what the file held, should its config lack a key
    held = f"config keys {sorted(wb['config'])}, records {wb['kinds']}"
    assert "objective" in wb["config"] and "seed" in wb["config"], held
    assert wb["config"]["objective"]["name"] == "visurf" and wb["config"]["seed"] == 0
    logged = {
        row["trainer/global_step"]: row["train/reward"] for row in wb["history"] if "train/reward" in row
    }
    assert logged == {int(r["step"]): pytest.approx(float(r["train/reward"])) for r in metrics_rows(run_dir)}
    evals = [row for row in wb["history"] if "eval/accuracy" in row]
    assert len(evals) == 2  # before and after
    after = summary["eval_after"]["accuracy"]
    assert wb["summary"]["summary/eval_after/accuracy"] == pytest.approx(after)
    [saved] = glob.glob(str(run_dir / "wandb" / "offline-run-*" / "files" / "summary.json"))
    assert json.loads(open(saved).read()) == summary
    tables = {}
    for artifact in wb["artifacts"]:
        paths = {c.path: c.local_path for c in artifact.manifest.contents}
        tables.setdefault(artifact.name.split("-")[2], []).append(paths)
    assert set(tables) == {"samplestrain", "sampleseval"}
    assert len(tables["samplestrain"]) == 1  # step 1
    train = tables["samplestrain"][0]
    table = json.loads(open(train["samples/train.table.json"]).read())
    records = (run_dir / "samples" / "train_step00001.jsonl").read_text().splitlines()
    assert len(table["data"]) == len(records)
    assert table["columns"][:4] == ["id", "prompt", "images", "completion"]
    pngs = [local for path, local in train.items() if path.startswith("media/images/")]
    assert pngs and all(Image.open(p).size == (112, 112) for p in pngs)


def test_mlflow_store_holds_config_metrics_summary_and_tables_with_images(tracked_run):
    from mlflow.tracking import MlflowClient

    run_dir, summary = tracked_run
    client = MlflowClient(tracking_uri=f"sqlite:///{run_dir / 'mlflow' / 'mlflow.db'}")
    run_id = (run_dir / "mlflow" / "run_id").read_text().strip()
    data = client.get_run(run_id).data
    assert data.params["objective/name"] == "visurf" and data.params["rollout/num_generations"] == "2"
    history = {m.step: m.value for m in client.get_metric_history(run_id, "train/reward")}
    assert history == {int(r["step"]): pytest.approx(float(r["train/reward"])) for r in metrics_rows(run_dir)}
    assert data.metrics["summary/eval_after/accuracy"] == pytest.approx(summary["eval_after"]["accuracy"])
    root = run_dir / "mlflow" / "artifacts"
    [artifacts] = list(root.glob(f"{run_id}/artifacts"))
    assert json.loads((artifacts / "summary.json").read_text()) == summary
    assert (artifacts / "config.yaml").read_text() == (run_dir / "config.yaml").read_text()
    assert (artifacts / "samples" / "train_step00001.html").read_text() == (
        run_dir / "samples" / "train_step00001.html"
    ).read_text()
    table = json.loads((artifacts / "samples" / "train_step00001.json").read_text())
    records = (run_dir / "samples" / "train_step00001.jsonl").read_text().splitlines()
    assert len(table["data"]) == len(records)
    images = table["columns"].index("images")
    stored = [row[images]["filepath"] for row in table["data"]]
    assert all(Image.open(artifacts / path).size == (112, 112) for path in stored)
    assert (artifacts / "samples" / "eval_step00000.json").is_file()


def test_a_resumed_run_continues_its_tracker_runs(tmp_path, monkeypatch):
    from mlflow.tracking import MlflowClient

    for k in ("DATA", "CACHE", "CONFIG"):
        monkeypatch.setenv(f"WANDB_{k}_DIR", str(tmp_path / f"wandb-{k.lower()}"))
    tracked = ("experiment=smoke", "objective=rlvr", "logging.wandb=true", "logging.mlflow=true")
    run_dir, _ = run(tmp_path, *tracked, "trainer.max_steps=1")
    run_id = (run_dir / "mlflow" / "run_id").read_text().strip()
    wandb_id = (run_dir / "wandb" / "run_id").read_text().strip()
    wandb_id = (run_dir / "wandb" / "run_id").read_text().strip()
    from visurf.config.compose import compose_config
    from visurf.recipes.train import train

    train(
        compose_config([*tracked, "trainer.max_steps=2", f"resume={run_dir}"]), run_dir
    )  # the same directory
    assert (run_dir / "mlflow" / "run_id").read_text().strip() == run_id
    client = MlflowClient(tracking_uri=f"sqlite:///{run_dir / 'mlflow' / 'mlflow.db'}")
    assert [m.step for m in client.get_metric_history(run_id, "train/reward")] == [0, 1]
    tracker_run = client.get_run(run_id)
    assert len(client.search_runs([tracker_run.info.experiment_id])) == 1
    # MLflow keeps a param's first value; what the resumed part changed is a tag
    assert tracker_run.data.params["trainer/max_steps"] == "1"
    assert tracker_run.data.tags["resumed/trainer/max_steps"] == "2"
    parts = sorted(glob.glob(str(run_dir / "wandb" / "offline-run-*" / "run-*.wandb")))
    assert len(parts) == 2 and {p.rsplit("run-", 1)[-1] for p in parts} == {
        f"{wandb_id}.wandb"
    }  # one W&B run
    # a run that is not resumed starts new tracker runs, in the same directory too
    run(tmp_path, *tracked, "trainer.max_steps=1")
    assert (run_dir / "mlflow" / "run_id").read_text().strip() != run_id
    assert (run_dir / "wandb" / "run_id").read_text().strip() != wandb_id


def test_tables_of_rows_with_no_one_and_two_images(tmp_path, monkeypatch):
    from omegaconf import OmegaConf

    from visurf.runs.completions import Completion, write_page
    from visurf.training import tracking

    for k in ("DATA", "CACHE", "CONFIG"):
        monkeypatch.setenv(f"WANDB_{k}_DIR", str(tmp_path / f"wandb-{k.lower()}"))
    cfg = OmegaConf.create({"logging": {"wandb": True, "mlflow": True}, "resume": None})
    loggers = tracking.tracking_loggers(cfg, tmp_path)
    red, blue = Image.new("RGB", (50, 40), "red"), Image.new("RGB", (30, 40), "blue")
    rows = [
        Completion("text", "2+2?", [], "4", {"total": 1.0}, 0.5),
        Completion("two", "which?", [red, blue], "the red", {"total": 0.0}, -0.5),
        Completion("one", "find", [red], "[]", {"total": 2.0}, 0.0, is_label=True),
    ]
    page = tmp_path / "samples" / "train_step00001.html"
    write_page(page, "step 1", rows)
    tracking.log_completions(loggers, "samples/train", 1, rows, page)
    next(lg for lg in loggers if type(lg).__name__ == "MLFlowLogger").finalize("success")
    tracking.close(loggers)

    # MLflow: one picture a row (two images side by side), a blank one for the text-only row
    [table_file] = glob.glob(
        str(tmp_path / "mlflow" / "artifacts" / "*" / "artifacts" / "samples" / "*.json")
    )
    table = json.loads(open(table_file).read())
    root = table_file.rsplit("/samples/", 1)[0]
    column = table["columns"].index("images")
    sizes = [Image.open(f"{root}/{row[column]['filepath']}").size for row in table["data"]]
    assert sizes == [(16, 16), (80, 40), (50, 40)]
    assert [row[table["columns"].index("num_images")] for row in table["data"]] == [0, 2, 1]
    # W&B: the table's cells, the text-only row's image cell empty
    [artifact] = [a for a in wandb_run(tmp_path)["artifacts"] if "samplestrain" in a.name]
    paths = {c.path: c.local_path for c in artifact.manifest.contents}
    data = json.loads(open(paths["samples/train.table.json"]).read())["data"]
    assert [row[0] for row in data] == ["text", "two", "one"] and data[0][2] is None
    pngs = sorted(Image.open(p).size for k, p in paths.items() if k.startswith("media/images/"))
    assert pngs == [(50, 40), (80, 40)]
