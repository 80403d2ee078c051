"""The tooling package: chapter parameters, result tables and statistics, provenance stamps, its command line."""

import ast
import json
import re
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

import oscbind_lite
from oscbind_lite.cache import write_csv, write_json
from oscbind_lite.config import RunConfig, smoke, with_overrides
from oscbind_tools import cli, plotting, provenance
from oscbind_tools.book import chapter, sphinx_ext
from oscbind_tools.book.chapter import Declared, ParameterError
from oscbind_tools.studies import Spec
from oscbind_tools.studies.evidence import tidy
from oscbind_tools.studies.stats import effect_size_label, interval95, mean_by, verdict
from oscbind_tools.studies.reading import Evidence, collect
from oscbind_tools.studies.table import Table, markdown_table, percent, seeds_in_words

NOTEBOOKS = Path(__file__).resolve().parents[1] / "book" / "notebooks"

# ---- chapter parameters ----

PARAMETERS = f"""{chapter.MARKER}
m: int = 95  # icons in training
seed: int = 0  # seeds everything
T: int = 25  # Kuramoto steps (a config field)
gamma: float = 0.5  # Euler step size (a config field)
rmts_steps: int = 300  # a stage-2 field
device: str = "auto"  # where to train
smoke: bool = False  # shrink training
# a comment line, not a parameter
pairs: int = 256  # the chapter's own parameter
"""


def notebook(monkeypatch, injected: str = "") -> None:
    """Pretend to be a kernel that ran the parameters cell, then papermill's injected cell (if any)."""
    history = ["", "import torch", PARAMETERS] + (["# Parameters\n" + injected] if injected else [])
    monkeypatch.setattr(chapter, "_history", lambda: history)


def namespace(**values) -> dict:
    return {"m": 95, "seed": 0, "T": 25, "gamma": 0.5, "rmts_steps": 300, "device": "cpu", "smoke": False,
            "pairs": 256, **values}


def test_declared_parameters_are_read_with_type_default_and_help():
    declared = chapter.declared_parameters(PARAMETERS)
    assert list(declared) == ["m", "seed", "T", "gamma", "rmts_steps", "device", "smoke", "pairs"]
    assert declared["gamma"] == Declared("gamma", "float", "0.5", "Euler step size (a config field)")
    assert declared["device"].default == '"auto"'


def test_setup_routes_every_declared_config_field_into_the_run(monkeypatch):
    notebook(monkeypatch, "T = 12\ngamma = 0.25\nrmts_steps = 40\nm = 50\n")
    ch = chapter.setup(namespace(T=12, gamma=0.25, rmts_steps=40, m=50, seed=3))
    assert ch.run == with_overrides(RunConfig(), T=12, gamma=0.25, rmts_steps=40, m=50, seed=3)
    assert str(ch.device) == "cpu" and not ch.smoke
    assert "m = 50 training icons and seed 3" in ch.describe() and "Smoke" not in ch.describe()


def test_setup_in_smoke_mode_starts_from_the_smoke_config_and_applies_fixed_fields_last(monkeypatch):
    notebook(monkeypatch, "smoke = True\nT = 12\n")
    ch = chapter.setup(namespace(smoke=True, T=12), symmetric=True, learn_omega=False)
    assert ch.run == with_overrides(smoke(), T=12, symmetric=True, learn_omega=False, rmts_steps=300)
    assert ch.smoke and "Smoke build" in ch.describe()
    assert chapter.setup(namespace(smoke=True, gamma=2), gamma=0.125).run.model.gamma == 0.125


def test_an_int_is_a_valid_float_parameter(monkeypatch):
    notebook(monkeypatch, "gamma = 1\n")
    assert chapter.setup(namespace(gamma=1)).run.model.gamma == 1.0


