"""Backups: listing, running, restoring and verifying a server's restic backups."""
