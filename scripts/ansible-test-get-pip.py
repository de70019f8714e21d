"""pip for ansible-test's sanity virtual environments, without its download site.

ansible-test bootstraps pip in each new virtual environment with a get-pip script it
downloads from a site our machines cannot reach; it first looks for the script in its
cache (~/.ansible/test/cache/get_pip_<version>.py), where scripts/collection-sanity puts
this file. It installs pip from Python's own ensurepip, then the packages ansible-test
asked for (pip==<version> ...) from the package index, like the original does.
"""

from __future__ import annotations

import ensurepip
import subprocess
import sys

ensurepip.bootstrap(upgrade=True)
wanted = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
subprocess.run([sys.executable, "-m", "pip", "install", *wanted], check=True)
