"""Import hygiene: the commands that only describe things never import torch or pyarrow."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

HEAVY = ("torch", "pyarrow")

# Runs one command in a fresh interpreter and prints which heavy modules it imported.
_PROBE = """
import json, sys
from losscli.cli import main
try:
    main({argv!r})
except SystemExit:
    pass
print("\\n@@" + json.dumps([m for m in {heavy!r} if m in sys.modules]))
"""


def heavy_imports(
    argv: list[str], modules: tuple[str, ...] = HEAVY, cwd: Path | None = None
) -> tuple[list[str], str]:
    """The ``modules`` (the heavy ones by default) imported by ``losscli ARGV``, and what
    it printed."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE.format(argv=argv, heavy=modules)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    printed, _, found = done.stdout.rpartition("\n@@")
    return json.loads(found), printed + done.stderr


def _command_exists(name: str) -> bool:
    from losscli.cli import app

    return any(
        (command.name or (command.callback.__name__ if command.callback else "")) == name
        for command in app.registered_commands
    )


@pytest.mark.parametrize(
    "argv",
    [["--help"], ["--version"], ["compute", "--help"], []],
    ids=["help", "version", "compute-help", "bare"],
)
def test_help_and_version_import_neither_torch_nor_pyarrow(argv: list[str]) -> None:
    imported, printed = heavy_imports(argv)
    assert printed.strip(), "the command printed nothing"
    assert imported == []


@pytest.mark.parametrize(
    ("command", "argv"), [("list", ["list"]), ("explain", ["explain", "mse"])], ids=str
)
def test_catalogue_commands_import_neither_torch_nor_pyarrow(command: str, argv: list[str]) -> None:
    if not _command_exists(command):
        pytest.skip(f"losscli {command} does not exist yet")
    imported, printed = heavy_imports(argv)
    assert "mse" in printed
    assert imported == []


def test_the_probe_sees_torch_when_a_command_imports_it() -> None:
    # near miss: compute does import torch, so the probe can tell
    imported, printed = heavy_imports(["compute", "l1", "[1,2.5,4,0.5]", "[2,2.5,2,1]"])
    assert "torch" in imported and "0.875" in printed


def _imported_by(code: str) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-c", f"{code}\nimport sys; print(sorted(sys.modules))"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return [m.strip("'") for m in done.stdout.strip().strip("[]").split(", ")]


def test_import_losscli_is_light() -> None:
    # SPEC "Python API": `import losscli` in a training script costs nothing until it is used
    imported = _imported_by("import losscli")
    assert not {"torch", "pyarrow", "numpy", "losscli.api", "rich"} & set(imported)
    assert "losscli.api" in _imported_by("import losscli; losscli.LossWarning")


def test_the_api_imports_torch_when_first_called_not_pyarrow() -> None:
    imported = _imported_by("import losscli; losscli.check('mse', [1.0, 2.0], [1.5, 2.0])")
    assert "torch" in imported and "pyarrow" not in imported


DASK = ("dask", "distributed")


def _shards(directory: Path) -> list[str]:
    for name in ("p", "t"):
        (directory / name).mkdir()
        for index in range(3):
            np.save(directory / name / f"part-{index}.npy", np.arange(4.0) + index)
    return ["p/part-*.npy", "t/part-*.npy"]


def test_the_core_never_imports_dask_even_for_shards(tmp_path: Path) -> None:
    # SPEC "Shards and many machines": Dask is an optional extra, imported only for --dask
    shards = _shards(tmp_path)
    for argv in (["compute", "mse", *shards], ["compute", "mse", "[1, 2]", "[1, 2]"]):
        imported, printed = heavy_imports([*argv, "--format", "json"], DASK, cwd=tmp_path)
        assert '"value": 0.0' in printed and imported == [], (argv, printed)


@pytest.mark.skipif(
    importlib.util.find_spec("distributed") is None,
    reason="Dask is not installed (pip install 'losscli[dask]')",
)
def test_the_probe_sees_dask_when_dask_is_asked_for(tmp_path: Path) -> None:
    # near miss: --dask does import it, so the probe above can tell
    shards = _shards(tmp_path)
    argv = ["compute", "mse", *shards, "--dask", "local", "--format", "json"]
    imported, printed = heavy_imports(argv, DASK, cwd=tmp_path)
    assert '"engine": "dask"' in printed and "distributed" in imported, printed
