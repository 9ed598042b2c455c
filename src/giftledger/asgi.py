"""ASGI entry point for uvicorn workers: settings come from the environment. The app is wrapped in the request
log (request_log.py) outside Starlette's own error handling, so that its error pages carry the request id too; it
tells the metrics (metrics.py) of every request."""

import gc

from giftledger.app import create_app, with_database
from giftledger.config import load_settings
from giftledger.metrics import observe_request
from giftledger.request_log import RequestLog

app = RequestLog(create_app(with_database(load_settings())), observe=observe_request)
# What a worker builds at start-up (the schema, the table metadata, the templates) lives as long as the
# process: kept out of the garbage collector's sight, its full collections under load stay short.
gc.freeze()