@pytest.mark.parametrize("values,task,message", [
    ({"T": 0}, "same-different", "T: must be an integer >= 1, got 0"),
    ({"gamma": float("nan")}, "same-different", "gamma: must be a finite number > 0, got nan"),
    ({"gamma": "fast"}, "same-different", "gamma: must be float, got 'fast'"),
    ({"T": True}, "same-different", "T: must be int, got True"),
    ({"smoke": 1}, "same-different", "smoke: must be bool, got 1"),
    ({"m": 97}, "rmts", "m: must be between 2 and 95 for rmts with 100 icons (its test trials need 5 held-out "
                        "icons), got 97"),
    ({"m": 1}, "same-different", "m: must be an integer >= 2, got 1"),
    ({"m": 99}, "same-different", "m: must be between 2 and 98 for same-different with 100 icons, got 99"),
    ({"device": "tpu"}, "same-different", "device: must be auto, cpu, cuda, cuda:N or mps, got 'tpu'"),
])
def test_a_bad_parameter_stops_the_chapter_with_one_line_naming_it(values, task, message, monkeypatch):
    notebook(monkeypatch, "".join(f"{k} = {v!r}\n" for k, v in values.items()))
    with pytest.raises(ParameterError) as err:
        chapter.setup(namespace(**values), task)
    assert str(err.value).startswith(message) and "\n" not in str(err.value)
    assert err.value._render_traceback_() == [f"ParameterError: {err.value}"]  # what IPython shows: one line


@pytest.mark.parametrize("m", [5, 2])
@pytest.mark.parametrize("stem,task", [("same_different", "same-different"), ("rmts", "rmts")])
def test_the_training_chapters_accept_five_and_two_training_icons(stem, task, m, monkeypatch):
    """The chapter's own parameters cell and setup call, with papermill's m: the run the chapter would train."""
    cells = [c.source for c in nbformat.read(NOTEBOOKS / f"{stem}.ipynb", as_version=4).cells if c.cell_type == "code"]
    assert f'ch.setup(globals(), task="{task}")' in cells[2]  # after the parameters and the cell that installs the code
    monkeypatch.setattr(chapter, "_history", lambda: ["", cells[0], f"# Parameters\nm = {m}\nsmoke = True\n"])
    defaults = {name: ast.literal_eval(p.default) for name, p in chapter.declared_parameters(cells[0]).items()}
    ch = chapter.setup({**defaults, "m": m, "smoke": True, "device": "cpu"}, task)
    assert ch.run == with_overrides(smoke(), m=m) and f"m = {m} training icons" in ch.describe()


def test_a_missing_glyph_folder_is_a_parameter_error(monkeypatch, tmp_path):
    monkeypatch.setattr(chapter, "_history", lambda: [PARAMETERS.replace("pairs:", 'glyphs: str | None = None  # icons\npairs:')])
    with pytest.raises(ParameterError, match="^glyphs: .* does not exist"):
        chapter.setup({**namespace(), "glyphs": str(tmp_path / "nope")})


def test_an_undeclared_parameter_is_refused(monkeypatch):
    notebook(monkeypatch, "T = 12\nTee = 3\n")
    with pytest.raises(ParameterError, match=r"^Tee: unknown parameter; this notebook takes m, seed, T, gamma, "):
        chapter.setup(namespace(T=12, Tee=3))


def test_only_the_latest_parameters_cell_counts():
    history = [PARAMETERS, "x = 1", f"{chapter.MARKER}\nm: int = 95  # icons\n", "# Parameters\nm = 50\n"]
    assert list(chapter.check_names_and_types({"m": 50}, history)) == ["m"]
    assert chapter.check_names_and_types({}, ["import torch"]) == {}  # not a chapter: nothing to check


def test_check_raises_one_line_naming_the_parameter():
    chapter.check(True, "pairs", "an integer >= 1", 5)
    with pytest.raises(ParameterError) as err:
        chapter.check(False, "pairs", "an integer >= 1", 0)
    assert str(err.value) == "pairs: must be an integer >= 1, got 0" and isinstance(err.value, ValueError)


def test_declared_type_matches_the_config_fields_type():
    assert chapter.declared_type_matches(Declared("T", "int", "25", ""))
    assert not chapter.declared_type_matches(Declared("T", "float", "25.0", ""))
    assert chapter.declared_type_matches(Declared("gamma", "float", "0.5", ""))
    assert not chapter.declared_type_matches(Declared("gamma", "int", "1", ""))
    assert chapter.declared_type_matches(Declared("glyphs", "str | None", "None", ""))
    assert not chapter.declared_type_matches(Declared("glyphs", "str", '""', ""))
    assert chapter.declared_type_matches(Declared("channels", "tuple[int, ...]", "(8, 8)", ""))
    assert chapter.declared_type_matches(Declared("rmts_lr", "float", "0.003", ""))
    assert chapter.declared_type_matches(Declared("pairs", "str", '"any"', ""))  # not a config field: any type


