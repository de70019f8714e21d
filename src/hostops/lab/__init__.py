"""The lab: Debian hosts booted with systemd-nspawn on this machine, reached over SSH (a
test harness that ops also use to try an order)."""
