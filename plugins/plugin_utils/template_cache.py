# Copyright: (c) Alteo hostops team <hostops@alteo.example>
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compiled Jinja2 templates kept on disk, for the forked workers of a run (issue 20).

Ansible compiles a task's templates and conditionals in the worker process it forks for
that task and host, then the worker exits: the same text is compiled again by the next
task, host and run (a custom order's re-apply compiles about 3,100 templates, 1,000
different ones, about 3 s of its 33 s). Jinja2 caches compiled code on disk for the
templates its loaders read (``jinja2.BytecodeCache``), not for the strings Ansible gives
it. This cache does that for Ansible's strings: the Python code Jinja2 compiles from a
template or expression text is written once, by the first process to compile it, and
read back (``marshal``) by the others.

Correctness: the code Jinja2 generates depends on the text and on the environment it is
compiled in, so the key is the text with everything else the generated code depends on:
the kind (template or expression), the environment's syntax settings (delimiters,
whitespace control, extensions, finalize, optimizer), Ansible's compile-time options
(backslash escaping, embedded templates), the versions of Python, Jinja2 and
ansible-core, and the filter and test plugins of the installed collections (Jinja2 looks
a filter up while it compiles). A key differs as soon as one of these differs. Only
compilations that succeed are written; a compile error is raised by Jinja2 as before.
Compilations named by a loader (included and imported templates) are left to Jinja2.

Safety: the directory is created private (0700) and used only when it belongs to this
user and nobody else may write to it, as Python treats its ``__pycache__``; a file that
cannot be read back is compiled again and replaced. ``HOSTOPS_TEMPLATE_CACHE`` names the
directory, an absolute path (default ``$XDG_CACHE_HOME/alteo-hostops/jinja``, or
``~/.cache/...``); ``off`` turns the cache off, and so does a directory that is not an
absolute path. Any failure of the cache itself leaves compilation to Jinja2.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import importlib.util
import marshal
import os
import stat
import sys
import tempfile
from pathlib import Path
from types import CodeType
from typing import Any

ENV_VAR = "HOSTOPS_TEMPLATE_CACHE"
# Files in the directory beyond which it is emptied before a run (each is a few KB): the
# keys of old versions and settings are never read again.
MAX_ENTRIES = 20000


def default_directory() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "alteo-hostops" / "jinja"


def configured_directory() -> Path | None:
    """The cache's directory, or None when HOSTOPS_TEMPLATE_CACHE is 'off' or the
    directory is not an absolute path (a user without a home directory: '~' is left as
    it is, and the cache would land in the working directory)."""
    value = os.environ.get(ENV_VAR, "").strip()
    if value.lower() in ("off", "0", "false", "no"):
        return None
    directory = Path(value).expanduser() if value else default_directory()
    return directory if directory.is_absolute() else None


def private_directory(path: Path) -> bool:
    """Create the directory (0700) if needed; True when only this user can write to it."""
    try:
        path.mkdir(mode=0o700, parents=True, exist_ok=True)
        info = path.lstat()
    except OSError:
        return False
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        return False
    return not info.st_mode & (stat.S_IWGRP | stat.S_IWOTH)


def plugins_fingerprint(collection_dirs: list[str]) -> str:
    """Names, sizes and times of the collections' filter and test plugin files."""
    digest = hashlib.sha256()
    for root in sorted(collection_dirs):
        for kind in ("filter", "test"):
            folder = os.path.join(root, "plugins", kind)
            try:
                names = sorted(os.listdir(folder))
            except OSError:
                continue
            for name in names:
                try:
                    info = os.stat(os.path.join(folder, name))
                except OSError:
                    continue
                digest.update(f"{folder}/{name}:{info.st_size}:{info.st_mtime_ns}\n".encode())
    return digest.hexdigest()


