"""The README.md of each package, in French then English: what an event is, how the rows are made, what was removed
and why, and what the data cannot say. Written from the export's own parameters, so it never describes another k or
another rounding than the one applied; and from nothing else (no export time), so a re-export gives the same bytes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from replay.opendata.licences import Licence
from replay.opendata.package import Coverage, Producer

KM_PER_DEGREE = 111.32


@dataclass(frozen=True, slots=True)
class OpenFacts:
    producer: Producer
    licence: Licence
    coverage: Coverage
    k: int
    stem: str
    hour_bands: list[str]


@dataclass(frozen=True, slots=True)
class SharedFacts:
    producer: Producer
    partner: str
    agreement: str | None
    coverage: Coverage
    stem: str
    distance_bands: list[str]
    speed_bands: list[str]


def _east_west_km(coverage: Coverage, degrees: float) -> float:
    """A degree of longitude shrinks with latitude: say what it is where the data is."""
    if coverage.bbox is None:
        return KM_PER_DEGREE * degrees
    mid_lat = (coverage.bbox[1] + coverage.bbox[3]) / 2
    return KM_PER_DEGREE * degrees * math.cos(math.radians(mid_lat))


EVENT_FR = (
    "Un **événement** est le séjour d'une personne dans une zone d'angle mort d'une caméra d'un bus. Il commence "
    "quand le détecteur embarqué a suivi cette personne dans la zone pendant quelques images, et finit quand elle en "
    "est sortie (ou n'est plus visible) depuis environ 1,5 seconde (réglage par défaut). Une personne présente dans "
    "deux zones à la fois, ou qui sort puis revient, fait plusieurs événements. Les images sont traitées dans le bus ; "
    "aucune image n'entre dans ces données."
)
EVENT_EN = (
    "An **event** is one person's stay in one blind-spot zone of one camera of a bus. It starts once the on-board "
    "detector has followed that person inside the zone for a few frames, and ends once they have been out of the "
    "zone (or out of sight) for about 1.5 seconds (the default setting). A person in two zones at once, or who leaves "
    "and comes back, makes several events. Images are processed on the bus; no image goes into this data."
)
CANNOT_FR = (
    "- Elles ne comptent pas des personnes : une même personne peut faire plusieurs événements.\n"
    "- Elles ne disent pas si quelqu'un a été en danger ou heurté : un événement dit qu'une personne était dans "
    "l'angle mort, pas ce qui s'est passé.\n"
    "- Les personnes que le détecteur n'a pas vues (nuit, foule, personne en partie cachée) n'y sont pas.\n"
    "- Elles ne couvrent que les heures où des bus équipés ont roulé : plus de bus à un endroit, plus d'événements. "
    "Comparer deux lieux ou deux heures, c'est aussi comparer le service qui y passe.\n"
    "- La position est celle du bus au début de l'événement, pas celle de la personne."
)
CANNOT_EN = (
    "- They do not count people: one person can make several events.\n"
    "- They do not say whether anyone was in danger or hit: an event says a person was in the blind spot, not what "
    "happened.\n"
    "- People the detector missed (at night, in a crowd, partly hidden) are not in them.\n"
    "- They cover only the hours when buses with cameras ran: more buses in a place, more events. Comparing two "
    "places or two hours also compares the service that runs there.\n"
    "- The position is the bus's at the start of the event, not the person's."
)


def open_readme(f: OpenFacts) -> str:
    c = f.coverage
    ew = f"{_east_west_km(c, 0.01):.1f}"
    bands = ", ".join(f.hour_bands)
    lic = f"{f.licence.title} ({f.licence.spdx}, {f.licence.url})"
    return f"""# Événements dans les angles morts des bus / Bus blind-spot events

{c.start} — {c.end} ({c.timezone}) · {f.producer.name} · {lic}

## Français

**Ce que c'est.** Le nombre d'événements vus par les caméras d'angle mort des bus, par jour, tranche horaire, côté
du bus et zone d'environ 1 km. Fichiers : `{f.stem}.csv` et `{f.stem}.parquet` (mêmes lignes), décrits dans
`datapackage.json` (Frictionless Data Package : type, description et unité de chaque colonne).

{EVENT_FR}

**Comment les comptes sont faits.** Chaque événement est rangé selon le jour local et la tranche horaire de son
début ({bands} ; heure de début incluse, heure de fin exclue), le côté du bus dont la caméra l'a vu (avant, droite,
arrière, gauche : `front`, `right`, `rear`, `left`) et la position du bus à son début, arrondie à 0,01 degré de
latitude et de longitude (environ 1,1 km nord-sud et {ew.replace(".", ",")} km est-ouest ici). `events` compte les
événements de chaque case, que le conducteur ait été alerté ou non (l'alerte dépend de la vitesse, du clignotant et
des portes).

**Ce qui a été retiré, et pourquoi.** Les cases de moins de {f.k} événements ne sont pas publiées : une ligne « 1
événement près de cet arrêt tard le soir » parlerait de quelqu'un. Les sommes des lignes sont donc inférieures aux
vrais totaux, et aucun total n'est donné qui permettrait de retrouver une case retirée. La position est celle du bus,
arrondie à environ 1 km ; l'heure est réduite à une tranche ; aucun identifiant de bus, de caméra,
d'événement ou de personne n'est publié. Une case sans latitude ni longitude : le bus n'avait pas de position.