# ---- statistics and tables ----

def test_interval95_matches_a_hand_computation():
    mean, half, n = interval95([0.9, 0.92, 0.94, 0.96, 0.98])
    # sd = 0.0316228, t(0.975, 4) = 2.776 -> half-width 2.776 * 0.0316228 / sqrt(5) = 0.039259
    assert (round(mean, 6), round(half, 5), n) == (0.94, 0.03926, 5)
    assert interval95([0.5])[0] == 0.5 and interval95([0.5])[2] == 1
    # beyond 30 degrees of freedom the normal quantile: 40 values alternating 0 and 1 (sd = 0.50637)
    assert interval95([0, 1] * 20)[1] == pytest.approx(1.96 * 0.50637 / 40**0.5, rel=1e-4)


def test_percent_on_hand_values():
    assert percent([0.9, 0.92, 0.94, 0.96, 0.98]) == "94.0 ±\u00a03.9"  # a break only before the ±
    assert percent([0.975]) == "97.5"
    assert percent([]) == "n/a"


def test_verdict_reads_the_interval_of_paired_differences():
    # [.05, .06, .07]: mean .06, half-width 4.303 * .01 / sqrt(3) = .0248 -> the interval is above 0
    assert verdict([0.05, 0.06, 0.07]) == "better"
    assert verdict([-0.05, -0.06, -0.07]) == "worse"
    assert verdict([-0.01, 0.01, 0.02]) == "indistinguishable"
    assert verdict([0.01, 0.02, 0.03]) == "indistinguishable"  # mean .02 but half-width .0248: not resolved
    assert verdict([0.5]) == "not measured"


def test_effect_size_words_follow_cohens_conventions():
    words = {d: effect_size_label(d) for d in (0.0, 0.19, -0.2, 0.49, 0.5, -0.79, 0.8, -2.5)}
    assert words == {0.0: "negligible", 0.19: "negligible", -0.2: "small", 0.49: "small", 0.5: "medium",
                     -0.79: "medium", 0.8: "large", -2.5: "large"}


def test_seeds_are_written_in_words_never_as_a_list():
    assert seeds_in_words([0]) == "seed 0" and seeds_in_words((3, 0)) == "seeds 0 and 3"
    assert seeds_in_words(range(5)) == "seeds 0-4" and seeds_in_words([7, 0, 2]) == "seeds 0, 2 and 7"


def test_readable_raises_every_text_a_page_would_show_too_small():
    """A 10-inch figure is shown at 672 px of its 1000: 7 pt labels would be 6.5 px; afterwards no text is below
    MIN_TEXT_PX as shown, and text that was large enough keeps its size."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 3))
    ax.plot([0, 1], [0, 1], label="a line")
    ax.set_xlabel("small", fontsize=7)
    ax.set_title("large", fontsize=14)
    ax.tick_params(labelsize=6)
    ax.legend(fontsize=7)
    plotting.readable(fig)
    shown = plotting.COLUMN_PX / (10 * fig.dpi)
    texts = [t for t in fig.findobj(plt.Text) if t.get_text()]
    assert min(t.get_fontsize() for t in texts) * fig.dpi / 72 * shown >= plotting.MIN_TEXT_PX - 1e-9
    assert ax.title.get_fontsize() == 14
    plt.close(fig)


def test_code_in_glued_text_becomes_inline_code():
    from docutils import nodes
    from docutils.utils import new_document

    doc = new_document("page")
    doc += nodes.paragraph("", "", nodes.inline("", "run `make lab` here", classes=["pasted-text"]))
    sphinx_ext.code_in_pasted_text(None, doc, "page")
    pasted = next(doc.findall(nodes.inline))
    assert [type(c).__name__ for c in pasted.children] == ["Text", "literal", "Text"]
    assert pasted.astext() == "run make lab here" and "`" not in doc.astext()


def test_a_table_is_labelled_once_on_its_page(caplog):
    """A caption that repeats its dropdown's "Table N" loses it; two tables with one number are a warning."""
    from docutils import nodes
    from docutils.utils import new_document

    def page(*numbers):
        doc = new_document("page")
        for n in numbers:
            raw = nodes.raw("", f"<table><caption>Table {n}. What it holds</caption></table>", format="html")
            doc += nodes.admonition("", nodes.title("", f"Table {n}: in numbers"), raw)
        return doc

    doc = page(1, 2)
    sphinx_ext.label_tables_once(None, doc, "page")
    assert [r.astext() for r in doc.findall(nodes.raw)] == ["<table><caption>What it holds</caption></table>"] * 2
    assert "two tables" not in caplog.text
    sphinx_ext.label_tables_once(None, page(1, 1), "page")
    assert "page: two tables are labelled Table 1" in caplog.text


