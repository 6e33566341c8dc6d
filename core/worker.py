"""Entry point of the ``dramatiq`` CLI: ``dramatiq core.worker``.

Importing this module builds the app, whose factory sets the Redis broker (REDIS_URL) as
dramatiq's global broker and binds every actor to it.
"""

import gc

from core.app import create_app_or_exit

app = create_app_or_exit({"INPROCESS_WORKER": False})
broker = app.extensions["queue"].broker

# As in wsgi.py: the app's long-lived objects are kept out of full garbage collections.
gc.freeze()
