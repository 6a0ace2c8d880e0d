"""WSGI entry point (gunicorn digits_model.wsgi)."""

import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "digits_model.settings")

application = get_wsgi_application()