def test_table_html_has_a_caption_and_escapes_its_text():
    table = Table(["model", "a<b"], [["oscillator", 0.97], ["<script>", "x & y"]], caption="Held-out accuracy <m = 95>")
    html = table._repr_html_()
    assert html.startswith("<table") and html.endswith("</table>")
    assert "<caption>Held-out accuracy &lt;m = 95&gt;</caption>" in html
    assert "<th>a&lt;b</th>" in html and "<td>&lt;script&gt;</td>" in html and "<td>x &amp; y</td>" in html
    assert "<script>" not in html and html.count("<tr>") == 3
    assert "<caption>" not in Table(["a"], [[1]])._repr_html_()
    assert repr(table).splitlines()[0] == "Held-out accuracy <m = 95>"  # plain text in a terminal


def metrics(folder, **values):
    row = {"task": "same-different", "m": 95, "seed": 0, "test_accuracy": 0.9, "train_accuracy": 0.95, "steps": 24,
           "wall_seconds": 3.4, "device": "cpu", **values}
    write_json(folder / "metrics.json", row)


def test_collect_sorts_runs_and_the_markdown_table_shows_percentages(tmp_path):
    metrics(tmp_path / "a", m=15, seed=1, test_accuracy=0.625)
    metrics(tmp_path / "b" / "deep", m=95, seed=1)
    metrics(tmp_path / "c", m=95, seed=0, task="rmts")
    metrics(tmp_path / "d", m=95, seed=0)
    rows = collect(tmp_path)
    assert [(r["task"], r["m"], r["seed"]) for r in rows] == [("rmts", 95, 0), ("same-different", 95, 0),
                                                               ("same-different", 95, 1), ("same-different", 15, 1)]
    lines = markdown_table(rows).splitlines()
    assert lines[0].startswith("| task | m | seed | test_accuracy") and len(lines) == 6
    assert lines[-1] == "| same-different | 15 | 1 | 62.5 % | 95.0 % | 24 | 3 | cpu |"
    means = mean_by(rows, ("task", "m"), "test_accuracy")
    assert means[("same-different", 95)] == {"mean": pytest.approx(0.9), "n": 2, "values": [0.9, 0.9]}


def write_run(results, spec: Spec, accuracy: float, fidelity: bool = False):
    """A finished evidence job's file, as run_job writes it."""
    rows = [{"run": spec.id, "variant": spec.variant, "task": task, "m": spec.m, "seed": spec.seed,
             "test_accuracy": accuracy - shift, "train_accuracy": 1.0, "steps": 24, "wall_seconds": 2.5, "cached": False,
             "config_hash": "abc", "version": "0.2.0", "git_commit": "0123456789abcdef+dirty", "device": "cpu",
             "threads": 1, "smoke": True, "torch": "2.13.0", "compile": False, "cpu": "x86", "gpu": ""}
            for task, shift in (("same-different", 0.0), ("rmts", 0.25))]
    f = {"descent": {"share_non_increasing": 1.0, "transitions": 10, "largest_increase": -0.5},
         "gap": {"mean_same": -3.0, "mean_different": -2.0, "difference": -1.0, "cohens_d": -0.75},
         "locked_same": 0.75, "locked_different": 0.25, "pairs": 4} if fidelity else {}
    write_json(results / "runs" / f"{spec.id}.json", {"spec": {"variant": spec.variant, "m": spec.m, "seed": spec.seed},
                                                      "rows": rows, "fidelity": f})