class CodeCache:
    """Jinja2's compiled code for a template text, on disk, by key (see the module)."""

    def __init__(self, directory: Path, salt: str) -> None:
        self.directory = directory
        self.salt = salt
        self.hits = 0
        self.writes = 0

    def key(self, kind: str, source: str, environment: Any, escape_backslashes: Any) -> str:
        env = environment
        settings = (
            kind,
            type(env).__module__,
            type(env).__qualname__,
            env.block_start_string,
            env.block_end_string,
            env.variable_start_string,
            env.variable_end_string,
            env.comment_start_string,
            env.comment_end_string,
            env.line_statement_prefix,
            env.line_comment_prefix,
            env.trim_blocks,
            env.lstrip_blocks,
            env.newline_sequence,
            env.keep_trailing_newline,
            env.optimized,
            env.is_async,
            bool(env.autoescape) if not callable(env.autoescape) else "callable",
            getattr(env.finalize, "__qualname__", repr(env.finalize)),
            tuple(sorted(env.extensions)),
            env.code_generator_class.__qualname__,
            escape_backslashes,
        )
        digest = hashlib.sha256(self.salt.encode())
        digest.update(repr(settings).encode())
        digest.update(b"\0")
        digest.update(source.encode("utf-8", "surrogatepass"))
        return digest.hexdigest()

    def get(self, key: str) -> CodeType | None:
        try:
            data = (self.directory / key).read_bytes()
            # only this user can write the directory (private_directory), as with __pycache__
            code = marshal.loads(data)  # noqa: S302
        except (OSError, ValueError, EOFError, TypeError):
            return None
        if not isinstance(code, CodeType):
            return None
        self.hits += 1
        return code

    def put(self, key: str, code: CodeType) -> None:
        try:
            fd, name = tempfile.mkstemp(dir=self.directory, prefix=".tmp-")
        except OSError:
            return
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(marshal.dumps(code))
            os.replace(name, self.directory / key)
            self.writes += 1
        except (OSError, ValueError):
            with contextlib.suppress(OSError):
                os.unlink(name)


# The expression being compiled by compile_expression, whose code compile() hands back.
_captured: contextvars.ContextVar[list[CodeType] | None] = contextvars.ContextVar(
    "hostops_template_cache_capture", default=None
)
_installed: CodeCache | None = None


def installed() -> CodeCache | None:
    return _installed


def _salt(collection_dirs: list[str]) -> str:
    import ansible  # noqa: PLC0415 - the versions of what runs, read when installing
    import jinja2  # noqa: PLC0415
    from ansible._internal._templating._jinja_common import _TemplateConfig  # noqa: PLC0415

    return repr(
        (
            "hostops-template-cache-1",
            importlib.util.MAGIC_NUMBER.hex(),
            sys.version,
            jinja2.__version__,
            ansible.__version__,
            _TemplateConfig.allow_embedded_templates,
            plugins_fingerprint(collection_dirs),
        )
    )


def install(collection_dirs: list[str]) -> CodeCache | None:
    """Put the cache in front of Ansible's Jinja2 environment, once per process.

    Returns the cache, or None when it is turned off or its directory is not private.
    """
    global _installed  # noqa: PLW0603 - once per ansible-playbook process
    if _installed is not None:
        return _installed
    directory = configured_directory()
    if directory is None or not private_directory(directory):
        return None
    try:
        entries = os.listdir(directory)
        if len(entries) > MAX_ENTRIES:
            for entry in entries:
                with contextlib.suppress(OSError):
                    os.unlink(directory / entry)
    except OSError:
        return None

    from ansible._internal._templating._jinja_bits import (  # noqa: PLC0415
        AnsibleEnvironment,
        _TemplateCompileContext,
    )
    from jinja2.environment import TemplateExpression  # noqa: PLC0415

    cache = CodeCache(directory, _salt(collection_dirs))
    compile_code = AnsibleEnvironment.compile
    compile_expression = AnsibleEnvironment.compile_expression

    def escaping() -> Any:
        context = _TemplateCompileContext.current(optional=True)
        return None if context is None else context.escape_backslashes

    def cached_compile(  # noqa: PLR0917 - Jinja2's Environment.compile, as it is called
        self: Any,
        source: Any,
        name: str | None = None,
        filename: str | None = None,
        raw: bool = False,
        defer_init: bool = False,
    ) -> Any:
        if raw or defer_init or name is not None or filename is not None:
            return compile_code(self, source, name, filename, raw, defer_init)
        if not isinstance(source, str):  # an expression's tree: its text is the key
            code = compile_code(self, source, name, filename, raw, defer_init)
            captured = _captured.get()
            if captured is not None and not captured:
                captured.append(code)
            return code
        key = cache.key("template", source, self, escaping())
        code = cache.get(key)
        if code is None:
            code = compile_code(self, source, name, filename, raw, defer_init)
            cache.put(key, code)
        return code

    def cached_compile_expression(self: Any, source: str, undefined_to_none: bool = True) -> Any:
        key = cache.key("expression", source, self, escaping())
        code = cache.get(key)
        if code is not None:
            template = self.template_class.from_code(self, code, self.make_globals(None), None)
            return TemplateExpression(template, undefined_to_none)
        captured: list[CodeType] = []
        token = _captured.set(captured)
        try:
            expression = compile_expression(self, source, undefined_to_none)
        finally:
            _captured.reset(token)
        if captured:
            cache.put(key, captured[0])
        return expression

    AnsibleEnvironment.compile = cached_compile
    AnsibleEnvironment.compile_expression = cached_compile_expression
    _installed = cache
    return cache
