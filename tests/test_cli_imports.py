"""The CLI loads what a command needs, no more: `vigie alerts` on a driver's display must not load the models."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

HEAVY = ("cv2", "onnxruntime", "pyarrow", "scipy", "boto3", "zmq", "matplotlib", "aiohttp")


def test_loading_the_cli_loads_no_model_runtime_nor_data_library() -> None:
    probe = f"import sys, edge.cli; print(','.join(m for m in {HEAVY!r} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_the_installed_command_imports_nothing_before_it_runs() -> None:
    """multiprocessing runs the `vigie` script again in the recorder process it spawns: what the script imports at
    its top, every recorder loads (edge/entry.py)."""
    (entry,) = [e for e in importlib.metadata.entry_points(group="console_scripts") if e.name == "vigie"]
    loaded = f"m for m in sys.modules if m.startswith(('edge.', 'pydantic', 'click')) and m != {entry.module!r}"
    probe = f"import sys, {entry.module}; print(','.join({loaded}))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


def test_every_subcommand_still_answers_help() -> None:
    commands = (
        ["anonymise"],
        ["alerts"],
        ["display"],
        ["upload"],
        ["replay", "rerun"],
        ["replay", "rerun-fleet"],
        ["replay", "export-shared"],
        ["detect"],
        ["run"],
    )
    for command in commands:
        result = subprocess.run(
            [sys.executable, "-m", "edge", *command, "--help"], capture_output=True, text=True, timeout=60
        )
        assert result.returncode == 0 and "Usage:" in result.stdout, (command, result.stderr)
