"""Several crawl processes sharing one store: each media source claimed in redis, downloaded by
one worker, and its record shared with the others (``MEDIAPIPE_CLAIMS``)."""
