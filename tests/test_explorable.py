"""The explorable: the exported files, the package's reference answer, and the page's JavaScript held to it.

The browser tests (marker ``book``) serve a minimal page (the chapter's markup, the page's script and the
exported smoke models) from a temporary folder and drive it in headless chromium through its permalink.
"""

from __future__ import annotations

import base64
import json
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from browser import explorable_results, load_page, require_chromium, serve
from oscbind_lite import core
from oscbind_lite.config import RunConfig, smoke, with_overrides
from oscbind_lite.data import IconTasks, glyph_bank, seeded
from oscbind_lite.train import train_same_different
from oscbind_tools.book import explorable

STATIC = Path(explorable.__file__).resolve().parent / "static" / explorable.STATIC
SPLITS = (95, 15)
PAIRS = [(0, 0), (3, 7), (12, 12), (40, 85), (99, 1)]  # fixed icon pairs, same and different, train and held out


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Smoke models of two splits (seconds each), their tasks, and their data exported into a served folder."""
    root = tmp_path_factory.mktemp("explorable")
    runs = {m: with_overrides(smoke(RunConfig()), m=m) for m in SPLITS}
    models = {m: train_same_different(r, "cpu", cache=root / "cache", progress=False).model for m, r in runs.items()}
    tasks = {m: IconTasks.from_config(r.data) for m, r in runs.items()}
    site = root / "site"
    shutil.copytree(STATIC, site / "_static" / explorable.STATIC)
    exported = explorable.export(models, tasks, site / "_static" / explorable.DATA, seed=0, accuracies={95: 0.9, 15: 0.8})
    (site / "notebooks").mkdir()
    (site / "notebooks" / "explorable.html").write_text(
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>explorable</title></head><body>"
        + explorable.page_html(list(SPLITS)) + "</body></html>")
    return {"models": models, "tasks": tasks, "site": site, "exported": exported}


def decode(t: dict) -> np.ndarray:
    return np.frombuffer(base64.b64decode(t["data"]), "<f4").reshape(t["shape"])


def read_data_file(path: Path) -> dict:
    text = path.read_text()
    match = re.fullmatch(r"\(window\.oscbindExplorableData = window\.oscbindExplorableData \|\| \[\]\)\.push\((.*)\);\n", text, re.S)
    assert match, "a data file is one push of one JSON object"
    return json.loads(match[1])


def test_export_writes_each_split_and_the_icons_compactly(trained):
    sizes = trained["exported"].sizes
    assert set(sizes) == {"icons.js", "m95.js", "m15.js"}
    icons = read_data_file(trained["site"] / "_static" / explorable.DATA / "icons.js")
    bank = glyph_bank(None)
    pixels = np.frombuffer(base64.b64decode(icons["data"]), np.uint8).reshape(icons["shape"])
    assert icons["dtype"] == "uint8" and np.array_equal(pixels.astype(np.float32) / np.float32(255), bank)  # exact
    split = read_data_file(trained["site"] / "_static" / explorable.DATA / "m15.js")
    model, tasks = trained["models"][15], trained["tasks"][15]
    assert split["train_icons"] == tasks.train_icons.tolist() and split["test_icons"] == tasks.test_icons.tolist()
    omega, J_in, J_out = model.binding.couplings()
    D, N = model.cfg.D, model.cfg.N
    fused = core.fused_coupling(omega, J_in, J_out).detach().numpy()
    assert np.array_equal(decode(split["tensors"]["J_out"]), fused[:D * N, D * N:])
    own = decode(split["tensors"]["J_in"]).copy()
    for d in range(D):
        own[d * N:(d + 1) * N, d * N:(d + 1) * N] += decode(split["tensors"]["omega"])[d]
    assert np.array_equal(own, fused[:D * N, :D * N])  # the page fuses the parts into core.fused_coupling's matrix
    assert np.array_equal(decode(split["tensors"]["conv0"]), model.encoder.features[0].weight.detach().numpy())
    assert np.array_equal(decode(split["start"]), explorable.fixed_start(D, N, 0).numpy())
    assert sizes["m15.js"] < 40_000 and sizes["icons.js"] < 150_000  # smoke model (D = 8); the book reports the real ones
    table = trained["exported"].table(15)
    assert [row[1] for row in table.rows if row[0].endswith("m15.js")] == ["the trained model of m = 15, loaded with the page"]
    assert f"{trained['exported'].split_weight(15) / 1000:.0f} kB when it opens" in table.caption


def test_export_refuses_a_model_the_page_cannot_run(trained):
    baseline = train_same_different(with_overrides(smoke(RunConfig()), m=95, bottleneck="difference"), "cpu", progress=False)
    with pytest.raises(ValueError, match="^model: the explorable runs the oscillator model"):
        explorable.weights(baseline.model)


def test_reference_is_the_models_own_forward_pass(trained):
    """reference() with the start the model would draw gives the model's own logit (eval mode, shared start)."""
    model, bank = trained["models"][95], glyph_bank(None)
    images = torch.stack([explorable.place(bank[3]), explorable.place(bank[7])])
    x0 = model.binding.initial_state(1, seeded(5, "check"))[0]  # (2, D, N), both rows equal
    ref = explorable.reference(model, images, x0)
    with torch.no_grad():
        logit = model(images[None], seeded(5, "check"))[0]
    assert ref["logit"] == pytest.approx(float(logit), abs=1e-6)
    assert ref["states"].shape == (model.cfg.T + 1, 2, model.cfg.D, model.cfg.N)
    off = explorable.reference(model, images, x0, j_out=False, omega=False, T=3)
    assert off["states"].shape[0] == 4 and model.binding.J_out_raw is not None  # the model itself is untouched


