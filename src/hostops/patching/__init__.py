"""Patching: minor updates in the maintenance window, majors only by the client's
agreement, scheduled runs, update classification."""
