"""giftledger: an open-source gift card platform with a Toggle-compatible EPOS GraphQL API."""

__version__ = "0.1.0"
