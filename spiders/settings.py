"""Settings of the example project: the two lines a user adds, plus what the demo needs."""

BOT_NAME = "mediapipe-demo"
SPIDER_MODULES = ["spiders.spiders"]
NEWSPIDER_MODULE = "spiders.spiders"

ADDONS = {"mediapipe.Addon": 300}
MEDIAPIPE_STORE = "generated_images"
# A thumbnail of every stored picture, under generated_images/thumbnails/<name>/.
MEDIAPIPE_THUMBS = {"small": [320, 320]}
# The demo's only media host; every other private address stays refused.
MEDIAPIPE_ALLOWED_HOSTS = ["demo.mediapipe.test"]

# Sends requests for the demo's host name to the site server the spider starts.
DOWNLOADER_MIDDLEWARES = {"spiders.middlewares.DemoSiteRouter": 100}

ROBOTSTXT_OBEY = False
TELNETCONSOLE_ENABLED = False
LOG_LEVEL = "INFO"
FEED_EXPORT_ENCODING = "utf-8"
