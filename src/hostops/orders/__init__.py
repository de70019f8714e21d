"""Orders: the order file read and checked, its hand-over to playbooks/provision.yml, the
delivery note written from the hosts' own records, the fleet."""
