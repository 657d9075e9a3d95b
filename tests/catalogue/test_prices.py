"""The price rules: the seed's requests keep the seed's prices, the rest follow xAI's cost; the table is checked when
it is loaded, so a wrong operator file stops start-up instead of mispricing requests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from grokgate.catalogue.catalogue import MAX_CREDITS_PER_REQUEST, Catalogue, credits_for, load
from grokgate.config import Settings
from grokgate.jobs.schemas import GenerateRequest
from grokgate.jobs.spec import build_spec

CATALOGUE = load()


def price(catalogue: Catalogue = CATALOGUE, **body: Any) -> int:
    return build_spec(GenerateRequest.model_validate(body), max_image_url_bytes=10**6, catalogue=catalogue).price


@pytest.mark.parametrize("duration", [None, 1, 6, 15])
def test_the_seeds_requests_keep_the_seeds_prices(duration: int | None) -> None:
    extra = {} if duration is None else {"duration": duration}
    assert price(prompt="x", **extra) == 150
    assert price(model="image-to-video", image_url="https://x.test/a.png", **extra) == 150
    assert price(prompt="x", model="text-to-image") == 8
    assert price(prompt="x", model="text-to-image", image_url="https://x.test/a.png") == 8  # an edit, as the seed


def test_prices_that_follow_cost() -> None:
    # 15 s of 1080p on grok-imagine-video-1.5 costs xAI $3.75 (375 credits at $0.01): sold at twice that.
    assert price(prompt="x", model="text-to-video-1.5", duration=15, resolution="1080p") == 750
    assert price(prompt="x", model="text-to-video-1.5", duration=15) == 240
    assert price(prompt="x", model="text-to-video", resolution="720p") == 210
    assert price(prompt="x", model="text-to-image", n=4) == 32
    assert price(prompt="x", model="text-to-image", n=3, resolution="2k") == 36
    assert price(prompt="x", model="text-to-image-2", quality="medium") == 20
    assert price(model="image-to-video-1.5", image_url="https://x.test/a.png", duration=5) == 80 + 2
    assert price(prompt="x", model="video-extend", video_url="https://x.test/v.mp4", duration=10) == 210


def test_seed_price_overrides_still_apply() -> None:
    settings = Settings(prices={"text-to-image": 10, "text-to-video": 200})
    assert price(settings.catalogue, prompt="x", model="text-to-image", n=2) == 20
    assert price(settings.catalogue, prompt="x") == 200
    assert price(Settings().catalogue, prompt="x") == 150


def test_an_operators_catalogue_replaces_the_shipped_one(tmp_path: Path) -> None:
    table = json.loads(CATALOGUE.model_dump_json(by_alias=True))
    table["subModels"] = {"text-to-image": table["subModels"]["text-to-image"]}
    table["subModels"]["text-to-image"]["price"] = {"perImage": 5}
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(table))
    settings = Settings(catalogue_file=path)
    assert list(settings.catalogue.sub_models) == ["text-to-image"]
    assert price(settings.catalogue, prompt="x", model="text-to-image", n=3) == 15


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"fields": {"colour": {}}}, "unknown field"),
        ({"price": {}}, "needs fixed, perSecond or perImage"),
        ({"price": {"perImage": MAX_CREDITS_PER_REQUEST}}, "can reach"),
        ({"price": {"perImage": 1, "resolution": {"2k": 0}}}, "multipliers"),
    ],
)
def test_a_wrong_table_stops_start_up(tmp_path: Path, change: dict[str, Any], says: str) -> None:
    table = json.loads(CATALOGUE.model_dump_json(by_alias=True))
    entry = table["subModels"]["text-to-image"]
    for key, value in change.items():
        entry[key] = {**entry[key], **value} if key == "fields" else value
    path = tmp_path / "catalogue.json"
    path.write_text(json.dumps(table))
    with pytest.raises(ValidationError, match=says):
        Settings(catalogue_file=path)


def test_multipliers_are_exact_and_round_up() -> None:
    entry = CATALOGUE.sub_models["text-to-video"]
    assert credits_for(entry, seconds=6, images=1, resolution="720p", quality=None, inputs=0) == 210
    odd = entry.model_copy(update={"price": entry.price.model_copy(update={"fixed": 3, "resolution": {"720p": 1.1}})})
    assert credits_for(odd, seconds=6, images=1, resolution="720p", quality=None, inputs=0) == 4  # 3.3 -> 4
