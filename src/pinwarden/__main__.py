"""``python -m pinwarden``."""

from pinwarden.cli import run

run()
