"""What every config table shares: the strict base model, field types, problem lines and reading the TOML file.

In core/ because every config table builds on it: the bus config (edge/config.py) and the `[upload]` table
(uploader/config.py) share these rules without the uploader importing edge.
"""

from __future__ import annotations

import ipaddress
import json
import re
import tomllib
from pathlib import Path, PurePath
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict, StringConstraints
from pydantic_core import ErrorDetails

# A bus config is a few KiB; anything past this is a wrong file (or /dev/zero), refused before it is parsed.
MAX_CONFIG_BYTES = 1 << 20
SHOWN_CHARS = 60  # a bad value quoted in a problem line is clipped to this
# Sizes in MB become byte counts (mb * 2**20); up to 1 PB they stay exact in a float (below 2**53), and an infinite
# or 1e308 MB quota, which crashed the recorder at start, is refused here.
MAX_MB = 1_000_000_000.0


class ConfigError(Exception):
    """A config that cannot be used; `problems` holds one `key.path: message` line each."""

    def __init__(self, source: str, problems: list[str]):
        super().__init__(f"{source}: " + "; ".join(problems))
        self.source = source
        self.problems = problems


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# TOML has real booleans, integers and floats, so a value of the wrong kind is a mistake to report, never to coerce:
# lax pydantic reads `score_threshold = true` as 1.0 and `enabled = "no"` as False. A strict float still takes an
# integer (`flush_s = 10`), never a boolean; NaN and infinities are refused everywhere (`nan` never compares, so a
# zone or threshold holding one silently never fires).
Finite = Annotated[float, Strict(), Field(allow_inf_nan=False)]
Int = Annotated[int, Strict()]
Bool = Annotated[bool, Strict()]
Fraction = Annotated[Finite, Field(ge=0.0, le=1.0)]

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def shown(value: object, limit: int = SHOWN_CHARS) -> str:
    """A value as it can safely be quoted in a one-line message: repr, control characters escaped, clipped."""
    text = repr(value) if not isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = _CONTROL.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _printable(v: str) -> str:
    if _CONTROL.search(v):
        raise ValueError("must not contain control characters (newlines, tabs, NUL)")
    return v


# One line of text, of bounded length: names end up in file names, log lines, JSON and object keys.
NAME_CHARS = 64
Name = Annotated[str, StringConstraints(min_length=1, max_length=NAME_CHARS), AfterValidator(_printable)]
Text = Annotated[str, StringConstraints(max_length=256), AfterValidator(_printable)]
LongText = Annotated[str, StringConstraints(min_length=1, max_length=2048), AfterValidator(_printable)]


def _path_text(v: object) -> object:
    if isinstance(v, PurePath):
        v = str(v)
    if not isinstance(v, str):
        return v  # pydantic's own type error names it
    if not v:
        raise ValueError("must not be empty (it would mean the working folder)")
    if len(v) > 1024:
        raise ValueError(f"is {len(v)} characters long; at most 1024")
    return _printable(v)


# Paths: a non-empty one-line string; whether the file or folder is usable is checked by edge/config_check.py.
ConfigPath = Annotated[Path, BeforeValidator(_path_text)]

_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
_HOSTNAME = re.compile(rf"(?=.{{1,253}}$){_LABEL}(\.{_LABEL})*")
IPC_PATH_BYTES = 107  # sun_path on Linux; ZeroMQ refuses a longer ipc:// path only when the socket is opened


def parse_port(port: str) -> int:
    if not (port.isascii() and port.isdigit()) or not 1 <= int(port) <= 65535:
        raise ValueError(f"port must be a number from 1 to 65535, not {shown(port, 12)}")
    return int(port)


def check_host(host: str) -> str:
    """An IPv4 address, a bracketed IPv6 address or a host (or interface) name."""
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ValueError(f"{shown(host, 40)} is not an IPv6 address") from None
        return host
    if not _HOSTNAME.fullmatch(host):
        raise ValueError(f"{shown(host, 40)} is not a host name or IP address")
    if host.replace(".", "").isdigit():  # all digits: meant as an IPv4 address, so it must be one
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"{shown(host, 40)} is not an IPv4 address") from None
    return host


