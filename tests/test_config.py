"""The one configuration: every setting reachable by one public name, typed, documented and validated."""

import dataclasses
import math

import pytest

from oscbind_lite.config import (SMOKE, DataConfig, ModelConfig, RunConfig, TrainConfig, check_m, coerce, settings,
                                 smoke, type_name, with_overrides)

PARTS = {"data": DataConfig, "model": ModelConfig, "stage1": TrainConfig, "stage2": TrainConfig}


def test_with_overrides_routes_each_name_to_its_part():
    run = with_overrides(RunConfig(), m=50, seed=3, T=10, gamma=0.25, learn_omega=False, steps=500, lr=1e-3,
                         rmts_steps=100, rmts_lr=0.01, channels=[8, 16])
    assert (run.data.m, run.data.seed) == (50, 3)
    assert (run.model.T, run.model.gamma, run.model.learn_omega, run.model.channels) == (10, 0.25, False, (8, 16))
    assert (run.stage1.steps, run.stage1.lr) == (500, 1e-3)
    assert (run.stage2.steps, run.stage2.lr) == (100, 0.01)
    default = RunConfig()
    assert run.stage1.batch_size == default.stage1.batch_size and run.stage2.eval_every == default.stage2.eval_every
    assert RunConfig() == default  # the original is a frozen value, never changed


def test_every_setting_changes_exactly_its_own_field():
    base = RunConfig()
    for name, s in settings().items():
        value = new_value(s)
        run = with_overrides(base, **{name: value})
        assert getattr(getattr(run, s.part), s.field) == value, name
        others = {k: v for k, v in flat(run).items() if k != name}
        assert others == {k: v for k, v in flat(base).items() if k != name}, name


def new_value(s):
    """A value of the setting's type that differs from its default."""
    if s.choices:
        return next(c for c in s.choices if c != s.default)
    if s.type is bool:
        return not s.default
    if s.type is int:
        return s.default + 1
    if s.type is float:
        return s.default * 2 + 1.0
    if s.name == "channels":
        return (3, 5)
    return "some/folder"  # glyphs: str | None


def flat(run: RunConfig) -> dict:
    """Every setting's value by public name, read straight from the dataclasses."""
    out = {}
    for part, cls in PARTS.items():
        for f in dataclasses.fields(cls):
            out[("rmts_" if part == "stage2" else "") + f.name] = getattr(getattr(run, part), f.name)
    return out


def test_settings_cover_every_field_once_with_stage2_prefixed():
    names = settings()
    assert len(names) == sum(len(dataclasses.fields(cls)) for cls in PARTS.values())
    assert set(names) == set(flat(RunConfig()))
    assert {s.part for s in names.values() if s.name.startswith("rmts_")} == {"stage2"}
    assert all(s.part != "stage2" for s in names.values() if not s.name.startswith("rmts_"))
    assert names["rmts_steps"].default == RunConfig().stage2.steps != names["steps"].default


def test_every_config_field_has_help_text():
    for cls in (DataConfig, ModelConfig, TrainConfig):
        for f in dataclasses.fields(cls):
            assert isinstance(f.metadata.get("help"), str) and len(f.metadata["help"]) > 10, f"{cls.__name__}.{f.name}"


def one_line_error(name: str, **values) -> str:
    with pytest.raises(ValueError) as err:
        with_overrides(RunConfig(), **values).validate()
    message = str(err.value)
    assert "\n" not in message and message.startswith(f"{name}: "), message
    return message


def test_unknown_names_are_refused():
    assert "unknown setting" in one_line_error("Tee", Tee=3)
    assert "unknown setting" in one_line_error("rmts_m", rmts_m=50)  # only training settings have a stage-2 copy
    assert "unknown setting" in one_line_error("omega", omega=False)  # the old name of learn_omega


@pytest.mark.parametrize("name,value,expected", [
    ("steps", True, "must be int"),  # a bool is not an int here, though Python says it is
    ("T", 2.5, "must be int"),
    ("gamma", "0.5", "must be float"),
    ("lr", None, "must be float"),
    ("learn_omega", 1, "must be bool"),
    ("channels", (8, "16"), "must be tuple[int, ...]"),
    ("channels", 8, "must be tuple[int, ...]"),
    ("glyphs", 3, "must be str | None"),
    ("rmts_batch_size", "16", "must be int"),
])
def test_wrong_types_are_refused_naming_the_setting(name, value, expected):
    assert expected in one_line_error(name, **{name: value})


@pytest.mark.parametrize("name,value", [("start", "random"), ("readout", "phase"), ("bottleneck", "attention")])
def test_values_outside_the_choices_are_refused(name, value):
    assert "must be one of" in one_line_error(name, **{name: value})


