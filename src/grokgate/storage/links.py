"""Turning stored media ids into the links customers get: `/media/{id}?exp=…&sig=…` on this server."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grokgate.storage import signing


@dataclass(frozen=True)
class MediaLinks:
    secret: str
    base_url: str
    ttl: float

    def url(self, media_id: str) -> str:
        return f"{self.base_url}/media/{media_id}?{signing.sign(self.secret, media_id, signing.expiry(self.ttl))}"

    def render(self, output: dict[str, Any] | None) -> dict[str, Any] | None:
        """A stored job output (`{"media": {...}, "duration"}`) as the API shows it, with fresh links."""
        if output is None or "media" not in output:
            return output
        media: dict[str, list[str]] = output["media"]
        shown: dict[str, Any] = {}
        if media.get("image"):
            urls = [self.url(media_id) for media_id in media["image"]]
            shown = {"imageUrl": urls[0], "resultUrls": urls}
        if media.get("video"):
            video = self.url(media["video"][0])
            shown = {"videoUrl": video, "resultUrls": [video], "duration": output.get("duration")}
            if media.get("poster"):
                shown["thumbnailUrl"] = self.url(media["poster"][0])
        if output.get("expired"):
            shown["expired"] = True
        return shown
