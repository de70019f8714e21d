# -*- coding: utf-8 -*-
# Copyright: Alteo
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A copy of parsed YAML or JSON data that shares its immutable values.

Ansible's ``DataLoader.load_from_file`` keeps each file it parses and hands out a
``copy.deepcopy`` of it at each load, so that a caller may change what it gets without
changing the kept data. Ansible 2.19 tags every parsed value (its origin in the file,
whether it may be templated): ``copy.deepcopy`` then rebuilds each string and number, and
its tags, through ``__reduce_ex__``. A custom order's re-apply loads about 260 role files
(tasks, defaults, vars, meta, argument specs) at each ``include_role``: about 0.5 s of
copies.

``copy_parsed`` makes the same guarantee at a fraction of the cost: every dictionary and
list is a new one of the same type with the same tags (``copy.copy`` keeps an
Ansible-tagged container's tags), so changing the copy never changes the original; the
values that cannot change (strings, numbers, booleans, None, bytes, dates, tagged or not)
are shared, as Python shares them anyway. A value of any other type is given to
``copy.deepcopy``. A container reached twice (a YAML alias) is copied once and reached
twice in the copy, as ``copy.deepcopy`` does, which also keeps a recursive structure from
looping.
"""

from __future__ import annotations

import copy
import datetime
from typing import Any

try:  # ansible-core 2.19: the tagged types of parsed data
    from ansible.module_utils._internal._datatag import AnsibleTaggedObject

    _TAGGED: dict[type, type] = dict(AnsibleTaggedObject._tagged_type_map)
except ImportError:  # an older ansible-core: plain types only
    _TAGGED = {}

_NATIVE_IMMUTABLE: tuple[type, ...] = (
    str,
    int,
    float,
    bool,
    type(None),
    bytes,
    datetime.date,
    datetime.datetime,
    datetime.time,
)

# Exact types (a subclass may carry state of its own: it goes to copy.deepcopy)
SHARED: frozenset[type] = frozenset(_NATIVE_IMMUTABLE) | frozenset(
    tagged for native, tagged in _TAGGED.items() if native in _NATIVE_IMMUTABLE
)
_DICTS: frozenset[type] = frozenset({dict, _TAGGED.get(dict, dict)})
_LISTS: frozenset[type] = frozenset({list, _TAGGED.get(list, list)})


def copy_parsed(value: Any, memo: dict[int, Any] | None = None) -> Any:
    """Return a copy of VALUE that shares nothing mutable with it (see the module's doc)."""
    kind = type(value)
    if kind in SHARED:
        return value
    if memo is None:
        memo = {}
    made = memo.get(id(value))
    if made is not None:
        return made
    if kind in _DICTS:
        new_dict = dict(value) if kind is dict else copy.copy(value)
        memo[id(value)] = new_dict
        for key, item in new_dict.items():
            if type(item) not in SHARED:
                new_dict[key] = copy_parsed(item, memo)
        return new_dict
    if kind in _LISTS:
        new_list = list(value) if kind is list else copy.copy(value)
        memo[id(value)] = new_list
        for index, item in enumerate(new_list):
            if type(item) not in SHARED:
                new_list[index] = copy_parsed(item, memo)
        return new_list
    # copy.deepcopy's memo holds what this one holds (id of the original: its copy), and
    # the originals stay alive while the copy is made (they are the loader's cache).
    return copy.deepcopy(value, memo)