def test_place_is_the_renderers_arithmetic():
    """place() at a drawn scale and offset gives the image data.Renderer draws with them."""
    from oscbind_lite.data import Renderer

    bank = torch.tensor(glyph_bank(None))[:, None]
    renderer = Renderer()
    scale, shift = renderer.draw(1, seeded(0, "place"))[:2]
    image = renderer.render(bank, torch.tensor([17]), seeded(0, "place"))[0]
    assert torch.equal(image, explorable.place(bank[17, 0], float(scale), tuple(shift[0].tolist())))


def hash_of(m=95, a=0, b=1, T=25, gamma=0.5, jout=True, omega=True, start="shared", seed=0, place=0) -> str:
    """The page's permalink, written in its canonical order."""
    return (f"#m={m}&a={a}&b={b}&T={T}&gamma={gamma}&jout={int(jout)}&omega={int(omega)}&start={start}"
            f"&seed={seed}&place={place}")


def visit(trained, hashes: list[str]) -> tuple[list[dict], object]:
    """Open the page, set each permalink in turn and read the page's result for it."""
    require_chromium()
    return explorable_results(trained["site"], "notebooks/explorable.html", hashes)


CONTROLS = [dict(), dict(T=10, gamma=0.25), dict(jout=False), dict(omega=False, start="independent"), dict(seed=12345)]


@pytest.mark.book
def test_the_page_computes_what_the_package_computes(trained):
    """Several fixed pairs at the default controls (and a few others): the page's images, phases, coherence,
    energies and verdict equal the package's, within 1e-4 of the float32 model and 1e-6 of the same weights in
    float64 (Omega = A - A^T is rounded to float32 in the model and in the exported file, not in a float64 copy)."""
    cases = [(m, a, b, {}) for m in SPLITS for a, b in PAIRS] + [(95, 3, 7, c) for c in CONTROLS[1:]]
    results, report = visit(trained, [hash_of(m=m, a=a, b=b, **c) for m, a, b, c in cases])
    assert report.offsite_requests() == [] and report.console_errors == [] and report.failed_requests == []
    bank, worst = glyph_bank(None), {"float32": 0.0, "float64": 0.0}
    for (m, a, b, c), page in zip(cases, results):
        model = trained["models"][m]
        images = torch.stack([explorable.place(bank[a]), explorable.place(bank[b])])
        assert np.abs(np.array(page["images"]) - images.reshape(2, -1).numpy()).max() < 1e-5  # float32 grid_sample
        if not c.get("seed"):  # the page's fixed start is the package's
            assert np.array_equal(np.array(page["states"][0][:model.cfg.D * model.cfg.N]),
                                  explorable.fixed_start(model.cfg.D, model.cfg.N, 0)[0].reshape(-1).numpy())
        diffs = explorable.differences(page, model)
        assert diffs["verdict"] == 0 and max(diffs["float32"].values()) < 1e-4 and max(diffs["float64"].values()) < 1e-6, (m, a, b, c, diffs)
        worst = {k: max(worst[k], *diffs[k].values()) for k in worst}
    print(f"page vs package: max abs difference {worst['float32']:.2e} (float32 model), {worst['float64']:.2e} (float64)")


