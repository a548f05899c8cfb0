"""The server: composition root (main.py, cli.py) and its services."""
