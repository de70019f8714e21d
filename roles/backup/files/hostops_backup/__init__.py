"""hostops-backup: database dumps and file backups to a restic repository, and their restore.

Installed by the alteo.hostops.backup role as this package in /usr/local/lib/hostops-backup,
with the command /usr/local/sbin/hostops-backup (files/launcher.py) that runs it, and run by
its systemd timers (dumps at the order's time, files nightly, a weekly repository check)
and by the ``hostops backup`` command through playbooks. Standard library only: it runs
on Debian 12 (Python 3.11, restic 0.14) and Debian 13 (Python 3.13, restic 0.18).

What a run guarantees, whatever restic's version does on its own:

* a snapshot is complete or ignored: a configured path that does not exist fails the run
  before restic starts (restic 0.14 skips it with exit status 0), restic's exit status 3
  ("some source data could not be read") fails the run and the incomplete snapshot is
  marked as such (a marker snapshot tagged ``hostops-incomplete``: the repository is
  append-only from here, so the backup host forgets it), and a database dump that fails
  uploads nothing;
* the repository is reached through restic's REST server in append-only mode: this
  server adds snapshots and can never remove any; retention (forget, prune) and the
  repository's checks run on the backup host (hostops-backup-server);
* one run at a time on the host (flock), and stale restic locks left by a killed run on
  this host are removed before the next one (``restic unlock`` removes only stale locks);
* every run publishes its result for node_exporter's textfile collector, written
  atomically; a run killed outright is recorded by the unit's ExecStopPost (``finish``).

The repository password is read by restic from a root-only file (RESTIC_PASSWORD_FILE),
and so is the repository's URL, which carries this server's REST credentials
(RESTIC_REPOSITORY_FILE): neither appears in arguments, the environment of other
processes or logs. The backup host's certificate is checked against its CA (--cacert).

Exit status: 0 success, 1 failure, 2 bad configuration or arguments, 4 refused (the
restore would replace live data and --replace was not given), 75 busy (another run
holds the lock).
"""
