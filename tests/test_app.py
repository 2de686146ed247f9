"""The app contract's small parts: metric direction in the gate, option names, registry."""

import pytest

from dlkit.app import App, Metric, Option
from dlkit.errors import DlkitError
from dlkit.registry import get_app, register


def test_gate_drop_knows_direction_and_unit():
    assert Metric("accuracy").drop(0.95, 0.94) == pytest.approx(1.0)  # 1 point worse
    assert Metric("accuracy").drop(0.95, 0.96) == pytest.approx(-1.0)  # better
    assert Metric("eer", higher_is_better=False).drop(0.10, 0.12) == pytest.approx(2.0)
    assert Metric("eer", higher_is_better=False).drop(0.10, 0.08) == pytest.approx(-2.0)
    assert Metric("bleu", points=1.0).drop(20.0, 19.5) == pytest.approx(0.5)


def test_option_name_is_the_flag_in_snake_case():
    assert Option("--beam-width", int, None, "").name == "beam_width"


def test_registry_fails_loudly():
    with pytest.raises(DlkitError, match="unknown app 'segmentify'; available: classify"):
        get_app("segmentify")

    class Nameless(App):
        pass

    with pytest.raises(ValueError, match="no name"):
        register(Nameless)

    class Odd(App):
        name = "odd"
        input_kind = "video"

    with pytest.raises(ValueError, match="input_kind must be one of"):
        register(Odd)

    class Duplicate(App):
        name = "classify"

    with pytest.raises(ValueError, match="registered twice"):
        register(Duplicate)


def test_a_preset_name_offered_twice_is_refused(monkeypatch):
    from dlkit import registry

    assert "minilm" in registry.presets()

    class Rival(App):
        name = "rival"

        def presets(self):
            return {"minilm": lambda: None}

    monkeypatch.setitem(registry._REGISTRY, "rival", Rival())
    with pytest.raises(DlkitError, match="--init minilm is offered by two apps: mlm and rival"):
        registry.presets()


def test_translate_refuses_int8_in_one_line(tmp_path):
    from conftest import assert_one_line_error, run_cli

    result = run_cli("translate", "export", "--model", tmp_path, "--quantize", "int8")
    assert_one_line_error(result, "translate exports float32, float16, dynamic; int8 is not supported")
