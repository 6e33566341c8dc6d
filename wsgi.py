"""WSGI entry point: `gunicorn wsgi:app`."""

from core.app import create_app

app = create_app()
