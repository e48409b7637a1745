"""The demo's data files (``capex/demo/data/``), read once into typed, frozen values."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from importlib import resources
from typing import Any


@dataclass(frozen=True, slots=True)
class RegionProfile:
    """Who lives in a region: its share of volunteers, time zones, languages and names."""

    share: float
    zones: dict[str, float]
    # First (mother-tongue) languages, BCP 47 in standard form.
    languages: dict[str, float]
    # The chance that someone whose first language is not English lists English too.
    english: float
    first_names: tuple[str, ...]
    last_names: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Texts:
    """Bio templates by what a volunteer offers and wants, skill notes, proper names."""

    offers_bios: tuple[str, ...]
    wants_bios: tuple[str, ...]
    offers_and_wants_bios: tuple[str, ...]
    neither_bios: tuple[str, ...]
    notes: tuple[str, ...]
    proper_names: frozenset[str]


def _read(name: str) -> dict[str, Any]:
    return tomllib.loads((resources.files("capex.demo") / "data" / name).read_text("utf-8"))


def load_region_profiles() -> dict[str, RegionProfile]:
    """``data/regions.toml``: one profile per region code, in the file's order."""
    return {
        code: RegionProfile(
            share=float(region["share"]),
            zones={zone: float(weight) for zone, weight in region["zones"].items()},
            languages={code: float(weight) for code, weight in region["languages"].items()},
            english=float(region["english"]),
            first_names=tuple(region["first_names"]),
            last_names=tuple(region["last_names"]),
        )
        for code, region in _read("regions.toml").items()
    }


def load_texts() -> Texts:
    """``data/texts.toml``."""
    texts = _read("texts.toml")
    bios = texts["bios"]
    return Texts(
        offers_bios=tuple(bios["offers"]),
        wants_bios=tuple(bios["wants"]),
        offers_and_wants_bios=tuple(bios["offers_and_wants"]),
        neither_bios=tuple(bios["neither"]),
        notes=tuple(texts["notes"]),
        proper_names=frozenset(texts["proper_names"]),
    )


REGION_PROFILES: dict[str, RegionProfile] = load_region_profiles()
REGION_CODES = tuple(REGION_PROFILES)
TEXTS = load_texts()
