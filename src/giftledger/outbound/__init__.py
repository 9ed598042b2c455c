"""What leaves giftledger: the mailers that deliver messages (SMTP, or files in development) and the emails
themselves. Messages reach them only through the outbox (storage/outbox.py, services/outbox.py)."""
