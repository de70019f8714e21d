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
  - Before the first task of a run, under Mitogen, it loads once in C(ansible-playbook)'s
    own process what each task's worker process (forked from it) would otherwise load
    again for every task. That is the list of installed collections (Mitogen's planner
    lists them for each task running a collection's module, which imports every
    collection's package and reads its metadata; the planner is given the list made
    once), and the Jinja2 filter and
    test plugins of C(ansible.builtin) and of this collection. It changes what is loaded
    when, not what runs; a failure there is shown at C(-vvv) and the run goes on.
  - At the start of each play, under either strategy, it reads the play's C(vars_files)
    whose names are plain paths into Ansible's file cache; Ansible would read and parse
    them again for every task and host (it caches only vaulted ones).
  - Under either strategy, the Python code Jinja2 compiles from the templates and
    conditionals of the tasks is kept on disk and read back by the next worker, task and
    run instead of being compiled again (C(plugins/plugin_utils/template_cache.py), keyed
    by the text and everything the code depends on, in a private directory that
    C(HOSTOPS_TEMPLATE_CACHE) names or turns C(off)).
  - Under either strategy, a task whose C(when) is false is given its skipped result
    without forking a worker process for it (about 20 ms each). The condition is
    evaluated as the worker evaluates it and the result is the worker's. Tasks with a
    loop, delegated tasks, includes, meta tasks and handlers are not skipped here, nor is
    a task whose condition holds, fails or warns; a worker (or, for a task that reads no
    host, the next point) evaluates them.
  - Under either strategy, a task that reads no host (C(assert), C(debug), C(fail),
    C(include_vars), C(set_fact), C(set_stats), C(validate_argument_spec), this
    collection's C(assert_each) unless it gathers facts the host lacks, and
    C(include_tasks) and C(include_role), whose file or role the strategy loads), without
    a loop, retries, delegation or async and not a
    handler, is run in C(ansible-playbook)'s own process by Ansible's task executor, on a
    copy of the task and of its variables as a forked worker has them, and its result is
    queued as the worker would queue it (about 30 ms less a task).
  - Under Mitogen, in a play (or batch of C(serial)) of one host, every other task is run
    the same way in C(ansible-playbook)'s own process, through Mitogen's connection as in
    a worker (loops, retries, delegation and handlers included; not C(async), a task with
    a C(timeout), or C(pause), which asks the terminal through a worker). With one host no
    task runs beside it, and forking a worker only costs (about 25 ms a task). Its start
    callback, the callbacks it sends while it runs and its result go through the results
    queue in a worker's order. A play of several hosts keeps one worker a task and host.
  - Under Mitogen, the tasks run that way keep their connection to Mitogen's multiplexer
    and the host's interpreter from one task to the next, where a worker asks the
    multiplexer for them at its start and gives them back at its end (two requests and a
    thread started and stopped, about 6 ms a task). They are given back before a worker is
    forked, at the end of the play, when a connection is reset (C(reset_connection),
    C(reboot)), and after a task that failed or found its host unreachable, so that the
    next task asks the multiplexer again, as a worker would.
  - Under Mitogen, a module's dependencies are asked of the multiplexer once a run (by
    module and search path), and a host's context is sent a module's files and the
    collections' paths once (two requests before each module, about 3 ms).
  - Under Mitogen, the multiplexer compiles each module_utils file once a run to list the
    modules' imports, where Mitogen compiles again every file a module reaches, for each
    module (about 46 files a module; 1.7 s against 0.4 s in a custom order's re-apply).
  - A plugin's name (an action, a module, a connection, a shell) is resolved once a run,
    not at each use (about 4,400 finds of 153 names in a custom order's re-apply); what a
    loader found is forgotten when its directories change (a role's library), and a find
    with errors or of a deprecated plugin is done again, its warnings given again.
  - A Jinja2 filter or test is found through the plugin loader once a run, not once for
    each task's templating environment (about 1,500 finds of 0.2 ms in a custom order's
    re-apply); a loader's directories changed (a role's filter_plugins) forget them.
  - Under either strategy, Ansible's loader hands out the files it keeps (role tasks,
    defaults, vars, argument specs, vars files) as a copy whose dictionaries and lists
    are new and whose strings, numbers and dates are shared, instead of a
    C(copy.deepcopy) that rebuilds every tagged value (about 0.5 s of a custom order's
    re-apply, most of it the role files read again at each C(include_role)). A caller
    changing what it got still changes neither the loader's data nor the next copy.
  - A task run in C(ansible-playbook)'s own process runs on a copy of the task with its
    parent blocks' settings but not their other tasks (Ansible's C(exclude_tasks) copy);
    a full copy copies every task of the task's blocks, for each task (about 10 ms a task
    in a block of 150 tasks).
  - Under Mitogen, C(ansible-playbook) ends once its exit handlers have run (Mitogen's
    multiplexers stopped, Ansible's temporary directory removed, the logs closed) with the
    status it gives C(sys.exit), without Python's teardown of every object of the run
    (about 0.3 s a run); its output is flushed first. A status that is not a number leaves
    the exit to Python.
  - Under Mitogen, the SSH client started for a host gets the C(ControlPath) Ansible's
    C(ssh) connection adds when the SSH options have C(ControlPersist) and no
    C(ControlPath) (this repository's C(ansible.cfg)), the same socket in
    C(control_path_dir), so that a host's first connection stays as a master for the next
    runs of either strategy (about 0.1 s a host a run). A hop after a C(mitogen_via) host
    is left as it is; a directory that cannot be made leaves SSH without a master. A host
    whose SSH server refuses a further session on the master (C(MaxSessions)) is reached
    over a connection of its own, as SSH falls back to. A reset (C(reset_connection),
    C(reboot), C(wait_for_connection)) also stops the master, as the stock connection's
    reset does (C(ssh -O stop)), so that the next connection is a new one.
  - Under Mitogen, on a machine of 2 or 3 CPUs, it leaves the placement of Mitogen's
    processes to the system. Mitogen pins its multiplexer to the first CPU and
    C(ansible-playbook), its workers and the SSH clients to the others (on 2 CPUs, all of
    them to one CPU). Larger machines keep Mitogen's placement.
author:
  - Alteo hostops team (@alteo)
"""

import atexit
import copy
import importlib
import os
import pkgutil
import sys
from collections.abc import Iterator
from typing import Any

from ansible import constants as C
from ansible.collections.list import list_collection_dirs
from ansible.errors import AnsibleFileNotFound
from ansible.playbook.handler import Handler
from ansible.plugins.loader import PluginLoader, filter_loader, strategy_loader, test_loader
from ansible.utils.display import Display

try:
    import ansible_mitogen.affinity as _mitogen_affinity
    import ansible_mitogen.planner as _mitogen_planner
    import ansible_mitogen.process as _mitogen_process
    import ansible_mitogen.strategy as _mitogen_strategy
except ImportError:  # Mitogen not installed: the stock linear strategy
    _mitogen_affinity = None
    _mitogen_planner = None
    _mitogen_process = None
    _mitogen_strategy = None

# ansible-core's own classes that a task's worker uses to skip it (2.19): without them (another
# release), every task goes to a worker, as with the stock strategy.
try:
    from ansible._internal import _display_utils, _task
    from ansible._internal._templating._engine import TemplateEngine
    from ansible.executor.task_executor import TaskExecutor
    from ansible.executor.task_result import _RawTaskResult
    from ansible.plugins import loader as _plugin_loader
except ImportError:
    _RawTaskResult = None

# Through the loader, as Mitogen's own strategy plugins get it (the same class object the
# loader gives other plugins).
_Linear: Any = strategy_loader.get("linear", class_only=True)
display = Display()

# The Jinja2 plugins of this collection, loaded by file (a template naming one filter loads
# the collection's every filter file to find it).
_OWN_JINJA_PACKAGES = (
    "ansible_collections.alteo.hostops.plugins.filter",
    "ansible_collections.alteo.hostops.plugins.test",
)
_warmed = False


def _load_once() -> None:
    """Load in this process, once, what every task's worker would load again (see above)."""
    global _warmed  # noqa: PLW0603 - once per ansible-playbook process
    if _warmed:
        return
    _warmed = True
    try:
        _no_cpu_pinning_on_a_small_machine()
        _decode_facts_once()
        if _mitogen_process is not None:
            _exit_without_teardown()
            _keep_contexts()
            _ssh_control_path()
            _stop_masters_on_reset()
            _ask_the_multiplexer_once()
            _scan_module_utils_once()
        _list_collections_once()
        _find_plugins_once()
        _jinja_plugins_once()
        for loader in (filter_loader, test_loader):  # ansible.builtin's Jinja2 plugins
            for _plugin in loader.all(class_only=True):
                pass
        for package_name in _OWN_JINJA_PACKAGES:
            package = importlib.import_module(package_name)
            for module in pkgutil.iter_modules(package.__path__):
                importlib.import_module(f"{package_name}.{module.name}")
    except Exception as err:  # a head start only, never a reason to stop a run
        display.vvv(f"alteo.hostops.mitogen_linear: loading ahead of the tasks failed: {err}")


# ansible-playbook's exit status, as its last step gives it to sys.exit (see below)
_exit_status: list[int] = []


def _exit_without_teardown() -> None:
    """End ansible-playbook without the interpreter's teardown of its objects.

    Once its work is done and its exit handlers have run (Mitogen's multiplexers stopped
    and waited for, Ansible's temporary directory removed, the logs closed), Python frees
    every object of the run one by one (a custom order's re-apply: about 0.3 s of nothing
    but freeing, in every run). The status ansible-playbook gives sys.exit, an integer, is
    recorded; an exit handler registered then (the last, so the first to run) runs the
    others, once each, as Python would, flushes the output and ends the process with that
    status (120 when the output cannot be written, as Python's). A status that is not an
    integer (a message), another process (a forked worker), an uncaught exception (Python
    prints it and sets sys.last_value) or an exit handler that was never reached leave
    the exit to Python.
    """
    pid = os.getpid()
    python_exit = sys.exit

    def record(status: Any = None) -> Any:
        if os.getpid() == pid and (status is None or isinstance(status, int)):
            _exit_status.append(int(status or 0))  # Ansible's ExitCode is an IntEnum
            # registered last, run first: the others are then run once, by it
            atexit.unregister(exit_now)
            atexit.register(exit_now)
        return python_exit(status)

    def exit_now() -> None:
        # an exception that ended the program after a status was recorded (one caught
        # and forgotten by whoever called sys.exit) is Python's to report, with its status
        if os.getpid() != pid or not _exit_status or hasattr(sys, "last_value"):
            return
        atexit.unregister(exit_now)
        atexit._run_exitfuncs()  # every other handler, once, as Python would run them
        status = _exit_status[-1]
        for stream in (sys.stdout, sys.stderr):
            if stream is None or stream.closed:
                continue
            try:
                stream.flush()
            except OSError:  # Python's own exit status when its output cannot be written
                status = 120
        os._exit(status)

    sys.exit = record


def _no_cpu_pinning_on_a_small_machine() -> None:
    """Let the operating system place Mitogen's processes on a machine of 2 or 3 CPUs.

    Mitogen pins its connection multiplexer to the first CPU and, on a machine of fewer
    than four, ansible-playbook's own process and every task's worker (and the SSH
    clients) to the others: on 2 CPUs all of them share one, the other running the
    multiplexer alone (a no-op task on 8 hosts: 12.7 s pinned, 8.7 s not). Larger machines
    keep Mitogen's placement. Done before Mitogen starts its multiplexer (the first play).
    """
    if _mitogen_affinity is None or (os.cpu_count() or 1) >= 4:
        return
    if isinstance(_mitogen_affinity.policy, _mitogen_affinity.FixedPolicy):
        _mitogen_affinity.policy = _mitogen_affinity.Policy()


def _ssh_control_path() -> None:
    """Give the SSH client Mitogen starts for a host the ControlPath the stock connection
    would give it.

    With C(ControlPersist) among the SSH options and no C(ControlPath) (this repository's
    C(ansible.cfg)), Ansible's C(ssh) connection adds a C(ControlPath) in its
    C(control_path_dir): the first client becomes a master that outlives the run, and the
    next runs open a session on its connection. Mitogen passes the same options without a
    C(ControlPath), so SSH makes no master and every run connects and authenticates again
    (about 0.1 s a host; 0.25 s for a custom order's three hosts, a ping of each). The
    path is the stock connection's (its C(control_path) or its hash of host, port and user, in
    C(control_path_dir), made 0700), so both strategies share a host's master. Only for the
    SSH client started on this machine: a hop after a C(mitogen_via) host is started there,
    where the directory is not.
    """
    from ansible_mitogen import connection  # noqa: PLC0415 - Mitogen is there

    methods = connection.CONNECTION_METHOD
    stock = methods.get("ssh")
    if stock is None or getattr(stock, "_alteo_hostops_control_path", False):
        return

    def connect_ssh(spec: Any) -> Any:
        result = stock(spec)
        if spec.mitogen_via():
            return result
        kwargs = result["kwargs"]
        kwargs["ssh_args"] = with_control_path(
            kwargs.get("ssh_args") or [],
            _ssh_option(spec, "control_path_dir"),
            _ssh_option(spec, "control_path"),
            host=kwargs.get("hostname"),
            port=kwargs.get("port"),
            user=kwargs.get("username"),
        )
        return result

    connect_ssh._alteo_hostops_control_path = True  # type: ignore[attr-defined]
    for name, method in list(methods.items()):
        if method is stock:
            methods[name] = connect_ssh


def _stop_masters_on_reset() -> None:
    """A reset under Mitogen (C(meta: reset_connection), C(reboot), C(wait_for_connection))
    also tells the host's SSH master to stop taking sessions, as the stock connection's
    reset does (C(ssh -O stop)): the next connection is a new one, which a check that the
    host still lets Ansible in (a firewall's new rule set) must be, and a rebooted host
    gets a master of its own. Mitogen's own reset only ends its interpreters."""
    from ansible_mitogen import connection  # noqa: PLC0415 - Mitogen is there

    cls = connection.Connection
    if getattr(cls, "_alteo_hostops_stops_masters", False):
        return
    build_stack, reset = cls._build_stack, cls.reset

    def recorded_build_stack(self: Any) -> Any:
        built = build_stack(self)
        self._alteo_hostops_stack = built[1]
        return built

    def reset_and_stop(self: Any) -> Any:
        self._alteo_hostops_stack = None
        try:
            return reset(self)
        finally:
            stop_master(getattr(self, "_alteo_hostops_stack", None))

    cls._build_stack = recorded_build_stack
    cls.reset = cls._reset = reset_and_stop
    cls._alteo_hostops_stops_masters = True


def stop_master(stack: Any) -> bool:
    """Ask the SSH master of the stack's first hop (the SSH client this machine starts) to
    stop taking sessions, when its options name a ControlPath; whether it was asked and
    said yes (no master, another first hop: no)."""
    first = stack[0] if stack else None
    if not isinstance(first, dict) or first.get("method") != "ssh":
        return False
    kwargs = first.get("kwargs") or {}
    args = [str(arg) for arg in kwargs.get("ssh_args") or []]
    if not any("controlpath" in arg.lower() for arg in args) or not kwargs.get("hostname"):
        return False
    command = [kwargs.get("ssh_path") or "ssh", *args, "-O", "stop"]
    if kwargs.get("username"):
        command += ["-l", str(kwargs["username"])]
    if kwargs.get("port"):
        command += ["-p", str(kwargs["port"])]
    command.append(str(kwargs["hostname"]))
    import subprocess  # noqa: PLC0415 - at a reset only

    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=15, check=False)
    except (OSError, subprocess.SubprocessError) as err:
        display.vvv(f"alteo.hostops.mitogen_linear: no SSH master stopped: {err}")
        return False
    display.vvv(f"alteo.hostops.mitogen_linear: SSH master stop: {done.stderr.strip()}")
    return done.returncode == 0


def _ssh_option(spec: Any, name: str) -> Any:
    """An option of the ssh connection for the spec's host (its variables, then the
    configuration), as Mitogen reads the others."""
    try:
        return spec._connection_option(name)
    except Exception:  # a jump host's spec (MitogenViaSpec) has no connection plugin: its
        # host's variables then, as Mitogen reads its other SSH options
        hostvars = (getattr(spec, "_task_vars", None) or {}).get("hostvars") or {}
        variables = hostvars.get(getattr(spec, "_inventory_name", None)) or {}
        return C.config.get_config_value(
            name, plugin_type="connection", plugin_name="ssh", variables=variables
        )


def with_control_path(
    ssh_args: list[str],
    directory: str | None,
    control_path: str | None,
    *,
    host: Any,
    port: Any,
    user: Any,
) -> list[str]:
    """SSH's arguments with the stock connection's C(ControlPath) added where it adds one:
    C(ControlPersist) given, no C(ControlPath). A directory that cannot be made or written
    leaves them as they are (SSH without a master, as before)."""
    lowered = [str(arg).lower() for arg in ssh_args]
    if not any("controlpersist" in arg for arg in lowered) or any(
        "controlpath" in arg for arg in lowered
    ):
        return list(ssh_args)
    from ansible.plugins.connection.ssh import Connection  # noqa: PLC0415 - in a run only
    from ansible.utils.path import makedirs_safe, unfrackpath  # noqa: PLC0415

    cpdir = unfrackpath(directory or "~/.ansible/cp")
    try:
        makedirs_safe(cpdir, 0o700)
    except Exception as err:  # SSH without a master, as Mitogen alone starts it
        display.vvv(f"alteo.hostops.mitogen_linear: no SSH ControlPath in {cpdir}: {err}")
        return list(ssh_args)
    if not (os.path.isdir(cpdir) and os.access(cpdir, os.W_OK)):
        display.vvv(f"alteo.hostops.mitogen_linear: no SSH ControlPath: {cpdir} not writable")
        return list(ssh_args)
    path = control_path or Connection._create_control_path(host, port, user)
    return [*ssh_args, "-o", f'ControlPath="{path % {"directory": cpdir}}"']


# The facts of each host as last decoded from the fact cache, by (cache, host): the
# payload decoded (the cache's own string) and what it decoded to.
_decoded_facts: dict[tuple[int, str], tuple[Any, Any]] = {}


def _decode_facts_once() -> None:
    """Decode a host's facts from Ansible's fact cache once for each time they are set.

    Ansible 2.19 keeps a host's facts in a persistent fact cache (jsonfile, which
    ansible-runner sets for hostops' runs) as one JSON string, and decodes that string at
    each read: the variable manager reads it for every task and host (the custom order's
    re-apply: 733 reads, about 5% of ansible-playbook's time). The string changes only when
    the facts are set (a fact gathering, a cacheable set_fact), and the cache hands back
    the same string object until the next set. So the facts decoded from that very string
    are handed out again; a cache that hands back a new string at each read is decoded at
    each read, as before. Ansible's callers expect one dictionary handed out again: the
    memory cache (not encoded) does so, the variable manager copies the facts into each
    task's variables, and a change of facts is a set, which stores a new string.
    """
    try:
        from ansible._internal._plugins import _cache  # noqa: PLC0415 - ansible-core 2.19's

        cls = _cache.PluginInterposer
        decode, payload_key = cls._decode, cls._PAYLOAD_KEY
    except (ImportError, AttributeError):  # another ansible-core: its own reads, unchanged
        return
    if getattr(cls, "_alteo_hostops_once", False):
        return

    def get_once(self: Any, key: str) -> Any:
        value = self.__wrapped__.get(self._get_key(key))
        payload = value.get(payload_key) if isinstance(value, dict) else None
        slot = (id(self.__wrapped__), key)
        kept = _decoded_facts.get(slot)
        if kept is not None and payload is not None and kept[0] is payload:
            return kept[1]
        facts = decode(self, value)
        if isinstance(payload, str):  # the entry holds the string: its id stays its own
            _decoded_facts[slot] = (payload, facts)
        return facts

    cls.get = get_once
    cls._alteo_hostops_once = True


def _list_collections_once() -> None:
    """List the installed collections once; Mitogen's planner gets that list from here.

    The planner lists them again in each worker for each task running a collection's
    module (``_load_collections``: every collection directory walked and its metadata
    read, about 20 ms a task); they do not change during a run.
    """
    dirs = tuple(os.fsdecode(path) for path in list_collection_dirs())
    if _mitogen_planner is None or not callable(
        getattr(_mitogen_planner, "_load_collections", None)
    ):
        return

    def _load_collections(invocation: Any) -> None:
        invocation._extra_sys_paths.update(dirs)

    _mitogen_planner._load_collections = _load_collections


# The plugins found once in this process: by loader and request, the loader and what it
# found (see below).
_plugin_finds: dict[tuple[Any, ...], tuple[Any, Any]] = {}
_FIND_LISTS = (
    "redirect_list", "raw_error_list", "error_list", "import_error_list", "load_attempts",
    "deprecation_warnings",
)  # fmt: skip


def _found_copy(found: Any) -> Any:
    """A copy of what a find found (a PluginLoadContext) for a caller that may change it."""
    copied = copy.copy(found)
    for name in _FIND_LISTS:
        value = getattr(found, name, None)
        if isinstance(value, list):
            setattr(copied, name, list(value))
    return copied


def _find_plugins_once() -> None:
    """Find each plugin once a run: its name resolved to its file, by loader and request.

    Ansible resolves a plugin's name at each use, for every task: its action plugin, its
    module, the connection's and the shell's plugins (4,400 finds of 153 names in a custom
    order's re-apply, collection routing and files looked up each time: about 0.3 s).
    What a name resolves to (or that it resolves to nothing: a module without an action
    plugin of its name) does not change while the loader's directories do not: a find
    without errors and not deprecated (those are found again, their warnings given again)
    is kept here and a copy handed out; a loader's directories changed (a role's library
    or plugin directories added) forget what it found.
    """
    if getattr(PluginLoader, "_alteo_hostops_once", False):
        return
    find, clear_caches = PluginLoader.find_plugin_with_context, PluginLoader._clear_caches

    def find_once(  # noqa: PLR0917 - the signature of the method it replaces
        self: Any,
        name: str,
        mod_type: str = "",
        ignore_deprecated: bool = False,
        check_aliases: bool = False,
        collection_list: Any = None,
    ) -> Any:
        try:
            listed = None if collection_list is None else tuple(collection_list)
            key = (id(self), name, mod_type, ignore_deprecated, check_aliases, listed)
            hash(key)
        except TypeError:  # not a request that can be kept: found as before
            return find(self, name, mod_type, ignore_deprecated, check_aliases, collection_list)
        kept = _plugin_finds.get(key)
        if kept is not None and kept[0] is self:
            return _found_copy(kept[1])
        found = find(self, name, mod_type, ignore_deprecated, check_aliases, collection_list)
        if not (found.raw_error_list or found.error_list or found.deprecated):
            _plugin_finds[key] = (self, _found_copy(found))
        return found

    def clear_caches_too(self: Any) -> None:
        clear_caches(self)
        for key in [key for key, kept in _plugin_finds.items() if kept[0] is self]:
            del _plugin_finds[key]

    PluginLoader.find_plugin_with_context = find_once
    PluginLoader._clear_caches = clear_caches_too
    PluginLoader._alteo_hostops_once = True


# The filters and tests found once in this process, by loader type and name (see below).
_jinja_plugins: dict[tuple[str, str], Any] = {}


def _jinja_plugins_once() -> None:
    """Find each Jinja2 filter and test once a run, not once for each task that uses it.

    Each task's templating gets a Jinja2 environment of its own, whose filter and test
    mappings find a plugin by its name through Ansible's plugin loader at its first use
    (a collection's routing, its files, the builtin names tried as plugins before Jinja2's
    own): about 1,500 finds in a custom order's re-apply, 0.2 ms each. What a name finds
    does not change while the loaders' directories do not: the wrapped function the
    mapping makes is kept here and given to the next environment's mapping, and forgotten
    when a loader's directories change (a role's filter_plugins). A name that finds nothing
    is not kept: it is looked for again, and fails again, as before.
    """
    try:
        from ansible._internal._templating._jinja_plugins import (  # noqa: PLC0415
            JinjaPluginIntercept,
        )
        from ansible.plugins.loader import Jinja2Loader  # noqa: PLC0415
    except ImportError:  # another ansible-core: its own finds, unchanged
        return
    if getattr(JinjaPluginIntercept, "_alteo_hostops_once", False):
        return
    find, clear_caches = JinjaPluginIntercept.__getitem__, Jinja2Loader._clear_caches

    def find_once(self: Any, key: str) -> Any:
        found = self._wrapped_funcs.get(key)  # this mapping's own, set or found before
        if found is not None:
            return found
        slot = (self._plugin_loader.type, key)
        found = _jinja_plugins.get(slot)
        if found is None or found[0] is not self._jinja_builtins:
            found = (self._jinja_builtins, find(self, key))  # raises when nothing is found
            _jinja_plugins[slot] = found
        self._wrapped_funcs[key] = found[1]
        return found[1]

    def clear_caches_too(self: Any) -> None:
        clear_caches(self)
        for slot in [slot for slot in _jinja_plugins if slot[0] == self.type]:
            del _jinja_plugins[slot]

    JinjaPluginIntercept.__getitem__ = find_once
    Jinja2Loader._clear_caches = clear_caches_too
    JinjaPluginIntercept._alteo_hostops_once = True


def _cache_templates() -> None:
    """Keep Jinja2's compiled templates on disk for the workers (template_cache)."""
    try:
        from ansible_collections.alteo.hostops.plugins.plugin_utils import (  # noqa: PLC0415
            template_cache,
        )

        if template_cache.installed() is not None:
            return
        dirs = [os.fsdecode(path) for path in list_collection_dirs()]
        cache = template_cache.install(dirs)
        display.vvv(
            "alteo.hostops.mitogen_linear: compiled templates kept in "
            f"{cache.directory if cache else 'nothing (the cache is off)'}"
        )
    except Exception as err:  # a head start only, never a reason to stop a run
        display.vvv(f"alteo.hostops.mitogen_linear: the template cache is off: {err}")


def _copy_loaded_files_faster() -> None:
    """Hand out the loader's kept files with a copy that shares their immutable values.

    Ansible's DataLoader parses a file once and hands out a copy.deepcopy of it at each
    load, which rebuilds every tagged string and number (about 0.5 s of a custom order's
    re-apply, most of it the role files read again at each include_role). The copy made
    here (plugin_utils/parsed_copy.py) gives callers the same guarantee: new dictionaries
    and lists with their tags, the immutable values shared; anything else deep-copied.
    """
    try:
        from ansible.parsing.dataloader import DataLoader  # noqa: PLC0415
        from ansible_collections.alteo.hostops.plugins.plugin_utils.parsed_copy import (  # noqa: PLC0415
            copy_parsed,
        )
    except ImportError as err:  # a head start only
        display.vvv(f"alteo.hostops.mitogen_linear: the loader's copies are Ansible's: {err}")
        return
    if getattr(DataLoader, "_alteo_hostops_copies", False):
        return
    load_from_file = DataLoader.load_from_file

    def load_and_copy(  # noqa: PLR0917 - the signature of the method it replaces
        self: Any,
        file_name: str,
        cache: str = "all",
        unsafe: bool = False,
        json_only: bool = False,
        trusted_as_template: bool = False,
    ) -> Any:
        data = load_from_file(self, file_name, cache, True, json_only, trusted_as_template)
        return data if unsafe else copy_parsed(data)

    DataLoader.load_from_file = load_and_copy
    DataLoader._alteo_hostops_copies = True


def _cache_vars_files(loader: Any, play: Any) -> None:
    """Parse the play's vars_files once for the whole run.

    Ansible reads a play's vars_files again for each task and host (their data is cached
    only when vaulted), about 3 ms a file each time. A vars file whose name is a plain path
    is put in the loader's cache here, found and read exactly as the variable manager finds
    and reads it; the variable manager then takes it from the cache. Templated names,
    lists of candidates and missing files are left to Ansible. A file is thus read once a
    run: none of the collection's playbooks writes a vars file while it runs.
    """
    try:
        search = play.get_search_path()
        for name in play.get_vars_files():
            if not isinstance(name, str) or "{{" in name or "{%" in name:
                continue
            try:
                found = loader.path_dwim_relative_stack(search, "vars", name)
            except AnsibleFileNotFound:
                continue
            loader.load_from_file(found, cache="all", unsafe=True, trusted_as_template=True)
    except Exception as err:  # a head start only, never a reason to stop a run
        display.vvv(f"alteo.hostops.mitogen_linear: reading the vars files ahead failed: {err}")


# Tasks whose skipping is not a plain result: the strategy itself handles their results.
_NOT_SKIPPED_HERE = frozenset(C._ACTION_ALL_INCLUDES + C._ACTION_META)


def _skip_without_a_worker(
    strategy: Any, host: Any, task: Any, task_vars: dict[str, Any], play_context: Any
) -> bool:
    """Give a task whose condition is false its skipped result here, without a worker.

    Ansible forks a worker process for each task and host, also to find that the task's
    'when' is false (about 20 ms each; a custom order's re-apply skips about 100). The
    condition is evaluated here exactly as the worker evaluates it (the task's conditions
    with its parents', on the task's variables with the connection's magic variables and
    the search path added) and, when false, the worker's result is queued as the worker
    would queue it. A task with a loop (its condition is evaluated per item), a delegated
    task (its variables are the delegate's), an include, a meta task or a handler goes to
    a worker as before, and so does any task whose condition holds or cannot be evaluated
    here: the worker then evaluates it and reports its error.
    """
    if (
        _RawTaskResult is None
        or not task.when
        or task.loop is not None
        or task.loop_with
        or task.delegate_to
        or task.action in _NOT_SKIPPED_HERE
        or isinstance(task, Handler)
    ):
        return False
    try:
        with (
            _task.TaskContext(task),
            _display_utils.DeferredWarningContext(variables=task_vars) as warnings,
        ):
            skipped = _skipped_result(strategy, host, task, task_vars, play_context)
        if skipped is None or warnings.get_warnings() or warnings.get_deprecation_warnings():
            return False  # it holds, or it warned: the worker runs it and reports that
        fields, result = skipped
        reported = task.copy(exclude_parent=True, exclude_tasks=True)
        reported._parent = task._parent
        reported.from_attrs(fields)
    except Exception as err:  # the worker evaluates it, and reports what went wrong
        display.vvvv(f"alteo.hostops.mitogen_linear: {task.get_name()} goes to a worker: {err}")
        return False
    made = (reported, result, fields)
    return _queue_result(strategy, host, task, (task_vars, play_context), made)


def _announce(
    strategy: Any, host: Any, task: Any, task_vars: dict[str, Any], play_context: Any
) -> None:
    """What the strategy does when it hands a task to a worker: the task recorded for its
    result, its start callback sent."""
    strategy._queued_task_cache[(host.name, task._uuid)] = {
        "host": host,
        "task": task,
        "task_vars": task_vars,
        "play_context": play_context,
    }
    strategy._tqm.send_callback("v2_runner_on_start", host, task)


def _queue_result(
    strategy: Any,
    host: Any,
    task: Any,
    queued: tuple[dict[str, Any], Any] | None,
    made: tuple[Any, dict[str, Any], dict[str, Any]],
) -> bool:
    """Queue a result made here (the task as reported, its result and its fields) where the
    task's worker would have queued its own (QUEUED: the task's variables and play context
    for the task's start; None when it was announced already)."""
    reported, result, fields = made
    if queued is not None:
        task_vars, play_context = queued
        _announce(strategy, host, task, task_vars, play_context)
    with strategy._results_lock:
        strategy._results.append(
            _RawTaskResult(host=host, task=reported, return_data=result, task_fields=fields)
        )
    strategy._pending_results += 1
    return True


# Actions that read no host and need no connection: their worker only templates and
# evaluates (ansible-core's own assert, debug, fail, include_vars, set_fact, set_stats,
# validate_argument_spec, and this collection's assert_each), or says which file or role
# to include (include_tasks, include_role: the strategy loads it, here as before).
_CONTROLLER_ACTIONS = frozenset(
    f"{prefix}{name}"
    for name in (
        "assert", "debug", "fail", "include_vars", "set_fact", "set_stats",
        "validate_argument_spec",
    )
    for prefix in ("", "ansible.builtin.", "ansible.legacy.")
) | {"alteo.hostops.assert_each"} | frozenset(C._ACTION_ALL_INCLUDES)  # fmt: skip


def _reads_no_host(task: Any, task_vars: dict[str, Any]) -> bool:
    """Whether TASK is one of _CONTROLLER_ACTIONS that reads no host this time: an
    assert_each with gather_subset reads the host's facts when one of gather_unless is
    not among them (then it runs as a module task does, with its connection)."""
    if task.action not in _CONTROLLER_ACTIONS:
        return False
    if task.action != "alteo.hostops.assert_each":
        return True
    from ansible_collections.alteo.hostops.plugins.plugin_utils.gathering import (  # noqa: PLC0415
        gathers,
    )

    try:
        return not gathers(task.args, task_vars.get("ansible_facts"))
    except ValueError:  # a template or a mistake: the action judges (and says) it
        return False


def _execute_here(
    strategy: Any, host: Any, task: Any, task_vars: dict[str, Any], play_context: Any
) -> tuple[Any, dict[str, Any]]:
    """Run TASK with Ansible's own TaskExecutor in this process, on a copy of the task and
    of its variables as a forked worker has them: the task as run, and its result.

    The copy has the task's parent blocks (their settings, which the task inherits) but
    not the blocks' other tasks, which the executor never reads: copying them would copy
    every task of a role's file for each of its tasks.
    """
    worker_task = task.copy(exclude_tasks=True)
    with _task.TaskContext(worker_task):
        result = TaskExecutor(
            host,
            worker_task,
            dict(task_vars),
            play_context,
            strategy._loader,
            _plugin_loader.get_plugin_loader_namespace(),
            strategy._final_q,
            strategy._variable_manager,
        ).run()
    return worker_task, result


def _run_without_a_worker(
    strategy: Any, host: Any, task: Any, task_vars: dict[str, Any], play_context: Any
) -> bool:
    """Run a task that reads no host here, with the worker's code, without a worker.

    A worker process is forked for each task and host, also for an assert or a set_fact
    that only templates on the controller (about 30 ms each; a custom order's re-apply runs
    about 70). Such a task (one of _CONTROLLER_ACTIONS, without a loop, retries, delegation
    or async, not a handler) is run here by Ansible's own TaskExecutor, on a copy of the
    task and of its variables as the forked worker has, and its result is queued as the
    worker would queue it. Anything else (an assert_each that gathers facts too), or a task
    whose executor raises here, goes to a worker as before (under Mitogen, in a play of one
    host, it is run in this process as a module task is).
    """
    if (
        _RawTaskResult is None
        or not _reads_no_host(task, task_vars)
        or task.loop is not None
        or task.loop_with
        or task.until
        or task.delegate_to
        or task.async_val
        or isinstance(task, Handler)
    ):
        return False
    try:
        worker_task, result = _execute_here(strategy, host, task, task_vars, play_context)
        fields = worker_task.dump_attrs()
    except Exception as err:  # the worker runs it, and reports what went wrong
        display.vvvv(f"alteo.hostops.mitogen_linear: {task.get_name()} goes to a worker: {err}")
        return False
    made = (worker_task, result, fields)
    return _queue_result(strategy, host, task, (task_vars, play_context), made)


# Actions that wait for an answer typed on the terminal, which only a worker can ask for.
_PROMPTING_ACTIONS = frozenset(
    f"{prefix}pause" for prefix in ("", "ansible.builtin.", "ansible.legacy.")
)


def _run_in_this_process(
    strategy: Any, host: Any, task: Any, task_vars: dict[str, Any], play_context: Any
) -> bool:
    """Run a task of a one-host play here, with the worker's code, instead of forking one.

    With one host in the play (or in its batch) no other task runs beside this one: the
    worker's fork (about 12 ms in ansible-playbook's process, then the worker's own
    copy-on-write faults and exit) buys nothing. The task (any action but those that ask
    the terminal, with or without a loop, retries, delegation or notification; not async,
    not with a timeout) is run here by Ansible's own TaskExecutor on a copy of the task and
    of its variables, through Mitogen's connection as in a worker; the start callback, the
    callbacks it sends while it runs (loop items, retries) and its result come in the
    worker's order (a result after items or retries through the results queue, behind
    them; any other given to the strategy directly). Under Mitogen only: its connection
    keeps the host's context for the next such task (_keep_contexts), and gives it back,
    with the connection to the multiplexer closed, before the next fork
    (_release_contexts).
    """
    if (
        _RawTaskResult is None
        or _mitogen_process is None
        or len(strategy._hosts_cache) != 1
        or task.async_val
        or task.timeout
        or task.action in _PROMPTING_ACTIONS
        or task.action in _NOT_SKIPPED_HERE
    ):
        return False
    _announce(strategy, host, task, task_vars, play_context)
    worker_task = task
    strategy._loader._tempfiles = set()  # as a worker: its own temporary files only
    _keeping[0] = True
    try:
        worker_task, result = _execute_here(strategy, host, task, task_vars, play_context)
        fields = worker_task.dump_attrs()
    except Exception as err:  # a worker would die: the task fails, it is not run again
        result = {"failed": True, "msg": f"the task's run stopped: {type(err).__name__}: {err}"}
        fields = {}
    finally:
        _keeping[0] = False
    if not _kept or result.get("failed") or result.get("unreachable"):
        _release_contexts()  # the next task asks the multiplexer again, as a worker would
    if fields and task.loop is None and not task.loop_with and not task.until:
        # Nothing of the task went through the results queue (a loop's items and the
        # retries do, before its result): its result is given to the strategy here, as a
        # task run without a worker's is, without the queue's round trip (its thread, and
        # the strategy's wait of a millisecond at a time for it).
        return _queue_result(strategy, host, task, None, (worker_task, result, fields))
    try:
        strategy._final_q.send_task_result(
            _RawTaskResult(host=host, task=worker_task, return_data=result, task_fields=fields)
        )
    except Exception as err:  # as the worker: the result that cannot be sent is replaced
        strategy._final_q.send_task_result(
            _RawTaskResult(
                host=host,
                task=worker_task,
                return_data={"failed": True, "msg": f"Task result omitted: {err}"},
                task_fields={},
            )
        )
    strategy._pending_results += 1
    return True


# The host contexts kept between tasks run in this process (see _keep_contexts), by the
# connection stack that the multiplexer gave them for: (context, login context, the
# interpreter's start-up facts). Only while _keeping[0] is true are new ones kept.
_kept: dict[tuple[str, str], tuple[Any, Any, Any]] = {}
_keeping = [False]


def _keep_contexts() -> None:
    """Make Mitogen's connection keep its host context between tasks run in this process.

    A worker's connection asks the multiplexer for the host's context when its task starts
    (ContextService.get, which counts a reference), and gives it back when the task ends
    (ContextService.put), in a connection to the multiplexer made and closed for the task.
    Tasks run one after another in this process (a one-host play) keep both instead: the
    first asks, the others reuse what it got, and _release_contexts gives everything back
    (once per context asked for) before a fork, at the end of the play, before a reset
    and after a failed or unreachable task. Workers (forked processes, _keeping false
    there) keep Mitogen's own behaviour.
    """
    from ansible_mitogen import connection  # noqa: PLC0415 - Mitogen is there

    cls = connection.Connection
    if getattr(cls, "_alteo_hostops_keeps", False):
        return
    connect_stack, put_connection, close, reset = (
        cls._connect_stack, cls._put_connection, cls.close, cls.reset
    )  # fmt: skip

    def keeping(self: Any) -> bool:
        binding = getattr(self, "binding", None)
        return _keeping[0] and isinstance(binding, _mitogen_process.ClassicBinding)

    def kept_connect_stack(self: Any, stack: Any) -> Any:
        if not keeping(self):
            return connect_stack(self, stack)
        key = (str(self.binding.model.listener_path), repr(stack))
        if key not in _kept:
            connect_stack(self, stack)
            _kept[key] = (self.context, self.login_context, self.init_child_result)
            return None
        self.context, self.login_context, self.init_child_result = _kept[key]
        self.chain = connection.CallChain(self, self.context, pipelined=True)
        return None

    def kept_put_connection(self: Any) -> Any:
        if not (_keeping[0] and self.context is not None and _is_kept(self.context)):
            return put_connection(self)
        self.chain.reset()  # the calls' chain is the task's; the context stays kept
        self.context = self.login_context = self.init_child_result = self.chain = None
        return None

    def kept_close(self: Any) -> Any:
        if not (_keeping[0] and _kept):
            return close(self)
        self._put_connection()
        self.binding = None  # the multiplexer's connection stays open with the contexts
        return None

    def kept_reset(self: Any) -> Any:
        if _kept:  # the context is shut down: nothing of it may stay kept
            if self.context is not None and _is_kept(self.context):
                self.context = self.login_context = self.init_child_result = self.chain = None
                self.binding = None
            _release_contexts()
        return reset(self)

    cls._connect_stack = kept_connect_stack
    cls._put_connection = kept_put_connection
    cls.close = kept_close
    cls.reset = cls._reset = kept_reset
    cls._alteo_hostops_keeps = True


# What the multiplexer answered once in this process: a module's dependencies, by the
# module and its search path; the files and paths a context was sent, by the context.
_module_maps: dict[tuple[Any, ...], Any] = {}
_propagated: set[tuple[Any, ...]] = set()


def _ask_the_multiplexer_once() -> None:
    """Ask Mitogen's multiplexer once a run what it answers the same way every time.

    Before each module runs, Mitogen's planner asks the multiplexer which of Ansible's
    module_utils the module imports (ModuleDepService.scan, which caches its answer) and
    has it send the module's own module_utils and the collections' paths to the host's
    context (PushFileService, which sends each file to a context once): two requests a
    task, about 3 ms. A module's dependencies do not change during a run, and a context
    keeps what it was sent, so the answer is kept here by module and search path, and a
    context is not sent the same files and paths twice (a context that is started again is
    a new context). Workers forked later inherit both.
    """
    planner = _mitogen_planner
    cls = planner.NewStylePlanner
    if getattr(cls, "_alteo_hostops_once", False):
        return
    get_module_map, propagate = cls.get_module_map, planner._propagate_deps

    def module_map_once(self: Any) -> Any:
        if self._module_map is None:
            key = (self._inv.module_name, self._inv.module_path, self.get_search_path())
            if key not in _module_maps:
                _module_maps[key] = get_module_map(self)
            self._module_map = copy.deepcopy(_module_maps[key])
        return self._module_map

    def propagate_once(invocation: Any, planner: Any, context: Any) -> Any:
        sources = invocation._overridden_sources or {}
        key = (
            context.context_id,
            tuple(planner.get_push_files()),
            tuple(sorted((path, hash(source)) for path, source in sources.items())),
            tuple(sorted(invocation._extra_sys_paths)),
        )
        if key in _propagated:
            return None
        result = propagate(invocation, planner, context)
        _propagated.add(key)
        return result

    cls.get_module_map = module_map_once
    planner._propagate_deps = propagate_once
    cls._alteo_hostops_once = True


def _scan_module_utils_once() -> None:
    """Compile each module_utils file once a run when Mitogen's multiplexer lists modules'
    imports.

    Before a module's first run in a run, the multiplexer lists the module_utils the module
    imports (ansible_mitogen.module_finder.scan): it compiles the module and every file its
    imports reach, and reads their imports from the code, again for each module. Most
    reach the same 46 files (ansible.module_utils.basic and what it imports): 40 to 120 ms
    a module, 1.7 s for the 32 modules of a custom order's re-apply. A file does not change
    during a run; its code and the names it imports are kept here by its source, in the
    multiplexer (which is forked from this process after this), so that each module's list
    compiles only the files that no module before it reached.
    """
    finder: Any = importlib.import_module("ansible_mitogen.module_finder")
    if getattr(finder, "_alteo_hostops_once", False):
        return
    compiled: dict[tuple[bytes, str, str], Any] = {}
    walked: dict[tuple[int, str | None], tuple[Any, list[str]]] = {}
    walk_imports = finder.walk_imports

    def compile_once(source: Any, filename: Any, mode: str, *args: Any, **kwargs: Any) -> Any:
        if args or kwargs or not isinstance(source, bytes) or not isinstance(filename, str):
            return compile(source, filename, mode, *args, **kwargs)
        key = (source, filename, mode)
        if key not in compiled:
            compiled[key] = compile(source, filename, mode)
        return compiled[key]

    def walk_imports_once(code: Any, prefix: str | None = None) -> Iterator[str]:
        kept = walked.get((id(code), prefix))
        if kept is None or kept[0] is not code:  # the same object, not a reused id
            kept = walked[id(code), prefix] = (code, list(walk_imports(code, prefix)))
        return iter(kept[1])

    finder.compile = compile_once
    finder.walk_imports = walk_imports_once
    finder._alteo_hostops_once = True


def _is_kept(context: Any) -> bool:
    return any(context is kept[0] for kept in _kept.values())


def _release_contexts() -> None:
    """Give the kept host contexts back to the multiplexer and close the connection to it
    (nothing of Mitogen's may run in this process when it forks a worker)."""
    kept = list(_kept.values())
    _kept.clear()
    model = _mitogen_model()
    try:
        if kept and model is not None and model.broker is not None and model.parent is not None:
            import mitogen.service  # noqa: PLC0415 - Mitogen is there

            for context, _login, _facts in kept:
                mitogen.service.call(
                    call_context=model.parent,
                    service_name="ansible_mitogen.services.ContextService",
                    method_name="put",
                    context=context,
                )
    except Exception as err:  # the multiplexer forgets them when the run ends
        display.vvvv(f"alteo.hostops.mitogen_linear: giving the contexts back failed: {err}")
    finally:
        _close_mitogen_binding()


def _close_mitogen_binding() -> None:
    """No Mitogen broker thread may be left in this process when it forks a worker.

    The task's connection closes it when the task ends (TaskExecutor closes its
    connection); a connection left open (an earlier item's delegate) is closed here.
    """
    model = _mitogen_model()
    if model is not None and getattr(model, "broker", None) is not None:
        model.on_binding_close()


def _mitogen_model() -> Any:
    """Mitogen's worker model: the running strategy's, or after its run (Mitogen's strategy
    forgets it when its run ends) the one of the whole process."""
    return getattr(_mitogen_process, "_worker_model", None) or getattr(
        _mitogen_process, "_classic_worker_model", None
    )


def _skipped_result(
    strategy: Any, host: Any, task: Any, task_vars: dict[str, Any], play_context: Any
) -> tuple[dict[str, Any], dict[str, Any]] | None:
    """The worker's task fields and skipped result, or None when the condition holds."""
    variables = dict(task_vars)
    search_path = task.get_search_path()
    if strategy._loader.get_basedir() not in search_path:
        search_path.append(strategy._loader.get_basedir())
    variables["ansible_search_path"] = search_path
    # A condition that holds on these variables goes to its worker at once: the connection's
    # magic variables only add variables, so the one that skips here must be false with them.
    if task._resolve_conditional(task.when, variables):
        return None
    templar = TemplateEngine(loader=strategy._loader, variables=variables)
    context = play_context.set_task_and_variable_override(
        task=task, variables=variables, templar=templar
    )
    context.post_validate(templar=templar)
    if not context.remote_addr:
        context.remote_addr = host.address
    context.update_vars(variables)
    false_condition: dict[str, Any] = {}
    if task._resolve_conditional(task.when, variables, result_context=false_condition):
        return None
    squashed = task.copy()
    squashed.squash()
    fields = squashed.dump_attrs()
    result: dict[str, Any] = {
        "changed": False,
        "skipped": True,
        "skip_reason": "Conditional result was False",
        **false_condition,
    }
    squashed.update_result_no_log(templar, result)
    return fields, result


if _mitogen_strategy is not None:

    class StrategyModule(_mitogen_strategy.StrategyMixin, _Linear):  # type: ignore[misc]
        """Linear, with Mitogen's connection and action plugins wrapped in."""

        def run(self, iterator: Any, play_context: Any) -> Any:
            _load_once()
            _copy_loaded_files_faster()
            _cache_templates()
            _cache_vars_files(self._loader, iterator._play)
            try:
                return super().run(iterator, play_context)
            finally:
                _release_contexts()

        def _queue_task(self, host: Any, task: Any, task_vars: Any, play_context: Any) -> Any:
            if _skip_without_a_worker(self, host, task, task_vars, play_context):
                return None
            if _run_without_a_worker(self, host, task, task_vars, play_context):
                return None
            if _run_in_this_process(self, host, task, task_vars, play_context):
                return None
            _release_contexts()  # before the fork
            return super()._queue_task(host, task, task_vars, play_context)

else:

    class StrategyModule(_Linear):  # type: ignore[no-redef,misc]
        """Stock linear: Mitogen is not installed."""

        def run(self, iterator: Any, play_context: Any) -> Any:
            display.warning(
                "alteo.hostops.mitogen_linear: the Python package 'mitogen' is not installed"
                " beside Ansible; running with the stock linear strategy"
            )
            _decode_facts_once()
            _copy_loaded_files_faster()
            _cache_templates()
            _cache_vars_files(self._loader, iterator._play)
            return super().run(iterator, play_context)

        def _queue_task(self, host: Any, task: Any, task_vars: Any, play_context: Any) -> Any:
            if _skip_without_a_worker(self, host, task, task_vars, play_context):
                return None
            if _run_without_a_worker(self, host, task, task_vars, play_context):
                return None
            return super()._queue_task(host, task, task_vars, play_context)
