"""The one check `vigie check-config` and `vigie run` share: the config, then what it says about this machine's disk.

Parsing (edge/config.py) proves a config is well formed. This proves it can run here: the files it names exist and
read correctly (the model, the vehicle log, file cameras), the library that runs the model imports, and every folder
the daemon or the uploader will write to is a folder, or can be created, and is writable. `run` calls it before it
opens anything, so a config that passes `check-config` cannot stop the daemon at start, or let it run writing nothing,
for a reason the check could see. Nothing here creates or changes a file.
"""

from __future__ import annotations

import os
from pathlib import Path

from core.config_base import shown
from edge.config import DEMO_CONFIG, Config, ConfigError, health_root, load_config, operating_root
from edge.vehicle_log import VehicleLogError, read_log

MAX_PROBLEMS = 50  # a file of ten thousand unknown keys gets the first ones, then a count


def checked_config(path: Path | None) -> Config:
    """The config in `path` (default: the demo), or ConfigError listing every problem, one `key.path: message` each."""
    path = Path(path) if path is not None else DEMO_CONFIG
    cfg = load_config(path)
    problems = check_files(cfg) + check_runtime(cfg) + check_folders(cfg)
    if problems:
        raise ConfigError(str(path), problems)
    return cfg


def report_lines(exc: ConfigError) -> list[str]:
    """What `check-config` and `run` print: one line per problem, prefixed with the file, at most MAX_PROBLEMS."""
    lines = [f"{exc.source}: {p}" for p in exc.problems[:MAX_PROBLEMS]]
    if len(exc.problems) > MAX_PROBLEMS:
        lines.append(f"{exc.source}: {len(exc.problems) - MAX_PROBLEMS} more problems not shown")
    return lines


def _file_problem(path: Path) -> str | None:
    try:
        if path.is_file():
            return None
        if path.exists():
            return f"not a file: {shown(str(path))}"
    except OSError as exc:  # e.g. a name longer than the filesystem allows
        return f"cannot be used: {exc.strerror or exc}: {shown(str(path))}"
    return f"file not found: {shown(str(path))}"


def check_files(cfg: Config) -> list[str]:
    """Problems with the files a config reads: each must exist, and a vehicle log must read row by row."""
    problems = []
    bad = _file_problem(cfg.detector.model_path)
    if bad:
        problems.append(f"detector.model: {bad}")
    if cfg.vehicle.source == "log" and cfg.vehicle.log is not None:
        bad = _file_problem(cfg.vehicle.log)
        if bad:
            problems.append(f"vehicle.log: {bad}")
        else:
            try:
                read_log(cfg.vehicle.log)  # every row: `run` refuses a bad one in one line before it opens anything
            except VehicleLogError as exc:
                problems.append(f"vehicle.log: {exc}")
    for i, cam in enumerate(cfg.cameras):
        bad = None if "://" in cam.source else _file_problem(Path(cam.source))
        if bad:
            problems.append(f"cameras[{i}].source: {bad}")
    if cfg.upload is not None and cfg.upload.ca_bundle is not None:
        bad = _file_problem(cfg.upload.ca_bundle)
        if bad:
            problems.append(f"upload.ca_bundle: {bad}")
    return problems


def check_runtime(cfg: Config) -> list[str]:
    """The library that runs the model must import here: `runtime = "openvino"` needs the `openvino` extra."""
    # Imported here, not at the top: loading the CLI must not load a model runtime (tests/test_cli_imports.py).
    from edge.runtime import runtime_problem

    problem = runtime_problem(cfg.detector.runtime)
    return [f"detector.runtime: {problem}"] if problem else []


def _writable(folder: Path) -> bool:
    return os.access(folder, os.W_OK | os.X_OK)


def folder_problem(path: Path) -> str | None:
    """Why `path` cannot be the folder the daemon writes to (it is created, with its parents, when needed).

    A folder still to be created is judged by what stands in its way (a file, a broken link), not by permissions:
    a config for /var/lib/vigie is checked on a laptop before it goes to the bus, where the daemon's user owns it.
    """
    try:
        if path.exists():
            if not path.is_dir():
                return f"is a file, not a folder: {shown(str(path))}"
            return None if _writable(path) else f"folder is not writable: {shown(str(path))}"
        if path.is_symlink():
            return f"is a broken link: {shown(str(path))}"
        for parent in path.absolute().parents:
            if parent.exists():
                return None if parent.is_dir() else f"cannot be created: {shown(str(parent))} is a file"
            if parent.is_symlink():
                return f"cannot be created: {shown(str(parent))} is a broken link"
    except OSError as exc:  # a name too long, a loop of links, no permission to look
        return f"cannot be used: {exc.strerror or exc}: {shown(str(path))}"
    return None


def _log_file_problem(path: Path) -> str | None:
    try:
        if path.is_dir():
            return f"is a folder, not a file: {shown(str(path))}"
        if path.exists():
            return None if os.access(path, os.W_OK) else f"file is not writable: {shown(str(path))}"
    except OSError as exc:
        return f"cannot be used: {exc.strerror or exc}: {shown(str(path))}"
    bad = folder_problem(path.parent)
    return f"its folder {bad}" if bad else None


def _nested(a: Path, b: Path) -> bool:
    return a == b or a.is_relative_to(b) or b.is_relative_to(a)


def check_folders(cfg: Config) -> list[str]:
    """Problems with the folders a config writes to: each must be a usable folder, and the daemon's own distinct."""
    own = {
        "events.dir": cfg.events.dir,
        "events.operating_dir": operating_root(cfg.events),
        "events.health_dir": health_root(cfg.events),
        "recorder.dir": cfg.recorder.dir,
        "recorder.state_dir": cfg.recorder.state_dir,
    }
    folders = dict(own)
    if cfg.upload is not None:
        folders["upload.state_dir"] = cfg.upload.state_dir
        folders.update({f"upload.spool[{i}].dir": root.dir for i, root in enumerate(cfg.upload.spool)})
    problems = [f"{key}: {bad}" for key, path in folders.items() if (bad := folder_problem(path))]
    bad = _log_file_problem(cfg.recorder.audit_log)
    if bad:
        problems.append(f"recorder.audit_log: {bad}")
    if cfg.alerts.endpoint.startswith("ipc://"):
        socket_dir = Path(cfg.alerts.endpoint.removeprefix("ipc://")).absolute().parent
        if not socket_dir.is_dir():  # ZeroMQ binds the socket file there but does not create the folder
            problems.append(f"alerts.endpoint: folder not found: {shown(str(socket_dir))}")
    # The uploader sends each folder under its own name and may delete unsent clips when over quota: event files in
    # the clips folder (or clips among the events) would be sent twice, or deleted unsent.
    keys = list(own)
    absolute = [Path(os.path.abspath(own[k])) for k in keys]
    for j in range(len(keys)):
        for i in range(j):
            if _nested(absolute[i], absolute[j]):
                problems.append(f"{keys[j]}: same folder as {keys[i]} or nested with it; each needs its own folder")
                break
    return problems