**Ce que ces données ne peuvent pas dire.**

{CANNOT_FR}
- Une ligne absente veut dire aucun événement ou moins de {f.k}, pas « aucun danger ».

## English

**What this is.** The number of events seen by the buses' blind-spot cameras, per day, hour band, side of the bus
and area of about 1 km. Files: `{f.stem}.csv` and `{f.stem}.parquet` (same rows), described in `datapackage.json`
(a Frictionless Data Package: each column's type, description and unit).

{EVENT_EN}

**How the counts are made.** Each event is filed under the local day and hour band of its start ({bands}; first hour
included, last excluded), the side of the bus whose camera saw it (`front`, `right`, `rear`, `left`) and the bus's
position at its start, rounded to 0.01 degree of latitude and longitude (about 1.1 km north-south and {ew} km
east-west here). `events` counts the events in each cell, whether or not the driver was alerted (the alert depends on
the bus's speed, indicator and doors).

**What was removed, and why.** Cells of fewer than {f.k} events are not published: a row saying "1 event near this
stop late at night" would tell about someone. Sums over rows are therefore lower than the true totals, and no total is
given from which a removed cell could be worked out. The position is the bus's, rounded to about 1 km;
the time is reduced to a band; no identifier of a bus, camera, event or person is published. A cell without latitude
and longitude: the bus had no position.

**What the data cannot say.**

{CANNOT_EN}
- A missing row means no event or fewer than {f.k}, not "no danger".
"""


AGREEMENT_PLACEHOLDER = (
    "[À compléter avant l'envoi / to be completed before sending: référence, finalité, personnes autorisées, durée de "
    "conservation et date d'effacement, interdiction de ré-identifier et de transmettre, publication des résultats "
    "seulement agrégés, contact / reference, purpose, authorised users, retention and deletion date, no "
    "re-identification and no onward sharing, results published only as aggregates, contact]"
)


def shared_readme(f: SharedFacts) -> str:
    c = f.coverage
    ew = f"{_east_west_km(c, 0.001) * 1000:.0f}"
    ref = f.agreement or "[référence / reference]"
    dist, speed = ", ".join(f.distance_bands), ", ".join(f.speed_bands)
    return f"""# Événements d'angle mort, données partagées / Blind-spot events, shared data

{c.start} — {c.end} (UTC) · {f.producer.name} → {f.partner} · convention / agreement {ref}

**Pas des données ouvertes : ne pas publier ni transmettre. / Not open data: do not publish or pass on.**

## Convention / Agreement

{AGREEMENT_PLACEHOLDER}

## Français

**Ce que c'est.** Une ligne par événement (`{f.stem}.csv` et `{f.stem}.parquet`, mêmes lignes, décrits dans
`datapackage.json`), remise à {f.partner} dans le cadre de la convention ci-dessus. Cette remise est inscrite au
journal des accès (qui, quand, pourquoi, pour qui).

{EVENT_FR}

**Chaque ligne.** `start_minute` : début de l'événement, UTC, à la minute ; `lat`, `lon` : position du bus arrondie
à 0,001 degré (environ 110 m nord-sud, {ew} m est-ouest ici), ou plus grossière si le bus
l'arrondissait davantage ; `side` : côté du bus ; `level` : niveau d'alerte le plus haut de la zone pendant que la
personne y était (`none` : zone laissée silencieuse, par exemple portes ouvertes ou vitesse ; `info` ; `warning`) ;
`distance_band` : distance la plus courte entre les pieds de la personne et la carrosserie, en mètres ({dist} ; vide
sans calibration au sol) ; `speed_band` : vitesse du bus au début, en km/h ({speed}).

**Méthode de confidentialité.** Retirés : identifiants d'événement et de bus, noms de caméra et de zone, références
de clip, scores et modèle du détecteur, secondes, durées ; distances et vitesses réduites à des tranches ; position
arrondie. Aucun identifiant ne relie deux lignes : les lignes sont triées selon leurs valeurs, leur ordre ne dit
rien d'un bus ni d'une personne. Les images et les numéros de suivi n'entrent jamais dans le stockage des
événements.

**Ce que ces données ne peuvent pas dire.**

{CANNOT_FR}

## English

**What this is.** One row per event (`{f.stem}.csv` and `{f.stem}.parquet`, same rows, described in
`datapackage.json`), handed to {f.partner} under the agreement above. This export is recorded in the access log (who,
when, why, for whom).

{EVENT_EN}

**Each row.** `start_minute`: start of the event, UTC, to the minute; `lat`, `lon`: the bus's position rounded to
0.001 degree (about 110 m north-south, {ew} m east-west here), or coarser where the bus rounded it more; `side`: side
of the bus; `level`: highest alert level of the zone while the person was in it (`none`: the zone was kept quiet, e.g.
doors open or speed; `info`; `warning`); `distance_band`: shortest distance from the person's feet to the bus body,
in metres ({dist}; empty without a ground calibration); `speed_band`: the bus's speed at the start, in km/h
({speed}).

**Privacy method.** Removed: event and bus ids, camera and zone names, clip references, detector scores and model,
seconds, durations; distances and speeds reduced to bands; position rounded. No identifier links two rows: rows are
sorted by their values, so their order says nothing about a bus or a person. Images and track numbers never enter
the event store.

**What the data cannot say.**

{CANNOT_EN}
"""
