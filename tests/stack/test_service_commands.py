"""stack.commands: argv templates render and match both ways."""

from __future__ import annotations

import pytest

from stack.commands import DASK_WORKER, PREFECT_SERVER, SERVICES, ServiceCommand


def test_render_and_match_round_trip() -> None:
    argv = DASK_WORKER.render(scheduler="tcp://127.0.0.1:8786", host="127.0.0.1", name="w1", http="127.0.0.1:0")
    assert argv[:3] == ["dask", "worker", "tcp://127.0.0.1:8786"]
    assert DASK_WORKER.match(argv) == {"scheduler": "tcp://127.0.0.1:8786", "host": "127.0.0.1", "name": "w1",
                                       "http": "127.0.0.1:0"}


def test_match_rejects_other_commands() -> None:
    argv = PREFECT_SERVER.render(host="127.0.0.1", port=4200)
    assert PREFECT_SERVER.match([*argv, "--extra"]) is None
    assert PREFECT_SERVER.match(["prefect", "server", "stop", "--host", "h", "--port", "1"]) is None
    assert DASK_WORKER.match(argv) is None


def test_a_placeholder_used_twice_must_agree() -> None:
    cmd = ServiceCommand("t", ("run", "{x}", "--again", "pre-{x}"))
    assert cmd.match(["run", "a", "--again", "pre-a"]) == {"x": "a"}
    assert cmd.match(["run", "a", "--again", "pre-b"]) is None


def test_render_refuses_unknown_or_missing_values() -> None:
    with pytest.raises(KeyError, match="unknown placeholder"):
        PREFECT_SERVER.render(host="h", port=1, nope=2)
    with pytest.raises(KeyError):
        PREFECT_SERVER.render(host="h")


def test_every_long_running_service_listens_where_told() -> None:
    # no template leaves a listening address to a default (the Dask HTTP server binds 0.0.0.0:8787
    # unless --dashboard-address is given)
    for name in ("prefect-server", "dask-scheduler", "dask-worker"):
        assert "host" in SERVICES[name].fields
    assert "http" in SERVICES["dask-scheduler"].fields and "http" in SERVICES["dask-worker"].fields
