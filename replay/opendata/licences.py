"""The licences a city may put on what it publishes: a short committed list, not a lookup on the network.

Each is known by its SPDX id (what a Data Package's `licenses[].name` should hold) and, where data.gouv.fr has one,
by the Etalab id French portals use (`lov2` for Licence Ouverte 2.0). Ids match without regard to case, as SPDX ids
do; the package always names the SPDX spelling. A licence not listed here is refused rather than passed through: a
typo in a licence id would otherwise be published as the legal terms of the data.
"""

from __future__ import annotations

from dataclasses import dataclass

from replay.errors import ReplayError


@dataclass(frozen=True, slots=True)
class Licence:
    spdx: str
    title: str
    url: str | None  # None: terms that are not a public licence (shared data: the agreement)
    etalab: str | None = None  # the data.gouv.fr id, where there is one


DEFAULT_LICENCE = "etalab-2.0"
KNOWN: tuple[Licence, ...] = (
    Licence(
        "etalab-2.0",
        "Licence Ouverte / Open Licence version 2.0",
        "https://www.etalab.gouv.fr/licence-ouverte-open-licence/",
        "lov2",
    ),
    Licence(
        "ODbL-1.0",
        "Open Data Commons Open Database License v1.0",
        "https://opendatacommons.org/licenses/odbl/1-0/",
        "odc-odbl",
    ),
    Licence(
        "ODC-By-1.0",
        "Open Data Commons Attribution License v1.0",
        "https://opendatacommons.org/licenses/by/1-0/",
        "odc-by",
    ),
    Licence(
        "PDDL-1.0",
        "Open Data Commons Public Domain Dedication and License v1.0",
        "https://opendatacommons.org/licenses/pddl/1-0/",
        "odc-pddl",
    ),
    Licence(
        "CC-BY-4.0",
        "Creative Commons Attribution 4.0 International",
        "https://creativecommons.org/licenses/by/4.0/",
        "cc-by",
    ),
    Licence(
        "CC-BY-SA-4.0",
        "Creative Commons Attribution Share Alike 4.0 International",
        "https://creativecommons.org/licenses/by-sa/4.0/",
        "cc-by-sa",
    ),
    Licence(
        "CC0-1.0",
        "Creative Commons Zero v1.0 Universal",
        "https://creativecommons.org/publicdomain/zero/1.0/",
        "cc-zero",
    ),
)


def find_licence(licence_id: str) -> Licence:
    wanted = licence_id.strip().lower()
    for known in KNOWN:
        if wanted in (known.spdx.lower(), (known.etalab or "").lower()):
            return known
    names = ", ".join(k.spdx for k in KNOWN)
    raise ReplayError(f"--licence {licence_id}: not a known SPDX or Etalab licence id ({names}; or lov2, odc-odbl …)")
