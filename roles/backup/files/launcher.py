#!/usr/bin/python3
"""hostops-backup: the command (/usr/local/sbin/hostops-backup) that runs the package
hostops_backup, installed beside it by the alteo.hostops.backup role. Standard library
only; the package's own docstring says what it does."""

import sys

# The role's __backup_lib_dir: the package is installed there, not in Python's own path.
LIB_DIR = "/usr/local/lib/hostops-backup"

# Root runs it: no bytecode is written next to the files Ansible manages.
sys.dont_write_bytecode = True
sys.path.insert(0, LIB_DIR)

from hostops_backup.cli import main  # noqa: E402

sys.exit(main())