@pytest.mark.book
def test_bad_input_gives_a_result_or_a_message_never_a_stuck_page(trained):
    blank = "d" + base64.urlsafe_b64encode(bytes(128)).decode().rstrip("=")
    black = "d" + base64.urlsafe_b64encode(bytes([255] * 128)).decode().rstrip("=")
    hashes = [hash_of(a=blank), hash_of(a=black, b=black), hash_of(a=3, b=black)]
    results, report = visit(trained, hashes)
    assert report.console_errors == []
    empty, filled, mixed = results
    assert "blank" in " ".join(empty["notes"]) and math.isfinite(empty["probability"])
    assert filled["probability"] > 0 and all(math.isfinite(v) for v in filled["rho"][-1])
    assert math.isfinite(mixed["probability"])

    def bad_link(page) -> None:
        page.evaluate("location.hash = '#m=7&a=500&T=-3&gamma=nan&start=sideways&seed=%E0%A4%A'")
        page.wait_for_function("document.querySelector('.ox-status').textContent.includes('could not be used')")

    require_chromium()
    with serve(trained["site"]) as base:
        report = load_page(base + "notebooks/explorable.html", timeout_s=60, wait_for=["[data-ready]"], interact=bad_link)
    assert "m, a, T, gamma, start, seed could not be used" in report.dom_html and report.console_errors == []


@pytest.mark.book
def test_the_page_says_so_when_its_files_are_missing(trained, tmp_path):
    """The model a page opens with is missing: one line says so. Another split's file is missing: the page says so
    when it is chosen and keeps the model it has."""
    require_chromium()
    site = tmp_path / "site"
    shutil.copytree(trained["site"], site)
    (site / "_static" / explorable.DATA / "m15.js").unlink()

    def choose_15(page) -> None:
        page.select_option("#ox-split", "15")
        page.wait_for_selector(".ox-status.ox-error")

    with serve(site) as base:
        switched = load_page(base + "notebooks/explorable.html", timeout_s=60, wait_for=["[data-ready]"], interact=choose_15)
        opened = load_page(base + "notebooks/explorable.html#m=15", timeout_s=60, wait_for=[".ox-status.ox-error"])
    assert "The model of m = 15 could not load: m15.js did not load" in switched.dom_html
    assert 'data-ready="#m=95&amp;' in switched.dom_html  # still the m = 95 model, still running
    assert "The explorable could not start: m15.js did not load" in opened.dom_html


@pytest.mark.book
def test_keyboard_alone_picks_icons_and_changes_controls(trained):
    require_chromium()

    def keys(page) -> None:
        page.focus(".ox-icon[data-icon='0']")
        page.keyboard.press("ArrowRight")
        page.keyboard.press("ArrowDown")
        page.keyboard.press("Enter")  # icon 11 becomes object A, and B is selected next
        page.keyboard.press("ArrowRight")
        page.keyboard.press("Enter")  # icon 12 becomes object B
        page.focus("#ox-jout")
        page.keyboard.press("Space")
        page.wait_for_function("window.oscbindExplorable.lastHash.includes('jout=0')")

    with serve(trained["site"]) as base:
        report = load_page(base + "notebooks/explorable.html", timeout_s=60, wait_for=["[data-ready]"], interact=keys)
    assert 'data-ready="#m=95&amp;a=11&amp;b=12&amp;T=25&amp;gamma=0.5&amp;jout=0' in report.dom_html
    assert report.console_errors == []


