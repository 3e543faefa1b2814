"""cstrack.model.ref / cstrack.model.device: the one model reference, its device rule (the
training rule) on a machine without CUDA, and errors that name parameters, not flags."""

from __future__ import annotations

import warnings

import pytest
import torch

from cstrack.errors import ConfigError
from cstrack.model.detector import AUTO_PATH, RandomWeightsWarning, load_model, resolve_path
from cstrack.model.device import check_device, resolve_device
from cstrack.model.ref import ModelRef
from cstrack.provenance import cpu_model
from cstrack.train.distributed import resolve_device as train_device

no_cuda = pytest.mark.skipif(torch.cuda.is_available(), reason="checks the machine without CUDA")


@no_cuda
def test_auto_falls_back_to_the_cpu_with_a_note_and_names_the_cpu() -> None:
    dev = resolve_device("auto")
    assert (dev.spec, dev.name) == ("cpu", cpu_model())
    assert dev.note == "auto: no CUDA device found, running on the CPU"
    assert resolve_device("cpu").note is None
    assert train_device("auto") == torch.device("cpu")  # training follows the same rule


@no_cuda
@pytest.mark.parametrize("spec", ["cuda", "cuda:0", "cuda:3"])
def test_cuda_without_cuda_fails_naming_the_parameter(spec: str) -> None:
    with pytest.raises(ConfigError) as err:
        resolve_device(spec)
    assert err.value.param == "device"
    assert str(err.value) == f"device: {spec!r} requested but CUDA is not available on this machine"
    with pytest.raises(ConfigError, match=r"^device: .*not available"):
        train_device(spec)


@pytest.mark.parametrize("spec", ["gpu", "cuda:", "cuda:x", "CPU", "", "mps"])
def test_device_syntax(spec: str) -> None:
    with pytest.raises(ConfigError, match=r"^device: expected auto, cpu, cuda or cuda:N"):
        check_device(spec)


def test_model_ref_validates_and_names_parameters() -> None:
    with pytest.raises(ConfigError) as err:
        ModelRef("cstrack-n", "coco", path="bogus")
    assert err.value.param == "path" and str(err.value).startswith("path: expected one of auto, eager")
    assert "--" not in str(err.value)
    with pytest.raises(ConfigError, match=r"^variant: "):
        ModelRef("", None)
    with pytest.raises(ConfigError, match=r"^device: "):
        ModelRef("cstrack-n", None, device="tpu")


@no_cuda
def test_resolve_gives_concrete_path_and_device() -> None:
    ref, dev = ModelRef("cstrack-n", "coco").resolve()
    assert (ref.path, ref.device, dev.spec) == (AUTO_PATH, "cpu", "cpu") and ref.concrete
    assert not ModelRef("cstrack-n", "coco").concrete


def test_paths_on_a_gpu_device() -> None:
    assert resolve_path("auto", "cuda:0") == "eager"  # the CPU-speed paths are CPU only
    with pytest.raises(ConfigError, match=r"^path: 'onnx' runs on the CPU only"):
        resolve_path("onnx", "cuda:0")


def test_renamed_speaks_each_surfaces_language() -> None:
    err = ConfigError("expected one of auto, eager, got 'x'", "path")
    assert str(err.renamed({"path": "--path"})) == "--path: expected one of auto, eager, got 'x'"
    assert str(err.renamed({"path": "model.path"})) == "model.path: expected one of auto, eager, got 'x'"
    plain = ConfigError("something")
    assert plain.renamed({"path": "--path"}) is plain


def test_random_weights_warn_instead_of_printing(capfd: pytest.CaptureFixture[str]) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        load_model("cstrack-n", None)
    assert [w.category for w in caught] == [RandomWeightsWarning]
    out, err = capfd.readouterr()
    assert (out, err) == ("", "")  # the library prints nothing; the CLI echoes the warning
