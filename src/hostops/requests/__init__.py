"""Ticket requests on a provisioned server: the verbs (vhost, FTP account, database,
mailbox, ...), their arguments checked, each run as a playbook."""
