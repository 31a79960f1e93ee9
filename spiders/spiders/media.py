"""``scrapy crawl media -a url=https://example.com/gallery -a depth=1 -O media.jsonl``"""

from __future__ import annotations

import mediapipe.spiders


class MediaSpider(mediapipe.spiders.MediaSpider):
    """The add-on's generic media spider, registered in this project under its name."""

    name = "media"
