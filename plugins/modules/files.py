#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: files
short_description: A role's files, directories and links in one task
version_added: 0.1.0
description:
  - What a row of M(ansible.builtin.template), M(ansible.builtin.copy) and
    M(ansible.builtin.file) tasks does, in one task and one call to the host. Each entry
    of O(files) is a file (from a template of the role, a file of the role, or given
    content), a directory, a symbolic link, or a path that must not exist; the entries
    are applied in order. Each task of a run costs a worker process and two calls to the
    host for a template that changes nothing; a role's files in one task cost one of
    each.
  - A file's content is compared with the host's by checksum and written only when it
    differs (atomically, after O(files[].validate) accepted it); owner, group and mode
    are set where they differ, as M(ansible.builtin.file) sets them.
  - Templates are rendered on the controller as M(ansible.builtin.template) renders
    them (the role's C(templates) directory, C(trim_blocks), Ansible's template
    variables). Role files are read from the role's C(files) directory, as text.
  - A handler named in an entry's O(files[].notify) is notified when that entry
    changed; the task's own C(notify) keyword notifies its handlers when any entry
    changed. Give one or the other.
  - The work is done by the action plugin of the same name (rendering, notifications)
    and by this module on the host (comparing and writing).
  - When the host is the controller itself (a local connection, as C(delegate_to)
    C(localhost) gives, without become or with become to root by root), the action
    plugin first reads the entries itself. When each one is a directory or a file
    exactly as asked (content, and the owner, group and octal mode the entry gives), the
    result is this module's unchanged result and no Python interpreter is started for
    it. Anything that differs, a link, an absent entry, a symbolic mode, a path with a
    variable to expand or O(files[].force=false) goes to this module.
