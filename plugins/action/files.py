# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""alteo.hostops.files: a role's files, directories and links in one task (issue 20).

A row of template, copy and file tasks costs, for each task, a worker process and one or
two calls to the host even when nothing changes (about 50 to 90 ms a task). This action
renders the templates and reads the role's files on the controller, as
ansible.builtin.template and ansible.builtin.copy do, then sends every entry to the module
of the same name in one call: it compares, writes what differs, and reports each entry.
A handler named by an entry's ``notify`` is notified when that entry changed, through the
result's notification list, the way Ansible carries a task's own ``notify``.

When the task's host is the controller itself (a local connection, as ``delegate_to:
localhost`` gives, without become or with become to root by root), the action first reads
the files itself, as the module would read them: when every entry is a directory or a file
already as asked (its content, and its owner, group and octal mode where given), the
task's result is the module's unchanged result, without starting a Python interpreter for
the module (under Mitogen, a local interpreter made for that task: about 0.3 s). Anything
else, or anything that differs, goes to the module as before, which writes and reports it.
"""

from __future__ import annotations

import grp
import os
import pwd
import re
import stat
from typing import Any

from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.plugins.action import ActionBase

try:
    from ansible._internal._templating import _template_vars
    from ansible.template import trust_as_template
except ImportError:  # ansible-core < 2.19: rendered without Ansible's template variables
    _template_vars = None

    def trust_as_template(value: str) -> str:
        return value


ENTRY_KEYS = frozenset(
    {
        "dest", "state", "template", "copy", "content", "src", "owner", "group", "mode",
        "validate", "force", "notify", "when",
    }
)  # fmt: skip
SOURCES = ("template", "copy", "content")
STATES = frozenset({"file", "directory", "link", "absent"})
OCTAL_MODE = re.compile(r"0?[0-7]{3,4}")


def _id_matches(wanted: Any, found: int, lookup: Any) -> bool | None:
    """Whether a file's owner or group (FOUND) is WANTED (a name or a number, or None for
    anything); None when the name is unknown here (the module then decides)."""
    if wanted is None:
        return True
    if isinstance(wanted, int) or (isinstance(wanted, str) and wanted.isdigit()):
        return int(wanted) == found
    try:
        return bool(lookup(str(wanted)) == found)
    except KeyError:
        return None


def settled_here(entry: dict[str, Any]) -> bool:
    """Whether the module would leave ENTRY (as the action sends it) as it is, read on this
    machine: a directory, or a file with exactly its content, and the owner, group and
    mode where the entry gives them (a mode in octal digits or a number). False for what
    differs and for what only the module decides (links, absent, a symbolic mode, force
    false, an unknown name)."""
    path = str(entry["dest"])
    if "$" in path:  # the module's dest is a path: Ansible expands its variables there
        return False
    state = entry.get("state")
    try:
        if state == "directory":
            if os.path.islink(path) and os.path.isdir(path):
                path = os.path.realpath(path)  # the module follows a link to a directory
            found = os.lstat(path)
            if not stat.S_ISDIR(found.st_mode):
                return False
        elif state == "file" and entry.get("force", True) is True:
            found = os.lstat(path)
            if not stat.S_ISREG(found.st_mode):
                return False
            with open(path, "rb") as handle:
                if handle.read() != str(entry.get("content")).encode("utf-8"):
                    return False
        else:
            return False
    except (OSError, UnicodeError):
        return False
    mode = entry.get("mode")
    if isinstance(mode, str) and OCTAL_MODE.fullmatch(mode):
        mode = int(mode, 8)
    if mode is not None and (isinstance(mode, bool) or not isinstance(mode, int)):
        return False
    if mode is not None and stat.S_IMODE(found.st_mode) != mode:
        return False
    owner = _id_matches(entry.get("owner"), found.st_uid, lambda name: pwd.getpwnam(name).pw_uid)
    group = _id_matches(entry.get("group"), found.st_gid, lambda name: grp.getgrnam(name).gr_gid)
    return owner is True and group is True


class ActionModule(ActionBase):  # type: ignore[misc]
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset({"files"})

    def run(self, tmp: Any = None, task_vars: dict[str, Any] | None = None) -> dict[str, Any]:
        result: dict[str, Any] = super().run(tmp, task_vars)
        task_vars = task_vars or {}
        entries = self._task.args.get("files")
        if not isinstance(entries, list) or not entries:
            raise AnsibleActionFail("files must be a non-empty list of entries")
        if self._task.notify and any(
            isinstance(entry, dict) and entry.get("notify") for entry in entries
        ):
            raise AnsibleActionFail("give notify on the task or on its files' entries, not both")
        payload = []
        indexes: list[int] = []
        notify: list[list[str]] = []
        for index, entry in enumerate(entries, start=1):
            sent, handlers = self._entry(index, entry, task_vars)
            if sent is not None:
                payload.append(sent)
                indexes.append(index)
                notify.append(handlers)
        if not payload:
            result.update(changed=False, results=[], msg="no entry's when holds")
            return result
        if self._on_this_machine() and all(settled_here(entry) for entry in payload):
            done: dict[str, Any] = {
                "changed": False,
                "results": [
                    {"dest": entry["dest"], "state": entry["state"], "changed": False}
                    for entry in payload
                ],
                "diff": [],
            }
        else:
            done = self._execute_module(
                module_name="alteo.hostops.files",
                module_args={"files": payload},
                task_vars=task_vars,
            )
        result.update(done)
        # The module's arguments hold every file's content: the result (its events, its
        # artifacts, -vvv) shows what was asked without it, as ansible.builtin.copy does.
        result["invocation"] = {
            "module_args": {
                "files": [{k: v for k, v in e.items() if k != "content"} for e in payload]
            }
        }
        done_entries = len(done.get("results") or [])
        if done.get("failed") and done_entries < len(indexes):
            result["msg"] = f"files[{indexes[done_entries]}]: {done.get('msg')}"
        notified: list[str] = []
        for entry, handlers in zip(done.get("results") or [], notify, strict=False):
            if entry.get("changed"):
                notified.extend(name for name in handlers if name not in notified)
        if notified and not self._task.notify:
            # read by the strategy as it reads the notifications of a task's notify keyword
            result["_ansible_notify"] = notified
        return result

    def _on_this_machine(self) -> bool:
        """Whether the module would run here, as this process's user: a local connection
        (Ansible's or Mitogen's) without become, or with become to root by root (an
        inventory's ansible_become reaches the implicit localhost too)."""
        if getattr(self._connection, "transport", None) != "local":
            return False
        context = self._play_context
        return not context.become or (
            os.geteuid() == 0 and (context.become_user or "root") == "root"
        )

    def _entry(
        self, index: int, entry: Any, task_vars: dict[str, Any]
    ) -> tuple[dict[str, Any] | None, list[str]]:
        """The entry as the module takes it (None: its when is false) and its handlers."""
        where = f"files[{index}]"
        if not isinstance(entry, dict):
            raise AnsibleActionFail(f"{where} must be a mapping with dest")
        unknown = sorted(set(entry) - ENTRY_KEYS)
        if unknown:
            raise AnsibleActionFail(f"{where} has unknown keys: {', '.join(unknown)}")
        when = entry.get("when", True)
        if not isinstance(when, bool):
            raise AnsibleActionFail(
                f"{where}.when must be true or false, a template's result (got {when!r})"
            )
        dest = entry.get("dest")
        if not isinstance(dest, str) or not os.path.isabs(dest):
            raise AnsibleActionFail(f"{where}.dest must be an absolute path (got {dest!r})")
        where = f"{where} ({dest})"
        sources = [key for key in SOURCES if entry.get(key) is not None]
        state = entry.get("state") or ("file" if sources else None)
        if state not in STATES:
            raise AnsibleActionFail(
                f"{where}: state must be one of {', '.join(sorted(STATES))} (got {state!r})"
            )
        if state == "file" and len(sources) != 1:
            raise AnsibleActionFail(f"{where}: a file needs one of template, copy or content")
        if state in ("directory", "link") and sources:
            raise AnsibleActionFail(f"{where}: {sources[0]} is for a file, not a {state}")
        if (state == "link") != ("src" in entry):
            raise AnsibleActionFail(f"{where}: src (a link's target) goes with state link only")
        if not when:
            return None, []
        handlers = entry.get("notify") or []
        if isinstance(handlers, str):
            handlers = [handlers]
        if not isinstance(handlers, list) or not all(isinstance(h, str) for h in handlers):
            raise AnsibleActionFail(f"{where}.notify must be a handler name or a list of them")
        # an absent entry's template or copy is not read: one entry can say "this file,
        # or none" with a templated state
        sent = {k: v for k, v in entry.items() if k not in ("template", "copy", "notify", "when")}
        sent["state"] = state
        if state == "absent":
            sent.pop("content", None)
        if "template" in sources:
            sent["content"] = self._render(where, str(entry["template"]), dest, task_vars)
        elif "copy" in sources:
            sent["content"] = self._read(where, str(entry["copy"]))
        elif state == "file":
            sent["content"] = str(entry["content"])
        return sent, list(handlers)

    def _read(self, where: str, name: str) -> str:
        try:
            source = self._find_needle("files", name)
            with open(source, "rb") as handle:
                return handle.read().decode("utf-8")
        except (AnsibleError, OSError) as error:
            raise AnsibleActionFail(f"{where}: copy {name}: {error}") from error
        except UnicodeDecodeError as error:
            raise AnsibleActionFail(
                f"{where}: copy {name} is not UTF-8 text (use ansible.builtin.copy)"
            ) from error

    def _render(self, where: str, name: str, dest: str, task_vars: dict[str, Any]) -> str:
        """The template rendered as ansible.builtin.template renders it (trim_blocks)."""
        try:
            source = self._find_needle("templates", name)
        except AnsibleError as error:
            raise AnsibleActionFail(f"{where}: template {name}: {error}") from error
        text = trust_as_template(self._loader.get_text_file_contents(source))
        search = [*task_vars.get("ansible_search_path", []), self._loader._basedir]
        search.append(os.path.dirname(source))
        searchpath = [p for base in search for p in (os.path.join(base, "templates"), base)]
        variables = dict(task_vars)
        if _template_vars is not None:
            variables.update(
                _template_vars.generate_ansible_template_vars(
                    path=name,
                    fullpath=source,
                    dest_path=dest,
                    include_ansible_managed="ansible_managed" not in variables,
                )
            )
        templar = self._templar.copy_with_new_env(
            searchpath=searchpath, available_variables=variables
        )
        rendered = templar.template(
            text,
            escape_backslashes=False,
            overrides={"trim_blocks": True, "lstrip_blocks": False, "newline_sequence": "\n"},
        )
        return "" if rendered is None else str(rendered)
