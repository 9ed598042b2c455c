"""ASGI entry point for uvicorn workers: settings come from the environment."""

from giftledger.app import create_app
from giftledger.config import load_settings

app = create_app(load_settings())