@pytest.fixture
def evidence_folder(tmp_path):
    """Tidy CSVs of a tiny study: the oscillator at seeds 0, 1, 2; the difference baseline at seeds 2 and 0
    (and at another split), written by the evidence engine's own tidy step."""
    accuracies = {("oscillator", 95, 0): 0.9, ("oscillator", 95, 1): 0.8, ("oscillator", 95, 2): 0.75,
                  ("difference", 95, 2): 0.625, ("difference", 95, 0): 0.5, ("difference", 50, 1): 0.125}
    specs = [Spec(v, m, s) for v, m, s in accuracies]
    for spec in specs:
        write_run(tmp_path, spec, accuracies[(spec.variant, spec.m, spec.seed)], fidelity=spec.variant == "oscillator")
    tidy(tmp_path, specs)
    write_json(tmp_path / "profile.json", {"profile": "tiny", "jobs": 6, "wall_seconds": 7200, "workers": 2, "threads": 1})
    return tmp_path


def test_evidence_reads_back_what_tidy_wrote_with_numbers_as_numbers(evidence_folder):
    ev = Evidence.load(evidence_folder)
    assert len(ev.runs) == 12 and len(ev.fidelity) == 3
    row = next(r for r in ev.runs if r["run"] == "oscillator-m95-seed1" and r["task"] == "rmts")
    assert (row["m"], row["seed"], row["test_accuracy"], row["wall_seconds"]) == (95, 1, 0.55, 2.5)
    assert ev.seeds == [0, 1, 2] and ev.splits("difference") == [95, 50] and ev.splits() == [95]
    assert ev.fidelity_of("oscillator", "cohens_d") == [-0.75] * 3 and ev.fidelity_of("difference", "cohens_d") == []
    assert ev.by_seed("oscillator", "same-different", 95) == {0: 0.9, 1: 0.8, 2: 0.75}
    assert "12 rows from 6 runs, seeds [0, 1, 2]" in ev.provenance() and "2.00 h" in ev.provenance()
    assert "0123456789ab+dirty" in ev.provenance()


def test_paired_differences_match_runs_by_seed(evidence_folder):
    ev = Evidence.load(evidence_folder)
    # seeds both ran at m = 95: 0 (0.9 - 0.5) and 2 (0.75 - 0.625); seed 1 of the baseline is at m = 50 only
    assert ev.paired("oscillator", "difference", "same-different", 95) == pytest.approx([0.4, 0.125])
    assert ev.paired("difference", "oscillator", "rmts", 95) == pytest.approx([-0.4, -0.125])  # seeds 0 and 2
    assert ev.paired("oscillator", "difference", "same-different", 50) == []


def test_the_few_profiles_results_make_tables_and_figures_of_their_own_splits(tmp_path):
    """Splits 5 and 2, RMTS near or below chance: every split and every interval stays on the figures."""
    from oscbind_tools import plotting
    from oscbind_tools.studies import plan
    from oscbind_tools.studies.mechanism import accuracy_figure
    from oscbind_tools.studies.paper import MAIN

    specs = plan("few")
    for k, spec in enumerate(specs):
        write_run(tmp_path, spec, 0.5 + 0.02 * (k % 7) + (0.2 if spec.m == 5 else 0.0))  # RMTS at m = 2: 0.25-0.37
    tidy(tmp_path, specs)
    write_json(tmp_path / "profile.json", {"profile": "few"})
    ev = Evidence.load(tmp_path)
    assert ev.splits() == [5, 2] and ev.seeds == [0, 1, 2, 3, 4] and len(ev.accuracies("concat", "rmts", 2)) == 5
    fig = accuracy_figure(ev, list(MAIN))
    low = min(100 * (mean - half) for model in MAIN for task in ("same-different", "rmts") for m in (5, 2)
              for mean, half, _ in [interval95(ev.accuracies(model, task, m))])
    assert low < 40 and fig.axes[0].get_ylim()[0] <= low
    assert [t.get_text() for t in fig.axes[0].get_xticklabels()] == ["5", "2"]
    bars = plotting.accuracy_bars({"rmts": {5: 0.6, 2: 0.3}, "same-different": {5: 0.8, 2: 0.55}})
    assert bars.axes[0].get_ylim()[0] <= 30 and [t.get_text() for t in bars.axes[0].get_xticklabels()] == ["m = 5", "m = 2"]
    assert plotting.accuracy_bars({"rmts": {95: 0.9, 15: 0.7}}).axes[0].get_ylim() == (40, 105)  # the default axis


