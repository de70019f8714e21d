# -*- coding: utf-8 -*-
# Copyright: Alteo
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
name: mitogen_linear
short_description: The linear strategy over Mitogen when it is installed, else stock linear
description:
  - hostops' default strategy. When the Python package C(mitogen) (module C(ansible_mitogen))
    is installed beside Ansible, tasks run as with the stock C(linear) strategy but through
    Mitogen's persistent Python interpreter on each host (about 35 ms a no-op task instead
    of about 200 ms with pipelining and SSH multiplexing).
  - Without Mitogen it is the stock C(linear) strategy, with a warning; a playbook run by
    C(ansible-playbook), molecule or AWX from an environment without Mitogen still works.
  - It lets the repository's C(ansible.cfg) name a strategy without the path of a virtual
    environment (Mitogen's own strategy plugins are found only through that path).
  - To run with the stock strategy, set C(ANSIBLE_STRATEGY=linear) (C(hostops) commands
    read C(HOSTOPS_ANSIBLE_STRATEGY=linear)).
author:
  - Alteo hostops team (@alteo)
"""

from typing import Any

from ansible.plugins.loader import strategy_loader
from ansible.utils.display import Display

try:
    import ansible_mitogen.strategy as _mitogen_strategy
except ImportError:  # Mitogen not installed: the stock linear strategy
    _mitogen_strategy = None

# Through the loader, as Mitogen's own strategy plugins get it (the same class object the
# loader gives other plugins).
_Linear: Any = strategy_loader.get("linear", class_only=True)
display = Display()

if _mitogen_strategy is not None:

    class StrategyModule(_mitogen_strategy.StrategyMixin, _Linear):  # type: ignore[misc]
        """Linear, with Mitogen's connection and action plugins wrapped in."""

else:

    class StrategyModule(_Linear):  # type: ignore[no-redef,misc]
        """Stock linear: Mitogen is not installed."""

        def run(self, iterator: Any, play_context: Any) -> Any:
            display.warning(
                "alteo.hostops.mitogen_linear: the Python package 'mitogen' is not installed"
                " beside Ansible; running with the stock linear strategy"
            )
            return super().run(iterator, play_context)
