"""The web UI at ``/ui`` (an edge): server-rendered pages over the project's services.

``api.app.create_app`` mounts :func:`create_ui`, so ``mainspring up`` serves it beside the REST
API. Pages: the overview, models, deployments, the decision explorer (why, replay), the review
queue and charts. Templates are Jinja2 with autoescape (``templates/``); charts are inline SVG
drawn in Python (:mod:`mainspring.ui.charts`); there is no JavaScript and nothing is fetched
from the network. Sign-in, roles and CSRF: :mod:`mainspring.ui.session`.
"""

from mainspring.ui.app import create_ui

__all__ = ["create_ui"]
