"""notebooks/compare_objectives.ipynb runs top to bottom on a smoke sweep."""

from __future__ import annotations

import json

import nbformat
import pytest
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

from tests.cli.test_report import build_smoke_sweep
from visurf.config.paths import ROOT

NOTEBOOK = ROOT / "notebooks" / "compare_objectives.ipynb"
KERNEL = "visurf-test"


@pytest.fixture(scope="module")
def kernel(tmp_path_factory):
    """A kernelspec for this interpreter, so the notebook sees the installed visurf."""
    from ipykernel.kernelspec import install

    prefix = tmp_path_factory.mktemp("jupyter")
    install(kernel_name=KERNEL, prefix=str(prefix))
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
        yield KERNEL


def execute(sweep_dir, kernel_name: str, monkeypatch):
    monkeypatch.setenv("VISURF_SWEEP_DIR", str(sweep_dir))
    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = NotebookClient(
        nb, timeout=120, kernel_name=kernel_name, resources={"metadata": {"path": str(NOTEBOOK.parent)}}
    )
    client.execute()
    return nb


def test_notebook_is_committed_without_outputs():
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")


def test_notebook_runs_on_a_sweep(tmp_path_factory, kernel, monkeypatch):
    sweep = build_smoke_sweep(tmp_path_factory)
    nb = execute(sweep, kernel, monkeypatch)
    outputs = [o for cell in nb.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    tables = [o.data["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {})]
    assert tables and "| objective | reward_control |" in tables[0]
    # a reward control only where the label is injected
    assert all(f"| {name} | — |" in tables[0] for name in ("sft", "rlvr")) and "| visurf | all |" in tables[0]
    assert sum("image/png" in o.get("data", {}) for o in outputs) == 3  # reward, accuracy, test accuracy
    frames = [o.data["text/html"] for o in outputs if "text/html" in o.get("data", {})]
    assert any("against" in html and "p_value" in html for html in frames)  # visurf.compare's table
    assert (sweep / "report.md").is_file()


def test_notebook_names_a_missing_sweep(tmp_path, kernel, monkeypatch):
    with pytest.raises(CellExecutionError, match="no sweep at"):
        execute(tmp_path / "absent", kernel, monkeypatch)


def test_notebook_reads_the_committed_results(tmp_path, kernel, monkeypatch):
    """The committed comparison sweep, as a user opens it."""
    import shutil

    sweep = tmp_path / "pocket"
    shutil.copytree(
        ROOT / "experiments" / "results" / "pocket", sweep
    )  # the notebook writes its report there
    nb = execute(sweep, kernel, monkeypatch)
    outputs = [o for cell in nb.cells for o in cell.get("outputs", [])]
    assert not [o for o in outputs if o.output_type == "error"]
    table = next(o.data["text/markdown"] for o in outputs if "text/markdown" in o.get("data", {}))
    assert "strict_format_rate" in table and "| sft | — | 3 |" in table and "| visurf | all | 3 |" in table
    row = next(line for line in table.splitlines() if line.startswith("| visurf |")).split(" | ")
    summaries = [
        json.loads(p.read_text())["eval_after"]["strict_format_rate"]
        for p in sweep.glob("*_visurf_all_s*/summary.json")
    ]
    assert len(summaries) == 3 and row[8].startswith(f"{sum(summaries) / 3:.3f} ± ")  # strict_format_rate
    # The by-step cell: each objective against its own start, as visurf.compare sums it.
    from visurf.analysis import report
    from visurf.analysis.compare import against_start

    cell = next(c for c in nb.cells if c.cell_type == "code" and "against_start(runs)" in c.source)
    html = next(o.data["text/html"] for o in cell.outputs if "text/html" in o.get("data", {}))
    last = against_start(report.collect_runs(sweep)).query("objective == 'rlvr'").iloc[-1]
    assert "known.gained" in html and f"<td>{last.gained}</td>" in html and f"<td>{last.lost}</td>" in html


def test_notebook_pairs_the_reward_controls_of_the_committed_ablation(tmp_path, kernel, monkeypatch):
    """On an ablation sweep the notebook's control cell sums `all` against each other control."""
    import shutil

    from visurf.analysis import report
    from visurf.analysis.compare import against_control, summed_over_seeds

    sweep = tmp_path / "ablation"
    shutil.copytree(ROOT / "experiments" / "results" / "ablation", sweep)
    nb = execute(sweep, kernel, monkeypatch)
    cell = next(c for c in nb.cells if c.cell_type == "code" and "against_control(runs" in c.source)
    assert not [o for o in cell.outputs if o.output_type == "error"]
    html = next(o.data["text/html"] for o in cell.outputs if "text/html" in o.get("data", {}))
    expected = summed_over_seeds(against_control(report.collect_runs(sweep), "all")).set_index(
        "reward_control"
    )
    for control in ("none", "align", "no_think", "smooth"):
        assert f"<td>{control}</td>" in html
        assert f"<td>{expected.loc[control, 'gained']}</td>" in html