def test_evidence_load_reads_a_hand_written_csv(tmp_path):
    write_csv(tmp_path / "runs.csv", ["run", "variant", "task", "m", "seed", "test_accuracy", "train_accuracy",
                                      "wall_seconds"],
              [{"run": "r", "variant": "oscillator", "task": "rmts", "m": "15", "seed": "4", "test_accuracy": "0.5",
                "train_accuracy": "1", "wall_seconds": "12"}])
    write_csv(tmp_path / "fidelity.csv", ["run", "variant", "m", "cohens_d"],
              [{"run": "r", "variant": "oscillator", "m": 15, "cohens_d": "-1.5"}])
    (tmp_path / "profile.json").write_text("{}")
    ev = Evidence.load(tmp_path)
    assert ev.runs[0]["m"] == 15 and ev.runs[0]["train_accuracy"] == 1.0 and isinstance(ev.runs[0]["m"], int)
    assert ev.fidelity == [{"run": "r", "variant": "oscillator", "m": 15.0, "cohens_d": -1.5}]
    assert ev.fidelity_of("oscillator", "cohens_d", m=15) == [-1.5]


# ---- provenance ----

def test_a_stamp_equals_itself_after_a_json_round_trip():
    """Saved stamps come back from JSON: tuples become lists, so stamp() normalises them the same way."""
    made = provenance.stamp(parameters={"channels": (8, 8), "m": 95}, notebook="abc")
    assert made["version"] == oscbind_lite.__version__ and made["code"] == provenance.code_fingerprint()
    assert made["parameters"]["channels"] == [8, 8]
    assert provenance.is_current(json.loads(json.dumps(made)), made)
    assert not provenance.is_current({**made, "notebook": "abd"}, made)
    assert not provenance.is_current(None, made) and not provenance.is_current("stamp", made)


