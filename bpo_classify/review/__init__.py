"""The review page of ``bpo-classify review``: a small local web app over :class:`~bpo_classify.corrections.ReviewSession`.

``app.py`` holds the routes (standard library ``http.server``, 127.0.0.1 only); ``static/``
holds the page (HTML, JavaScript, CSS), package data read with ``importlib.resources``, so
nothing is fetched from the network.
"""

from .app import ReviewServer, make_server

__all__ = ["ReviewServer", "make_server"]
