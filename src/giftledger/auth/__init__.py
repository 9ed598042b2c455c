"""Credentials: password hashing and access tokens."""
