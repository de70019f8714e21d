#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: assert_each
short_description: Several checks in one task, each failing with its own message
version_added: 0.1.0
description:
  - What a row of M(ansible.builtin.assert) tasks with C(quiet) does, in one task. The
    checks are evaluated in order on the controller, and the first one with a false
    condition fails the task with that check's O(checks[].fail_msg). Each task of a run
    costs a worker process of its own; a role's preflight checks in one task cost one.
  - A check's message is rendered only when the check fails, so it may use what the
    checks before it made sure of (a message rendered from a value of the wrong type
    would fail with Jinja2's error instead of saying what is wrong).
  - With O(gather_subset), the facts the checks need are gathered first (M(ansible.builtin.setup)
    with that subset), when one of O(gather_unless) is not among the host's facts yet. The
    checks see them, and they stay the host's facts for the tasks after, as a setup task
    before the checks would leave them; a run whose first play gathered them pays for no
    task of its own.
  - The work is done by the action plugin of the same name; this file is its
    documentation.
options:
  gather_subset:
    description:
      - The facts to gather before the checks (M(ansible.builtin.setup)'s C(gather_subset)),
        when one of O(gather_unless) is missing. Not given, nothing is gathered.
    type: list
    elements: str
  gather_unless:
    description:
      - The facts (named as under C(ansible_facts), without the C(ansible_) prefix, except
        C(ansible_local)) whose presence makes the gathering needless. Only with
        O(gather_subset).
    type: list
    elements: str
    default: [distribution_major_version]
  checks:
    description:
      - The checks, in order. Give the list itself, not a template that makes it.
    type: list
    elements: dict
    required: true
    suboptions:
      that:
        description: A condition or a list of conditions, as M(ansible.builtin.assert)'s.
        type: raw
        required: true
      fail_msg:
        description: The message when one of the conditions is false.
        type: raw
        required: true
      when:
        description: A condition or list of conditions; the check is evaluated only when they hold.
        type: raw
attributes:
  check_mode:
    description:
      - Changes nothing (it reads the host's facts only with O(gather_subset)); the same in
        check mode.
    support: full
  diff_mode:
    description: No diff.
    support: none
seealso:
  - module: ansible.builtin.assert
author:
  - Alteo hostops team (@alteo)
"""

EXAMPLES = r"""
- name: Assert the host's release and the inputs make sense
  alteo.hostops.assert_each:
    # the distribution facts, gathered first unless the run has them already
    gather_subset: [min, distribution]
    checks:
      - that: ansible_facts.distribution_major_version in ['12', '13']
        fail_msg: "{{ inventory_hostname }} runs Debian {{ ansible_facts.distribution_version }}."
      - that: web_php_version in ['8.2', '8.4']
        fail_msg: "web_php_version must be 8.2 or 8.4 (got {{ web_php_version }})."
      - that:
          - web_vhosts | map(attribute='name') | unique | length == web_vhosts | length
        fail_msg: Every vhost needs a name of its own.
      - that: web_tls_min_protocol in ['TLSv1.2', 'TLSv1.3']
        when: web_tls | bool
        fail_msg: web_tls_min_protocol must be TLSv1.2 or TLSv1.3.
"""

RETURN = r"""
msg:
  description: The failing check's message, or how many checks passed.
  returned: always
  type: str
assertion:
  description: The condition that was false.
  returned: failed
  type: str
ansible_facts:
  description: The facts gathered with O(gather_subset), when they were.
  returned: when gathered
  type: dict
"""
