"""What every command shares: errors for people, settings, safe text files, the inventories
(targets), running a playbook through ansible-runner and reading its events."""
