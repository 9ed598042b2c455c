"""The unit of work: one transaction, with every repository scoped to one account."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncConnection

from giftledger.storage.cards import Cards
from giftledger.storage.catalogue import Catalogue
from giftledger.storage.ledger import Ledger
from giftledger.storage.orders import Contacts, Orders
from giftledger.storage.people import Directory, Team
from giftledger.storage.sites import Sites


class UnitOfWork:
    def __init__(self, conn: AsyncConnection, account_id: int) -> None:
        self.conn = conn
        self.account_id = account_id
        self.cards = Cards(conn, account_id)
        self.ledger = Ledger(conn, account_id)
        self.orders = Orders(conn, account_id)
        self.contacts = Contacts(conn, account_id)
        self.sites = Sites(conn, account_id)
        self.catalogue = Catalogue(conn, account_id)
        self.team = Team(conn, account_id)
        self.directory = Directory(conn)