# DataConfig.validate has no check of its own for scale_max: a non-finite scale_max is refused, but the
# line names scale_min (nan) or glyph_size (inf). Reported as a bug; strict, so a fix shows up here.
@pytest.mark.parametrize("name,value", [
    ("lr", math.inf), ("lr", math.nan), ("gamma", math.inf), ("gamma", math.nan), ("rmts_lr", math.inf),
    ("clip", math.nan), ("weight_decay", math.inf), ("scale_min", math.nan), ("glyph_size", math.inf),
    pytest.param("scale_max", math.nan),
    pytest.param("scale_max", math.inf),
])
def test_non_finite_numbers_are_refused(name, value):
    one_line_error(name, **{name: value})


@pytest.mark.parametrize("name,value", [
    ("T", 0), ("D", 0), ("N", 1), ("gamma", 0.0), ("gamma", -1), ("hidden", 0), ("channels", ()), ("channels", (8, 0)),
    ("steps", 0), ("batch_size", 1), ("eval_every", 0), ("rmts_steps", 0), ("rmts_eval_size", 0), ("lr", 0),
    ("weight_decay", -1e-4), ("m", 1), ("seed", -1), ("image_size", 4), ("scale_min", 0.0), ("scale_min", 1.5),
])
def test_out_of_range_values_are_refused_naming_the_field(name, value):
    assert "must be" in one_line_error(name, **{name: value})


def test_split_is_checked_against_the_icons_and_the_task():
    run = with_overrides(RunConfig(), m=97)
    run.validate("same-different", n_icons=100)
    with pytest.raises(ValueError, match=r"^m: must be between 2 and 95 for rmts with 100 icons \(its test trials need "
                                         r"5 held-out icons\), got 97$"):
        run.validate("rmts", n_icons=100)
    with pytest.raises(ValueError, match=r"^glyphs: rmts needs at least 7 icons \(2 to train, 5 to test\), got 6$"):
        with_overrides(RunConfig(), m=2).validate("rmts", n_icons=6)
    with pytest.raises(ValueError, match="^task: "):
        RunConfig().validate("classify")


@pytest.mark.parametrize("task,low,high", [("same-different", 2, 98), ("rmts", 2, 95)])
def test_both_tasks_train_on_as_few_as_two_icons_and_rmts_tests_on_five(task, low, high):
    for m in (low, 3, 4, 5, 50, high):
        with_overrides(RunConfig(), m=m).validate(task, n_icons=100)
    for m in (low - 1, high + 1, 100):
        with pytest.raises(ValueError) as err:
            check_m(m, 100, task)
        assert str(err.value).startswith(f"m: must be between {low} and {high} for {task} with 100 icons")
        assert str(err.value).endswith(f", got {m}") and "\n" not in str(err.value)
    check_m(2, 7, "rmts")  # the smallest icon set RMTS can split: 2 to train, 5 to test


@pytest.mark.parametrize("m", [2, 5, 9])
def test_validation_icons_need_ten_training_icons_and_the_refusal_says_what_to_do(m):
    message = one_line_error("holdout", m=m, holdout="validation")
    assert message == (f"holdout: validation needs m >= 10 (5 of the m training icons held out to validate on, at "
                       f"least 5 left to fit), got m = {m}; tune at a larger m and run m = {m} with holdout test")
    with_overrides(RunConfig(), m=10, holdout="validation").validate("rmts", n_icons=100)
    with_overrides(RunConfig(), m=m).validate("rmts", n_icons=100)  # the same m with the test icons is fine


def test_an_int_is_a_valid_float_and_lists_become_tuples():
    run = with_overrides(RunConfig(), gamma=1, channels=[4, 4], glyphs=None)
    assert run.model.gamma == 1.0 and isinstance(run.model.gamma, float)
    assert run.model.channels == (4, 4) and run.data.glyphs is None
    assert coerce(settings()["glyphs"], "icons/") == "icons/"


def test_type_names_are_those_a_parameters_cell_writes():
    names = {name: type_name(s.type) for name, s in settings().items()}
    assert (names["m"], names["gamma"], names["start"], names["learn_omega"]) == ("int", "float", "str", "bool")
    assert (names["glyphs"], names["channels"]) == ("str | None", "tuple[int, ...]")


def test_config_survives_the_round_trip_through_a_metrics_dict():
    run = with_overrides(RunConfig(), m=20, channels=(4, 6), T=7, symmetric=True, rmts_lr=0.02, glyphs="icons")
    assert RunConfig.from_dict(run.to_dict()) == run
    assert run.to_dict()["model"]["channels"] == [4, 6]  # plain JSON values


def test_smoke_shrinks_training_and_keeps_the_split_and_everything_else():
    run = with_overrides(RunConfig(), m=50, seed=2, gamma=0.3, symmetric=True)
    small = smoke(run)
    assert (small.data.m, small.data.seed, small.model.gamma, small.model.symmetric) == (50, 2, 0.3, True)
    assert small == with_overrides(run, **SMOKE)
    assert small.stage1.steps < RunConfig().stage1.steps and small.stage2.steps < RunConfig().stage2.steps
    assert small.model.D < RunConfig().model.D
    for task in ("same-different", "rmts"):
        small.validate(task, n_icons=100)
