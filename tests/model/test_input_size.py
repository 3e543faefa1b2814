"""The input size is checked once on a path (issue 25): where it enters, then it travels as an
:class:`InputSize`; a size given directly to any entry point is still checked."""

from __future__ import annotations

import pytest

import cstrack.model.input_size as input_size_module
from cstrack.errors import ConfigError
from cstrack.model.detector import build_detector
from cstrack.model.inference_settings import InferenceSettings
from cstrack.model.input_size import InputSize, checked_size


def test_checked_size_checks_pairs_and_passes_checked_sizes_through() -> None:
    size = checked_size((320, 256))
    assert size == (320, 256) and isinstance(size, InputSize) and (size.width, size.height) == (320, 256)
    assert checked_size(size) is size
    with pytest.raises(ConfigError, match=r"^input size 320x250 is not supported: width and height must be "
                                          r"multiples of 32$"):
        checked_size((320, 250))


def test_the_settings_record_holds_a_checked_size() -> None:
    settings = InferenceSettings(input_size=(320, 256))
    assert isinstance(settings.input_size, InputSize)
    assert settings.to_dict()["input_size"] == [320, 256]  # the JSON form is unchanged


@pytest.mark.parametrize("path", ["eager", "fast"])
def test_one_check_from_the_settings_to_the_detector(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[int, int]] = []
    check = input_size_module.check_input_size

    def counting(width: int, height: int) -> None:
        calls.append((width, height))
        check(width, height)

    monkeypatch.setattr(input_size_module, "check_input_size", counting)
    settings = InferenceSettings(input_size=(320, 256))
    detector = build_detector("cstrack-n", None, settings.input_size, path)
    assert detector.input_size == (320, 256)
    assert calls == []  # InferenceSettings checked it itself (naming its field); the rest take it as it is
    calls.clear()
    build_detector("cstrack-n", None, (320, 256), path)  # a plain pair: checked once, where it enters
    assert calls == [(320, 256)]
    with pytest.raises(ConfigError, match="input size 320x250"):
        build_detector("cstrack-n", None, (320, 250), path)
