"""The `[display]` table of a bus config, the `--listen` address, and the day/night clock."""

from __future__ import annotations

import datetime as dt
import enum
import re
import zoneinfo
from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator, field_validator, model_validator

from core.config_base import Bool, StrictModel, Text, check_host, is_loopback, parse_port, shown

_HHMM = re.compile(r"([01]\d|2[0-3]):[0-5]\d")


def _clock(v: str) -> str:
    if not _HHMM.fullmatch(v):
        raise ValueError(f'must be a time of day as "HH:MM" (00:00 to 23:59), not {shown(v, 20)}')
    return v


ClockTime = Annotated[str, AfterValidator(_clock)]


@dataclass(frozen=True, slots=True)
class Listen:
    host: str  # as written: an IPv6 address keeps its brackets
    port: int

    @property
    def bind_host(self) -> str:
        return self.host.strip("[]")

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    @property
    def loopback(self) -> bool:
        return is_loopback(self.host)


def parse_listen(text: str) -> Listen:
    """`HOST:PORT`, with an IPv6 host in brackets (`[::1]:8090`). ValueError says what is wrong."""
    host, colon, port = text.rpartition(":")
    if not colon or not host:
        raise ValueError(f"must be HOST:PORT, not {shown(text, 40)}")
    return Listen(check_host(host), parse_port(port))


def connect_endpoint(bound: str) -> str:
    """Where to connect to reach a PUB bound to `bound`: a wildcard bind is reached on loopback."""
    for wildcard in ("tcp://*:", "tcp://0.0.0.0:"):
        if bound.startswith(wildcard):
            return "tcp://127.0.0.1:" + bound[len(wildcard) :]
    return bound


class Theme(enum.StrEnum):
    DAY = "day"
    NIGHT = "night"


class DisplayConfig(StrictModel):
    """What `vigie display` serves, and where."""

    # The page's address. Loopback by default: the screen by the driver's seat runs on the bus computer itself.
    listen: Text = "127.0.0.1:8090"
    # Serve the page beyond this computer (a screen on the bus's own network). The page is read-only either way.
    allow_remote: Bool = False
    # The bus's local time for the day/night switch: an IANA zone ("Europe/Paris"); unset = the computer's own.
    timezone: Text | None = None
    night_from: ClockTime = "20:00"
    day_from: ClockTime = "07:00"

    @field_validator("listen")
    @classmethod
    def _listen(cls, v: str) -> str:
        parse_listen(v)
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                zoneinfo.ZoneInfo(v)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError):
                raise ValueError(f'{shown(v, 40)} is not a known time zone (e.g. "Europe/Paris")') from None
        return v

    @model_validator(mode="after")
    def _rules(self) -> DisplayConfig:
        if self.night_from == self.day_from:
            raise ValueError("night_from: must differ from day_from")
        if not self.allow_remote and not parse_listen(self.listen).loopback:
            host = parse_listen(self.listen).host
            raise ValueError(f"listen: {host} is not loopback; set display.allow_remote = true to serve there")
        return self

    def theme_at(self, epoch_s: float) -> Theme:
        """Night from `night_from` to `day_from`, in the bus's local time."""
        zone = zoneinfo.ZoneInfo(self.timezone) if self.timezone else None
        now = dt.datetime.fromtimestamp(epoch_s, tz=zone).strftime("%H:%M")
        if self.night_from > self.day_from:  # night spans midnight, the usual case
            night = now >= self.night_from or now < self.day_from
        else:
            night = self.night_from <= now < self.day_from
        return Theme.NIGHT if night else Theme.DAY