def copy_sources(src, dst):
    """Every module of a package, its sub-packages' too, at the same relative paths."""
    for f in src.rglob("*.py"):
        (dst / f.relative_to(src)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(f, dst / f.relative_to(src))
    return dst


def test_the_code_fingerprint_changes_with_an_edit_of_either_package(tmp_path, monkeypatch):
    lite, tools = provenance.PACKAGES
    fingerprint = provenance.code_fingerprint.__wrapped__  # the uncached computation
    versions = {}
    for name, edit in (("original", None), ("science", "core.py"), ("tooling", "studies/stats.py")):
        pair = (copy_sources(lite, tmp_path / name / "lite"), copy_sources(tools, tmp_path / name / "tools"))
        if edit:
            target = pair[0 if edit == "core.py" else 1] / edit
            target.write_text(target.read_text() + "\n# an edit\n")
        monkeypatch.setattr(provenance, "PACKAGES", pair)
        versions[name] = fingerprint()
    assert len(set(versions.values())) == 3
    monkeypatch.setattr(provenance, "PACKAGES", (lite, tools))
    assert fingerprint() == versions["original"] == provenance.code_fingerprint()  # the copy is the code itself


def test_git_commit_is_a_commit_or_unknown():
    assert re.fullmatch(r"[0-9a-f]{40}(\+dirty)?|unknown", provenance.git_commit())


# ---- the tooling's command line ----

def run_cli(argv, capsys):
    try:
        status = cli.main(argv)
    except SystemExit as exit:
        status = exit.code
    out = capsys.readouterr()
    return status, out.out, out.err


def test_summary_prints_the_table_of_every_run(tmp_path, capsys):
    metrics(tmp_path / "a", m=50, seed=2, test_accuracy=0.5)
    status, out, _ = run_cli(["summary", str(tmp_path)], capsys)
    assert status == 0 and out.splitlines()[-1].startswith("| same-different | 50 | 2 | 50.0 % |")


@pytest.mark.parametrize("argv,message", [
    (["summary", "EMPTY"], "error: root: no metrics.json under "),
    (["sweep", "--book", "EMPTY"], "error: book: "),
    (["sweep", "--freeze", "--runs", "EMPTY/results"], "error: freeze: "),
    (["evidence", "--profile", "huge", "--results", "EMPTY/results"], "error: profile: must be one of paper, smoke"),
    (["evidence", "--profile", "smoke", "--workers", "0", "--results", "EMPTY/results"], "error: workers: "),
    (["evidence", "--profile", "smoke", "--device", "tpu", "--results", "EMPTY/results"], "error: device: "),
    (["train"], "invalid choice"),  # training is the science package's command
])
def test_bad_tooling_input_is_one_line_with_status_2(argv, message, tmp_path, capsys):
    status, _, err = run_cli([str(tmp_path) if a == "EMPTY" else a.replace("EMPTY", str(tmp_path)) for a in argv], capsys)
    assert status == 2 and len(err.strip().splitlines()) == 1 and message in err, err
    assert not (tmp_path / "results").exists()


def test_paired_p_matches_students_t_quantiles_and_a_hand_computation():
    from oscbind_tools.studies.stats import _T975, incomplete_beta, paired_p

    for df in (1, 4, 10, 30):  # the 97.5 % quantile of t has two-sided p = 0.05
        t = _T975[df - 1]
        assert abs(incomplete_beta(df / 2, 0.5, df / (df + t * t)) - 0.05) < 2e-4
    # mean 0.02, sd 0.0079057, t = 5.657 on 4 degrees of freedom: p = 0.0048
    assert abs(paired_p([0.01, 0.02, 0.03, 0.015, 0.025]) - 0.0048) < 1e-4
    assert paired_p([0.5]) != paired_p([0.5])  # nan with one value


def test_holm_adjusts_a_family_step_down_and_keeps_the_order():
    from oscbind_tools.studies.stats import holm

    assert holm([0.01, 0.04, 0.03, 0.2]) == [0.04, 0.09, 0.09, 0.2]
    assert holm([0.5, 0.6]) == [1.0, 1.0]


def test_welch_matches_a_hand_computation_and_reads_published_cells():
    from oscbind_tools.studies.stats import from_interval, welch_p, welch_summary

    # means 3 and 1, sds 1 and 2, n 5 and 5: t = 2 / sqrt(0.2 + 0.8) = 2.0, df = 1 / (0.04 / 4 + 0.64 / 4) = 5.88
    a, b = [1.5, 2.5, 3, 3.5, 4.5], [1 - 2.5 ** 0.5 * 1.2649, 1, 1, 1, 1 + 2.5 ** 0.5 * 1.2649]
    assert abs(welch_summary((3, 0.2 ** 0.5, 5), (1, 0.8 ** 0.5, 5))[0] - 2.0) < 1e-12
    assert abs(welch_summary((3, 0.2 ** 0.5, 5), (1, 0.8 ** 0.5, 5))[1] - 0.0935) < 2e-3  # t = 2 on 5.88 df
    assert abs(welch_p(a, b) - welch_summary((3, (sum((x - 3) ** 2 for x in a) / 4 / 5) ** 0.5, 5),
                                             (1, (sum((x - 1) ** 2 for x in b) / 4 / 5) ** 0.5, 5))[1]) < 1e-12
    mean, se, n = from_interval(90.0, 2.776, 5)
    assert (mean, n) == (90.0, 5) and abs(se - 1.0) < 1e-12


def test_the_readme_and_the_intro_open_with_the_thesis_and_the_readme_holds_the_graded_claims():
    from oscbind_tools.findings import BLOCKS, Findings, block, blocks

    root = Path(__file__).resolve().parents[1]
    readme = (root / "README.md").read_text()
    assert len(readme.splitlines()) <= 250  # the front door; detail lives in the book
    made = blocks(Findings.load(root / "results"))
    for page, names in BLOCKS.items():
        text = (root / page).read_text()
        for name in names:
            assert block(text, name) == made[name].strip(), f"{page}: run `python -m oscbind_tools findings --write`"
        # the thesis comes first: before any other paragraph of the page
        first = next(p for p in text.split("\n\n")[1:] if p.strip())
        assert first.startswith("<!-- thesis:"), page
    assert len(made["thesis"].split(". ")) >= 3 and all(grade in made["findings"] for grade in
                                                         ("holds", "holds in part", "not supported"))


def test_findings_write_refuses_a_page_without_its_block_in_one_line(tmp_path):
    for page in ("README.md", "book/intro.md"):
        (tmp_path / page).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / page).write_text("# a page without markers\n")
    r = subprocess.run([sys.executable, "-m", "oscbind_tools", "findings", "--write", "--results",
                        str(Path(__file__).resolve().parents[1] / "results")], cwd=tmp_path, capture_output=True,
                       text=True, env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])})
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "thesis" in r.stderr, r.stderr