options:
  files:
    description: The entries, applied in order.
    type: list
    elements: dict
    required: true
    suboptions:
      dest:
        description: The path on the host.
        type: path
        required: true
      state:
        description:
          - V(file) (the default when O(files[].template), O(files[].copy) or
            O(files[].content) is given), V(directory) (made with its missing parents),
            V(link) (a symbolic link to O(files[].src)) or V(absent) (removed, a
            directory with what it holds).
        type: str
        choices: [file, directory, link, absent]
      template:
        description:
          - A template of the role (searched as M(ansible.builtin.template) searches C(src)).
        type: str
      copy:
        description:
          - A file of the role (searched as M(ansible.builtin.copy) searches C(src)), read as
            UTF-8 text.
        type: str
      content:
        description: The file's content, as given.
        type: str
      src:
        description: The target of a V(link).
        type: str
      owner:
        description: The owner (file, directory); left as it is when not given.
        type: str
      group:
        description: The group (file, directory); left as it is when not given.
        type: str
      mode:
        description:
          - The mode (file, directory), as M(ansible.builtin.file)'s
            O(ansible.builtin.file#module:mode).
        type: raw
      validate:
        description:
          - A command that checks the new content before it replaces the file; C(%s) is the
            new file's path.
        type: str
      force:
        description:
          - V(false) writes the file only when the path does not exist yet (an existing
            one is left entirely as it is), as M(ansible.builtin.copy)'s
            O(ansible.builtin.copy#module:force). For a V(link), V(true) replaces a file
            that is in the way.
        type: bool
        default: true
      notify:
        description: Handlers notified when this entry changed.
        type: list
        elements: str
      when:
        description:
          - V(false) leaves the entry out (the path is not looked at). A boolean, the result
            of a template (C("{{ base_login_banner | length > 0 }}")), not a condition's text.
        type: bool
        default: true
attributes:
  check_mode:
    description: Reports what would change and changes nothing.
    support: full
  diff_mode:
    description: The content before and after of each file and each state that changes.
    support: full
notes:
  - Binary files and files larger than a configuration file belong to M(ansible.builtin.copy).
seealso:
  - module: ansible.builtin.template
  - module: ansible.builtin.copy
  - module: ansible.builtin.file
author:
  - Alteo hostops team (@alteo)
"""

EXAMPLES = r"""
- name: Configure journald and logrotate
  alteo.hostops.files:
    files:
      - dest: /etc/systemd/journald.conf.d
        state: directory
        owner: root
        group: root
        mode: "0755"
      - dest: /etc/systemd/journald.conf.d/hostops.conf
        template: journald.conf.j2
        owner: root
        group: root
        mode: "0644"
        notify: [Restart systemd-journald]
      - dest: /etc/logrotate.conf
        template: logrotate.conf.j2
        mode: "0644"
        validate: /usr/sbin/logrotate --debug %s
      - dest: /etc/apache2/conf-enabled/security.conf
        state: absent
"""

RETURN = r"""
results:
  description: Each entry's path, state and whether it changed, in order.
  returned: always
  type: list
  elements: dict
  sample: [{dest: /etc/logrotate.conf, state: file, changed: false}]
"""

import os
import shutil
import tempfile
from typing import Any

from ansible.module_utils.basic import AnsibleModule

# The size up to which a changed file's content before and after goes into the diff.
DIFF_LIMIT = 128 * 1024
ENTRY_SPEC = {
    "dest": {"type": "path", "required": True},
    "state": {"type": "str", "choices": ["file", "directory", "link", "absent"]},
    "template": {"type": "str"},
    "copy": {"type": "str"},
    "content": {"type": "str"},
    "src": {"type": "str"},
    "owner": {"type": "str"},
    "group": {"type": "str"},
    "mode": {"type": "raw"},
    "validate": {"type": "str"},
    "force": {"type": "bool", "default": True},
    "notify": {"type": "list", "elements": "str"},
    "when": {"type": "bool", "default": True},
}


class EntryError(Exception):
    """An entry that cannot be applied: the task fails with this message."""


def kind(path: str) -> str:
    if os.path.islink(path):
        return "link"
    if os.path.isdir(path):
        return "directory"
    if os.path.exists(path):
        return "file"
    return "absent"


def state_diff(path: str, before: str, after: str) -> dict[str, Any]:
    return {
        "before_header": path,
        "after_header": path,
        "before": {"path": path, "state": before},
        "after": {"path": path, "state": after},
    }


def read_text(path: str) -> str | None:
    """The file's text for a diff, or None when it is too large or not text."""
    try:
        if os.path.getsize(path) > DIFF_LIMIT:
            return None
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8")
    except (OSError, UnicodeDecodeError):
        return None


class Applier:
    def __init__(self, module: AnsibleModule) -> None:
        self.module = module
        self.diffs: list[dict[str, Any]] = []

    def attributes(self, entry: dict[str, Any], path: str, changed: bool) -> bool:
        if self.module.check_mode and not os.path.lexists(path):
            return changed
        diff: dict[str, Any] = {"before": {"path": path}, "after": {"path": path}}
        wanted = {key: entry.get(key) for key in ("owner", "group", "mode")}
        changed = self.module.set_fs_attributes_if_different(
            self.module.load_file_common_arguments(wanted, path=path), changed, diff=diff
        )
        if self.module._diff and diff["before"] != diff["after"]:
            self.diffs.append(diff)
        return changed

    def absent(self, entry: dict[str, Any], path: str) -> bool:
        found = kind(path)
        if found == "absent":
            return False
        if not self.module.check_mode:
            try:
                if found == "directory":
                    shutil.rmtree(path)
                else:
                    os.unlink(path)
            except OSError as error:
                raise EntryError(f"{path}: could not remove it: {error}") from error
        if self.module._diff:
            self.diffs.append(state_diff(path, found, "absent"))
        return True

    def directory(self, entry: dict[str, Any], path: str) -> bool:
        if os.path.islink(path) and os.path.isdir(path):
            # a link to a directory: the directory it names (ansible.builtin.file follows it)
            path = os.path.realpath(path)
        found = kind(path)
        if found not in ("absent", "directory"):
            raise EntryError(f"{path} exists and is a {found}, not a directory")
        changed = False
        if found == "absent":
            changed = True
            if self.module._diff:
                self.diffs.append(state_diff(path, "absent", "directory"))
            if self.module.check_mode:
                return True
            # as ansible.builtin.file: each directory made gets the owner, group and mode
            missing = []
            current = path
            while current and not os.path.lexists(current):
                missing.append(current)
                current = os.path.dirname(current.rstrip("/")) or "/"
            for made in reversed(missing):
                try:
                    os.mkdir(made)
                except OSError as error:
                    raise EntryError(f"{made}: could not make it: {error}") from error
                self.attributes(entry, made, True)
            return True
        return self.attributes(entry, path, changed)

    def link(self, entry: dict[str, Any], path: str) -> bool:
        target = entry.get("src")
        if not target:
            raise EntryError(f"{path}: a link needs src (its target)")
        found = kind(path)
        if found == "link" and os.readlink(path) == target:
            return False
        if found == "directory" or (found == "file" and not entry.get("force")):
            raise EntryError(
                f"{path} exists and is a {found}: refusing to replace it with a link"
                + ("" if found == "directory" else " (force: true replaces a file)")
            )
        if self.module._diff:
            self.diffs.append(state_diff(path, found, "link"))
        if not self.module.check_mode:
            made = os.path.join(os.path.dirname(path), f".{os.path.basename(path)}.hostops-link")
            try:
                if os.path.lexists(made):
                    os.unlink(made)
                os.symlink(target, made)
                os.rename(made, path)
            except OSError as error:
                raise EntryError(f"{path}: could not link it to {target}: {error}") from error
        return True

    def file(self, entry: dict[str, Any], path: str) -> bool:
        content = entry.get("content")
        if content is None:
            raise EntryError(f"{path}: a file needs content (template, copy or content)")
        found = kind(path)
        if found == "directory":
            raise EntryError(f"{path} is a directory, not a file")
        if found != "absent" and not entry.get("force"):
            return False
        data = content.encode("utf-8")
        # A link in the file's place (even one to nothing, as /etc/default/locale may be on
        # a fresh host) is replaced by the file, as ansible.builtin.copy replaces it.
        changed = found != "file"
        if not changed:
            with open(path, "rb") as handle:
                changed = handle.read() != data
        if changed:
            parent = os.path.dirname(path) or "/"
            if self.module._diff:
                before = read_text(path) if found == "file" else ""
                if found == "link":
                    self.diffs.append(state_diff(path, "link", "file"))
                if before is not None and len(data) <= DIFF_LIMIT:
                    self.diffs.append(
                        {
                            "before_header": path,
                            "after_header": path,
                            "before": before,
                            "after": content,
                        }
                    )
                else:
                    self.diffs.append({"prepared": f"{path}: content changed (not shown)"})
            if self.module.check_mode:
                return True
            if not os.path.isdir(parent):
                raise EntryError(f"{path}: its directory {parent} does not exist")
            self.write(entry, path, parent, data)
        return self.attributes(entry, path, changed)

    def write(self, entry: dict[str, Any], path: str, parent: str, data: bytes) -> None:
        handle, temporary = tempfile.mkstemp(prefix=".hostops-", dir=parent)
        try:
            with os.fdopen(handle, "wb") as stream:
                stream.write(data)
            validate = entry.get("validate")
            if validate:
                if "%s" not in validate:
                    raise EntryError(f"{path}: validate must name the new file with %s")
                rc, out, err = self.module.run_command(validate % temporary)
                if rc != 0:
                    raise EntryError(
                        f"{path}: validate ({validate}) refused the new content:"
                        f" rc={rc} {(err or out).strip()}"
                    )
            self.module.atomic_move(temporary, path, unsafe_writes=False)
        finally:
            if os.path.lexists(temporary):
                os.unlink(temporary)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "files": {"type": "list", "elements": "dict", "required": True, "options": ENTRY_SPEC}
        },
        supports_check_mode=True,
    )
    applier = Applier(module)
    results: list[dict[str, Any]] = []
    for index, entry in enumerate(module.params["files"], start=1):
        path = entry["dest"]
        if entry.get("template") is not None or entry.get("copy") is not None:
            module.fail_json(
                msg=f"files[{index}] ({path}): template and copy are read by the action plugin"
                " alteo.hostops.files; run the module through it",
                results=results,
            )
        state = entry.get("state") or ("file" if entry.get("content") is not None else "")
        if not state:
            module.fail_json(
                msg=f"files[{index}] ({path}): give a state or content", results=results
            )
        try:
            changed = getattr(applier, state)(entry, path)
        except EntryError as error:
            module.fail_json(msg=str(error), results=results, diff=applier.diffs)
        except OSError as error:
            module.fail_json(msg=f"{path}: {error}", results=results, diff=applier.diffs)
        results.append({"dest": path, "state": state, "changed": bool(changed)})
    module.exit_json(
        changed=any(result["changed"] for result in results),
        results=results,
        diff=applier.diffs,
    )


if __name__ == "__main__":
    main()