@pytest.mark.book
def test_random_scale_and_position_are_drawn_as_in_training(trained):
    """With "random scale and position" each object is drawn at a scale in [0.7, 1.3] and an offset that keeps it
    inside the frame, with the renderer's arithmetic (the page's own random numbers)."""
    results, _ = visit(trained, [hash_of(a=12, b=40, place=777), hash_of(a=12, b=40, place=778)])
    bank = glyph_bank(None)
    for page in results:
        for icon, image, (scale, dx, dy) in zip((12, 40), page["images"], page["placements"]):
            assert 0.7 <= scale <= 1.3 and max(abs(dx), abs(dy)) <= 1 - 0.6 * scale - 2 / 32
            assert np.abs(np.array(image) - explorable.place(bank[icon], scale, (dx, dy)).reshape(-1).numpy()).max() < 1e-5
    assert results[0]["placements"] != results[1]["placements"]
    assert max(explorable.differences(results[0], trained["models"][95])["float32"].values()) < 1e-4


@pytest.mark.book
def test_a_drawing_by_mouse_or_keyboard_becomes_an_object_and_a_link(trained):
    """Drawn with the mouse (as a finger would), used as object A; drawn with the keys, used as object B; the
    link carries both drawings and reopens them; Play runs to t = T."""
    require_chromium()
    state = {}

    def draw(page) -> None:
        page.click(".ox-draw summary")
        page.click(".ox-draw button:has-text('Use the drawing')")  # nothing drawn yet: a message, nothing changes
        state["blank"] = page.text_content(".ox-status")
        page.evaluate("location.hash = '#what-runs-in-your-browser'")  # one of the page's anchors keeps the state
        page.wait_for_timeout(200)
        state["anchor"] = page.evaluate("window.oscbindExplorable.result().hash")
        page.locator(".ox-draw canvas").scroll_into_view_if_needed()
        pad = page.locator(".ox-draw canvas").bounding_box()
        page.mouse.move(pad["x"] + 30, pad["y"] + 30)
        page.mouse.down()
        page.mouse.move(pad["x"] + 130, pad["y"] + 120, steps=20)
        page.mouse.up()
        page.click(".ox-draw button:has-text('Use the drawing')")  # as object A
        page.wait_for_function("window.oscbindExplorable.lastHash.includes('&a=d')")
        page.click(".ox-draw button:has-text('Clear')")
        page.focus(".ox-draw canvas")
        for key in ["Space", "ArrowRight", "Space", "ArrowDown", "Space"]:
            page.keyboard.press(key)
        page.click("input[name=ox-active][value='1']")
        page.click(".ox-draw button:has-text('Use the drawing')")  # as object B
        page.wait_for_function("window.oscbindExplorable.lastHash.includes('&b=d')")
        state["drawn"] = page.evaluate("window.oscbindExplorable.result()")
        page.fill("#ox-time", "0")  # the slider back to the start, then Play runs it to t = T
        state["t0"] = page.text_content(".ox-time output")
        page.click(".ox-play")
        page.wait_for_function("document.querySelector('.ox-time output').textContent === 't = 25 of 25'", timeout=10_000)
        state["played"] = page.text_content(".ox-play")

    with serve(trained["site"]) as base:
        report = load_page(base + "notebooks/explorable.html#a=5&b=6", timeout_s=60, wait_for=["[data-ready]"], interact=draw)
        drawn = state["drawn"]
        again, _ = visit(trained, [drawn["hash"]])
    assert state["blank"].startswith("The drawing is blank") and state["anchor"].startswith("#m=95&a=5&b=6&")
    assert report.console_errors == [] and state["t0"] == "t = 0 of 25" and state["played"] == "Play"  # stopped at T
    a, b = (np.array(image).reshape(32, 32) for image in drawn["images"])
    assert a.sum() > 20 and b.sum() > 5 and not np.allclose(a, b)  # both drawings reached the model
    assert again[0]["images"] == drawn["images"] and again[0]["probability"] == drawn["probability"]  # the link reopens them
    assert max(explorable.differences(drawn, trained["models"][95])["float32"].values()) < 1e-4
