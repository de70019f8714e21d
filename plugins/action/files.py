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
"""

from __future__ import annotations

import os
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
        done = self._execute_module(
            module_name="alteo.hostops.files", module_args={"files": payload}, task_vars=task_vars
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
