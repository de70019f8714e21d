"""The security watch: the Debian security tracker's advisories for each server, qualified
and reported."""