def check_url_host(v: str) -> str:
    """The host and port of a URL whose scheme the caller has checked: present, well formed, port 1-65535."""
    url = urlsplit(v)  # ValueError for a broken IPv6 literal, which pydantic reports like ours
    if not url.hostname:
        raise ValueError(f"{url.scheme}:// needs a host")
    check_host(url.hostname if ":" not in url.hostname else f"[{url.hostname}]")
    host_port = url.netloc.rpartition("@")[2]
    if ":" in host_port and not host_port.endswith("]"):
        parse_port(host_port.rpartition(":")[2])
    return v


def zmq_endpoint(v: str, transports: tuple[str, ...], *, bind: bool) -> str:
    """An endpoint ZeroMQ will accept, checked here rather than when the daemon opens its sockets (`bind`: the
    daemon listens there, so `*` may stand for every interface; otherwise it connects, to one host)."""
    transport, sep, address = v.partition("://")
    if not sep or transport not in transports:
        forms = {"tcp": "tcp://HOST:PORT", "ipc": "ipc://PATH", "inproc": "inproc://NAME"}
        raise ValueError("must be " + " or ".join(forms[t] for t in transports))
    if transport == "tcp":
        host, colon, port = address.rpartition(":")
        if not colon or not host:
            raise ValueError("must be tcp://HOST:PORT")
        if not (bind and host == "*"):
            check_host(host)
        parse_port(port)
    elif not address:
        raise ValueError(f"{transport}:// needs a path or name after it")
    elif transport == "ipc" and len(address.encode()) > IPC_PATH_BYTES:
        raise ValueError(f"ipc:// path is longer than the {IPC_PATH_BYTES} bytes a socket path may have")
    return _printable(v)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


_SUBKEY = re.compile(r"(?P<key>[A-Za-z_][A-Za-z0-9_.\[\]]*): (?P<msg>.*)", re.DOTALL)
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _key_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif _PLAIN_KEY.fullmatch(part):
            out += f".{part}" if out else part
        else:  # an unknown key as written in the file: quoted, so a newline in it cannot start a second line
            out += f"[{shown(part, 40)}]"
    return out


def problem_line(err: ErrorDetails) -> str:
    """One `key.path: message` line for a pydantic error (shared with the other subsystems' config tables)."""
    path = _key_path(tuple(err["loc"]))
    msg = str(err["msg"]).removeprefix("Value error, ")
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "missing":
        msg = "required key is missing"
    # Model-level checks name their own sub-key first ("zones[1].ground_polygon: ..."); join it to the path.
    sub = _SUBKEY.fullmatch(msg)
    if sub:
        path = f"{path}.{sub['key']}" if path else sub["key"]
        msg = sub["msg"]
    msg = _CONTROL.sub(" ", msg)  # pydantic may quote input; a problem stays on its line
    return f"{path}: {msg}" if path else msg


def read_toml(path: Path) -> dict:
    """The file's TOML as a dict, or ConfigError with one line saying why not (never a traceback)."""
    try:
        with open(path, "rb") as fh:
            raw = fh.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        raise ConfigError(str(path), ["file not found"]) from None
    except IsADirectoryError:
        raise ConfigError(str(path), ["is a folder, not a config file"]) from None
    except OSError as exc:
        raise ConfigError(str(path), [f"cannot read: {exc.strerror or exc}"]) from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise ConfigError(str(path), [f"larger than {MAX_CONFIG_BYTES // 1024} KiB: not a bus config"])
    try:
        # utf-8-sig: an editor on Windows may save a byte-order mark, which tomllib would call an invalid statement.
        return tomllib.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as exc:
        raise ConfigError(str(path), [f"not UTF-8 text (byte {exc.start})"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(path), [f"not valid TOML: {exc}"]) from None
    except RecursionError:  # tomllib recurses once per nested array or inline table
        raise ConfigError(str(path), ["not valid TOML: arrays or tables nested too deeply"]) from None
