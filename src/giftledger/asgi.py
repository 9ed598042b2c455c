"""ASGI entry point for uvicorn workers: settings come from the environment."""

import gc

from giftledger.app import create_app, with_database
from giftledger.config import load_settings

app = create_app(with_database(load_settings()))
# What a worker builds at start-up (the schema, the table metadata, the templates) lives as long as the
# process: kept out of the garbage collector's sight, its full collections under load stay short.
gc.freeze()
