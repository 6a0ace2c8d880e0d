"""ASGI entry point: gunicorn's ``asgi`` worker serves it (``gunicorn.conf.py``).

``POST /predict`` and ``/predict/`` go to the fast lane (``predicciones.fast_lane``); every
other request, and every other method on those paths, to Django's ASGI handler (DRF,
WhiteNoise and the middleware as under WSGI).
"""

import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digits_model.settings")

django_application = get_asgi_application()

from predicciones.fast_lane import PATHS, FastLane  # noqa: E402 - needs the apps loaded

fast_lane = FastLane()


async def application(scope, receive, send):
    kind = scope["type"]
    if kind == "http" and scope["method"] == "POST" and scope["path"] in PATHS:
        await fast_lane(scope, receive, send)
    elif kind == "lifespan":
        await lifespan(receive, send)
    else:
        await django_application(scope, receive, send)


async def lifespan(receive, send):
    """Start-up has nothing to do (``post_worker_init`` loaded the models); at shutdown the
    lane's threads finish their requests."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            fast_lane.close()
            await send({"type": "lifespan.shutdown.complete"})
            return
