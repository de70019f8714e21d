"""Monitoring: registering a server with the Prometheus monitoring server of its level, and
removing it."""
