"""Alembic migrations of the server's database; run by ``pinwarden.server.upgrade_database``."""
