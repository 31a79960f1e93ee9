"""Thumbnails of stored images (``MEDIAPIPE_THUMBS``): how one is drawn (``render``) and how
each record gets its own, built once and found again by later runs (``builder``)."""
