"""The lab: real Debian hosts booted with systemd under systemd-nspawn, reached over SSH.

Each host has its own network namespace, joined to a lab bridge by a veth pair, and its
own address in the lab subnet. Packages reach the hosts through an apt-cacher-ng
instance that the lab starts on the bridge address with its own configuration, whose
backends are read from this machine's apt sources (no mirror name lives in the repo).

Everything the lab starts is recorded in ``state.json`` (PIDs, namespaces, links) and
``down`` stops exactly that, by PID. Root filesystems are built once per release with
mmdebstrap and cached as tarballs.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import ipaddress
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from hostops.core.errors import HostopsError, UsageError
from hostops.core.runner import repo_root

RELEASES = ("trixie", "bookworm")
DEFAULT_RELEASE = "trixie"
DEFAULT_SUBNET = "172.29.77.0/24"
DEFAULT_ACNG_PORT = 3149  # not 3142, so a system apt-cacher-ng can keep its port
# Several labs can run side by side (a developer's and a test run's): each has an id
# that prefixes its bridge, namespaces and links, its own state directory and subnet.
LAB_ID_RE = re.compile(r"^[a-z][a-z0-9]{0,6}$")  # + "-v65535" fits IFNAMSIZ


def lab_id() -> str:
    value = os.environ.get("HOSTOPS_LAB_ID", "hostops")
    if not LAB_ID_RE.match(value):
        raise UsageError(f"HOSTOPS_LAB_ID: {value!r} must match {LAB_ID_RE.pattern}")
    return value


def bridge_name() -> str:
    return f"{lab_id()}-br0"


def bridge_mac() -> str:
    """A stable, locally administered unicast MAC for the lab's bridge."""
    digest = hashlib.sha256(lab_id().encode()).digest()
    return "02:" + ":".join(f"{b:02x}" for b in digest[:5])


DOMAIN = "lab.alixans.example"
ROOTFS_PACKAGES = (
    "systemd",
    "systemd-sysv",
    "dbus",
    "openssh-server",
    "python3",
    "python3-apt",
    "iproute2",
    "sudo",
    "ca-certificates",
)
SYSTEM_PACKAGES = {
    "systemd-nspawn": "systemd-container",
    "mmdebstrap": "mmdebstrap",
    "apt-cacher-ng": "apt-cacher-ng",
    "ip": "iproute2",
    "ssh": "openssh-client",
    "ssh-keygen": "openssh-client",
}
HOST_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,50}$")
BOOT_TIMEOUT = 90.0


def log(message: str) -> None:
    print(f"lab: {message}", file=sys.stderr, flush=True)


def run(
    cmd: list[str], *, check: bool = True, quiet: bool = False
) -> subprocess.CompletedProcess[str]:
    """Run a system command; on failure raise an error that shows the command."""
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()[-3:]
        raise HostopsError(
            f"command failed ({proc.returncode}): {' '.join(cmd)}: {' / '.join(detail)}"
        )
    if not quiet and proc.returncode != 0:
        log(f"ignored failure of {' '.join(cmd)}: {proc.stderr.strip()}")
    return proc


# --- where things live --------------------------------------------------------------


@dataclass(frozen=True)
class LabPaths:
    state_dir: Path
    cache_dir: Path
    inventory: Path

    @classmethod
    def default(cls) -> LabPaths:
        root = repo_root()  # not the working directory: molecule runs from elsewhere
        state = Path(
            os.environ.get(
                "HOSTOPS_LAB_DIR",
                "/var/lib/hostops-lab" + ("" if lab_id() == "hostops" else f"-{lab_id()}"),
            )
        )
        return cls(
            state_dir=state,
            cache_dir=Path(os.environ.get("HOSTOPS_LAB_CACHE", "/var/cache/hostops-lab")),
            inventory=Path(
                os.environ.get(
                    "HOSTOPS_LAB_INVENTORY",
                    # a checkout's inventories/lab; an installed hostops keeps it in the
                    # lab's state directory
                    (
                        root / "inventories" / "lab"
                        if (root / "inventories" / "lab").is_dir()
                        else state
                    )
                    / ("hosts.yml" if lab_id() == "hostops" else f"hosts-{lab_id()}.yml"),
                )
            ),
        )

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.json"

    @property
    def ssh_key(self) -> Path:
        return self.state_dir / "ssh" / "id_ed25519"

    @property
    def machines(self) -> Path:
        return self.state_dir / "machines"

    @property
    def acng_dir(self) -> Path:
        return self.state_dir / "apt-cacher-ng"


# --- recorded state -----------------------------------------------------------------


@dataclass
class LabHost:
    name: str
    release: str
    address: str
    netns: str
    veth: str
    root: str
    pid: int = 0
    log: str = ""
    # other names of this host: the FQDN of the order's server it stands for ('hostops
    # order apply --lab'), by which '--lab --host' finds it too
    aliases: list[str] = field(default_factory=list)

    @property
    def fqdn(self) -> str:
        return self.aliases[0] if self.aliases else f"{self.name}.{DOMAIN}"


@dataclass
class LabState:
    subnet: str = DEFAULT_SUBNET
    bridge_address: str = ""
    acng_port: int = DEFAULT_ACNG_PORT
    acng_pid: int = 0
    next_offset: int = 0
    hosts: dict[str, LabHost] = field(default_factory=dict)

    @classmethod
    def load(cls, path: Path) -> LabState:
        if not path.exists():
            return cls()
        try:
            data = json.loads(path.read_text())
            hosts = {name: LabHost(**h) for name, h in data.pop("hosts", {}).items()}
            return cls(hosts=hosts, **data)
        except (ValueError, TypeError) as err:
            raise HostopsError(
                f"{path}: unreadable lab state ({err}); inspect it, then remove it to start afresh"
            ) from err

    def host_name(self, name: str) -> str:
        """The lab host NAME names: itself, or the host that has NAME as an alias (an
        order's FQDN); NAME unchanged when no host has it."""
        if name in self.hosts:
            return name
        for host in self.hosts.values():
            if name in host.aliases:
                return host.name
        return name

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        data = asdict(self)
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True) + "\n")
        tmp.replace(path)


def order_host_prefix(order_id: str) -> str:
    """The prefix of the lab hosts an order's servers run on: its N-th server is PREFIX + N
    (``BDC-2027-0103`` -> ``bdc-2027-0103-1``, ...), the rule of ``order apply --lab``."""
    return re.sub(r"[^a-z0-9-]", "-", order_id.lower()).strip("-") + "-"


def lab_host_name(name: str) -> str:
    """The lab host NAME stands for: itself, or the lab host an order's server FQDN was
    mapped to by 'hostops order apply --lab'."""
    return LabState.load(LabPaths.default().state_file).host_name(name)


def process_matches(pid: int, needle: str) -> bool:
    """True when PID is alive and its command line contains ``needle`` (no PID reuse)."""
    if pid <= 0:
        return False
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return needle in cmdline


def stop_pid(pid: int, needle: str, timeout: float = 20.0) -> None:
    """Stop a process the lab started: TERM, wait, then KILL. Only if it is still ours."""
    if not process_matches(pid, needle):
        return
    os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not process_matches(pid, needle):
            return
        time.sleep(0.2)
    log(f"pid {pid} did not stop within {timeout:.0f}s; killing it")
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


# --- this machine's facts -----------------------------------------------------------


@dataclass(frozen=True)
class Mirror:
    """An apt source of this machine: the archive or its security mirror."""

    url: str  # as written in the sources, e.g. http://mirror.example/debian
    security: bool

    @property
    def prefix(self) -> str:
        """The URL without scheme, as apt-cacher-ng's remap rules match it."""
        return re.sub(r"^[a-z]+://", "", self.url).rstrip("/")

    @property
    def lab_url(self) -> str:
        """The URL lab hosts write: plain http, since apt-cacher-ng fetches the backend."""
        return "http://" + self.prefix


def host_codename() -> str:
    text = Path("/etc/os-release").read_text()
    match = re.search(r"^VERSION_CODENAME=(\S+)$", text, re.MULTILINE)
    if not match:
        raise HostopsError("/etc/os-release names no VERSION_CODENAME: is this Debian?")
    return match.group(1).strip('"')


def parse_apt_sources(codename: str, sources_dir: Path = Path("/etc/apt")) -> list[Mirror]:
    """The Debian mirrors this machine's apt uses (one-line and deb822 formats)."""
    entries: list[tuple[str, list[str]]] = []
    one_line = [
        sources_dir / "sources.list",
        *sorted((sources_dir / "sources.list.d").glob("*.list")),
    ]
    for path in one_line:
        if not path.is_file():
            continue
        for raw in path.read_text().splitlines():
            words = re.sub(r"\[[^]]*\]", " ", raw.split("#", 1)[0]).split()  # drop [options]
            if len(words) >= 3 and words[0] == "deb":
                entries.append((words[1], [words[2]]))
    for path in sorted((sources_dir / "sources.list.d").glob("*.sources")):
        for stanza in re.split(r"\n\s*\n", path.read_text()):
            fields: dict[str, str] = {}
            for line in stanza.splitlines():
                if line.startswith("#") or ":" not in line:
                    continue
                key, value = line.split(":", 1)
                fields[key.strip().lower()] = value.strip()
            if "deb" not in fields.get("types", "").split():
                continue
            if fields.get("enabled", "yes").lower() == "no":
                continue
            for uri in fields.get("uris", "").split():
                entries.append((uri, fields.get("suites", "").split()))
    mirrors: list[Mirror] = []
    for uri, suites in entries:
        for suite in suites:
            if suite == codename and not any(not m.security and m.url == uri for m in mirrors):
                mirrors.append(Mirror(uri.rstrip("/"), security=False))
            if suite == f"{codename}-security" and not any(
                m.security and m.url == uri for m in mirrors
            ):
                mirrors.append(Mirror(uri.rstrip("/"), security=True))
    return mirrors


def write_public(path: Path, text: str, mode: int = 0o644) -> None:
    """Write a file every user of a lab host reads (/etc/hosts, ...) with its mode set,
    whatever the umask of the process that boots the host: a 0600 /etc/hosts leaves
    PostgreSQL unable to resolve localhost."""
    path.write_text(text)
    path.chmod(mode)


def machine_routes() -> list[tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, str]]:
    proc = run(["ip", "-j", "route", "show", "table", "all"], quiet=True, check=False)
    routes = []
    for route in json.loads(proc.stdout or "[]"):
        dst = route.get("dst", "")
        if dst in ("default", "") or route.get("type") in ("broadcast", "local", "multicast"):
            continue
        with contextlib.suppress(ValueError):
            routes.append((ipaddress.ip_network(dst, strict=False), route.get("dev", "")))
    return routes


def nameservers() -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    servers = []
    with contextlib.suppress(OSError):
        for line in Path("/etc/resolv.conf").read_text().splitlines():
            words = line.split()
            if len(words) >= 2 and words[0] == "nameserver":
                with contextlib.suppress(ValueError):
                    servers.append(ipaddress.ip_address(words[1]))
    return servers


def check_subnet(subnet: ipaddress.IPv4Network) -> None:
    """Refuse a lab subnet that overlaps a route or the resolver of this machine."""
    problems = []
    for network, dev in machine_routes():
        if dev == bridge_name():
            continue
        if isinstance(network, ipaddress.IPv4Network) and network.overlaps(subnet):
            problems.append(
                f"--subnet: {subnet} overlaps this machine's route {network} (dev {dev})"
            )
    for server in nameservers():
        if server in subnet:
            problems.append(f"--subnet: {subnet} contains this machine's DNS resolver {server}")
    if subnet.num_addresses < 16:
        problems.append(f"--subnet: {subnet} is too small (at least a /28)")
    if problems:
        raise UsageError([*problems, "choose another with --subnet or HOSTOPS_LAB_SUBNET"])


# --- the lab ------------------------------------------------------------------------


class Lab:
    def __init__(self, paths: LabPaths | None = None, subnet: str | None = None) -> None:
        self.paths = paths or LabPaths.default()
        self._subnet_arg = subnet or os.environ.get("HOSTOPS_LAB_SUBNET")
        self.state = LabState()

    # locking and state -------------------------------------------------------------

    @contextlib.contextmanager
    def locked(self) -> Iterator[None]:
        self.paths.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        with open(self.paths.state_dir / "lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            self.state = LabState.load(self.paths.state_file)
            try:
                yield
            finally:
                self.state.save(self.paths.state_file)

    # commands ----------------------------------------------------------------------

    def up(
        self,
        count: int,
        release: str,
        prefix: str | None = None,
        inventory: Path | None = None,
        *,
        group: str = "lab_selected",
        names: list[str] | None = None,
    ) -> list[LabHost]:
        """Boot PREFIX1..PREFIXN, or the hosts NAMES (idempotent); optionally write an
        inventory of just them."""
        require_root()
        if release not in RELEASES:
            raise UsageError(f"--release: {release!r} is not one of {', '.join(RELEASES)}")
        if names is None:
            if not 1 <= count <= 50:
                raise UsageError(f"--hosts: {count} is out of range 1..50")
            prefix = prefix or release
            if not HOST_NAME_RE.match(prefix):
                raise UsageError(f"--prefix: {prefix!r} must match {HOST_NAME_RE.pattern}")
            names = [f"{prefix}{i}" for i in range(1, count + 1)]
        for name in names:
            if not HOST_NAME_RE.match(name):
                raise UsageError(f"{name!r}: not a lab host name ({HOST_NAME_RE.pattern})")
        ensure_system_packages()
        with self.locked():
            self._forget_dead()
            subnet = self._subnet()
            for name in names:
                host = self.state.hosts.get(name)
                if host and host.release != release:
                    raise UsageError(
                        f"{name}: already runs {host.release}, not {release}; "
                        f"run 'hostops lab down {name}' first or choose another --prefix"
                    )
            self._ensure_bridge(subnet)
            ensure_inotify_instances()
            self._ensure_apt_cache()
            rootfs = self._ensure_rootfs(release)
            key = self._ensure_ssh_key()
            started = []
            for name in names:
                host = self.state.hosts.get(name)
                if host and host.pid and process_matches(host.pid, host.netns):
                    continue
                host = self._create_host(name, release, subnet, rootfs, key)
                self.state.hosts[name] = host
                self.state.save(self.paths.state_file)
                started.append(host)
            for host in started:
                self._wait_for(host)
            self._write_inventory()
            chosen = [self.state.hosts[n] for n in names]
            if inventory is not None:
                write_inventory(inventory, chosen, self.state, self.paths.ssh_key, group)
            return chosen

    def down(self, names: list[str] | None = None, prefix: str | None = None) -> list[str]:
        require_root()
        with self.locked():
            if prefix:
                targets = [n for n in self.state.hosts if n.startswith(prefix)]
            else:
                targets = names if names else list(self.state.hosts)
            unknown = [n for n in targets if n not in self.state.hosts]
            if unknown:
                raise UsageError(
                    f"{', '.join(unknown)}: no such lab host (see 'hostops lab status')"
                )
            for name in targets:
                self._remove_host(self.state.hosts.pop(name))
                self.state.save(self.paths.state_file)
            if not self.state.hosts:
                self._stop_apt_cache()
                if link_exists(bridge_name()):
                    run(["ip", "link", "del", bridge_name()])
                self.state.bridge_address = ""
            self._write_inventory()
            return targets

    def alias(self, name: str, alias: str) -> None:
        """Let ALIAS (an order's server FQDN) name the lab host NAME too; an alias names one
        host: another host that had it loses it."""
        with self.locked():
            if name not in self.state.hosts:
                raise UsageError(f"{name!r}: no such lab host (see 'hostops lab status')")
            for host in self.state.hosts.values():
                if alias in host.aliases and host.name != name:
                    host.aliases.remove(alias)
            host = self.state.hosts[name]
            if alias not in host.aliases:
                host.aliases.insert(0, alias)
            self._write_inventory()

    def status(self) -> list[dict[str, str]]:
        state = LabState.load(self.paths.state_file)
        rows = []
        for host in state.hosts.values():
            alive = process_matches(host.pid, host.netns)
            rows.append(
                {
                    "name": host.name,
                    "release": host.release,
                    "address": host.address,
                    "pid": str(host.pid),
                    "state": "running" if alive else "dead (stale: 'hostops lab up' restarts it)",
                    "aliases": ",".join(host.aliases) or "-",
                }
            )
        acng = "running" if process_matches(state.acng_pid, "apt-cacher-ng") else "stopped"
        rows.append(
            {
                "name": "apt-cacher-ng",
                "release": "-",
                "address": f"{state.bridge_address}:{state.acng_port}"
                if state.bridge_address
                else "-",
                "pid": str(state.acng_pid),
                "state": acng,
                "aliases": "-",
            }
        )
        return rows

    def ssh_command(self, name: str, command: list[str]) -> list[str]:
        state = LabState.load(self.paths.state_file)
        host = state.hosts.get(state.host_name(name))
        if host is None:
            raise UsageError(f"HOST: {name!r} is not a lab host (see 'hostops lab status')")
        return [
            "ssh",
            *ssh_options(self.paths.ssh_key),
            f"root@{host.address}",
            *command,
        ]

    # pieces ------------------------------------------------------------------------

    def _subnet(self) -> ipaddress.IPv4Network:
        text = self._subnet_arg or (self.state.subnet if self.state.hosts else DEFAULT_SUBNET)
        if self.state.hosts and self._subnet_arg and self._subnet_arg != self.state.subnet:
            raise UsageError(
                f"--subnet: the lab already runs on {self.state.subnet}; 'hostops lab down' first"
            )
        try:
            subnet = ipaddress.ip_network(text)
        except ValueError as err:
            raise UsageError(f"--subnet: {text!r} is not a network ({err})") from err
        if not isinstance(subnet, ipaddress.IPv4Network):
            raise UsageError(f"--subnet: {text!r} must be an IPv4 network")
        check_subnet(subnet)
        self.state.subnet = str(subnet)
        return subnet

    def _forget_dead(self) -> None:
        """Recover from a crash: clean up hosts whose nspawn process is gone."""
        for name, host in list(self.state.hosts.items()):
            if not process_matches(host.pid, host.netns):
                log(f"{name}: stale (pid {host.pid} is gone); cleaning up before restarting it")
                self._remove_host(host)
                del self.state.hosts[name]
        if self.state.acng_pid and not process_matches(self.state.acng_pid, "apt-cacher-ng"):
            self.state.acng_pid = 0

    def _ensure_bridge(self, subnet: ipaddress.IPv4Network) -> None:
        gateway = str(next(subnet.hosts()))
        bridge = bridge_name()
        if not link_exists(bridge):
            log(f"creating bridge {bridge} ({gateway}/{subnet.prefixlen})")
            run(["ip", "link", "add", bridge, "type", "bridge"])
        addresses = run(["ip", "-j", "addr", "show", "dev", bridge]).stdout
        if f'"{gateway}"' not in addresses:
            run(["ip", "addr", "add", f"{gateway}/{subnet.prefixlen}", "dev", bridge])
        # A bridge without an address of its own takes a port's MAC and changes it when
        # that port leaves: the other hosts' ARP entries for the gateway (the apt cache)
        # then go stale. A fixed, locally administered MAC keeps them valid.
        run(["ip", "link", "set", bridge, "address", bridge_mac(), "up"])
        self.state.bridge_address = gateway

    def _ensure_apt_cache(self) -> None:
        if process_matches(self.state.acng_pid, "apt-cacher-ng"):
            return
        codename = host_codename()
        mirrors = parse_apt_sources(codename)
        if not any(not m.security for m in mirrors):
            raise HostopsError(
                f"no Debian mirror for '{codename}' in /etc/apt/sources*: the lab reads its "
                "package mirrors from this machine's apt sources"
            )
        acng = self.paths.acng_dir
        conf = acng / "conf"
        for sub in (conf, acng / "cache", acng / "log"):
            sub.mkdir(parents=True, exist_ok=True)
        shutil.chown(acng / "cache", "apt-cacher-ng", "apt-cacher-ng")
        shutil.chown(acng / "log", "apt-cacher-ng", "apt-cacher-ng")
        remaps = []
        for kind, security in (("debian", False), ("security", True)):
            chosen = [m for m in mirrors if m.security is security]
            if not chosen:
                continue
            backends = "".join(m.url.rstrip("/") + "/\n" for m in chosen)
            (conf / f"backends_{kind}").write_text(backends)
            prefixes = " ".join(m.prefix for m in chosen)
            remaps.append(f"Remap-hostops{kind}: {prefixes} ; file:backends_{kind}")
        (conf / "acng.conf").write_text(
            "# Written by hostops lab: backends read from this machine's apt sources.\n"
            f"CacheDir: {acng / 'cache'}\n"
            f"LogDir: {acng / 'log'}\n"
            "SupportDir: /usr/lib/apt-cacher-ng\n"
            f"Port: {self.state.acng_port}\n"
            f"BindAddress: {self.state.bridge_address}\n"
            + "".join(line + "\n" for line in remaps)
            + "ExThreshold: 4\n"
            "PassThroughPattern: ^$\n"
        )
        out = open(acng / "log" / "foreground.log", "ab")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(
            ["apt-cacher-ng", "-c", str(conf), "ForeGround=1"],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        out.close()
        self.state.acng_pid = proc.pid
        wait_tcp(self.state.bridge_address, self.state.acng_port, 15.0, "apt-cacher-ng")
        log(f"apt-cacher-ng on {self.state.bridge_address}:{self.state.acng_port} (pid {proc.pid})")

    def _stop_apt_cache(self) -> None:
        stop_pid(self.state.acng_pid, "apt-cacher-ng")
        self.state.acng_pid = 0

    def _ensure_rootfs(self, release: str) -> Path:
        codename = host_codename()
        mirrors = parse_apt_sources(codename)
        archive = next(m for m in mirrors if not m.security)
        # the package list is part of the name, so changing it rebuilds the tarball
        digest = hashlib.sha256(" ".join(sorted(ROOTFS_PACKAGES)).encode()).hexdigest()[:10]
        target = self.paths.cache_dir / f"{release}-{digest}.tar"
        if target.exists():
            return target
        self.paths.cache_dir.mkdir(parents=True, exist_ok=True)
        log(f"building the {release} root filesystem with mmdebstrap (once; cached as {target})")
        partial = target.with_suffix(f".partial-{os.getpid()}.tar")  # parallel labs
        run(
            [
                "mmdebstrap",
                "--variant=minbase",
                "--include=" + ",".join(ROOTFS_PACKAGES),
                release,
                str(partial),
                f"deb {archive.url} {release} main",
            ]
        )
        partial.replace(target)
        return target

    def _ensure_ssh_key(self) -> Path:
        key = self.paths.ssh_key
        if not key.exists():
            key.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hostops-lab", "-f", str(key)]
            )
        return key

    def _next_address(self, subnet: ipaddress.IPv4Network) -> str:
        """The next address never used since the lab came up: a reused address with a
        new MAC leaves stale ARP entries on the bridge, and connections fail for a while."""
        used = {h.address for h in self.state.hosts.values()}
        candidates = [str(a) for offset, a in enumerate(subnet.hosts()) if offset >= 9]
        start = self.state.next_offset % len(candidates)
        for step in range(len(candidates)):
            index = (start + step) % len(candidates)
            if candidates[index] not in used:
                self.state.next_offset = index + 1
                return candidates[index]
        raise HostopsError(f"the lab subnet {subnet} has no free address left")

    def _create_host(
        self, name: str, release: str, subnet: ipaddress.IPv4Network, rootfs: Path, key: Path
    ) -> LabHost:
        address = self._next_address(subnet)
        index = int(ipaddress.ip_address(address)) - int(subnet.network_address)
        host = LabHost(
            name=name,
            release=release,
            address=address,
            netns=f"{lab_id()}-{name}",
            veth=f"{lab_id()}-v{index}",
            root=str(self.paths.machines / name),
        )
        log(f"{name}: booting Debian {release} at {address}")
        root = Path(host.root)
        if root.exists():
            shutil.rmtree(root)
        root.mkdir(parents=True)
        run(["tar", "-C", str(root), "--numeric-owner", "-xpf", str(rootfs)])
        self._configure_root(host, root, key)
        # network: namespace, veth pair, addresses
        if Path(f"/run/netns/{host.netns}").exists():
            run(["ip", "netns", "del", host.netns], check=False)
        if link_exists(host.veth):
            run(["ip", "link", "del", host.veth], check=False)
        run(["ip", "netns", "add", host.netns])
        run(
            [
                "ip",
                "link",
                "add",
                host.veth,
                "type",
                "veth",
                "peer",
                "name",
                "eth0",
                "netns",
                host.netns,
            ]
        )
        run(["ip", "link", "set", host.veth, "master", bridge_name(), "up"])
        run(["ip", "-n", host.netns, "addr", "add", f"{address}/{subnet.prefixlen}", "dev", "eth0"])
        run(["ip", "-n", host.netns, "link", "set", "eth0", "up"])
        run(["ip", "-n", host.netns, "link", "set", "lo", "up"])
        host.log = str(self.paths.machines / f"{name}.console.log")
        out = open(host.log, "ab")  # noqa: SIM115 - handed to the child
        proc = subprocess.Popen(
            [
                "systemd-nspawn",
                "--directory",
                str(root),
                "--machine",
                host.netns,
                "--hostname",
                name,
                "--register=no",
                "--keep-unit",
                f"--network-namespace-path=/run/netns/{host.netns}",
                "--capability=CAP_NET_ADMIN",
                "--resolv-conf=off",
                "--timezone=off",
                "--link-journal=no",
                "--console=read-only",
                "--boot",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        out.close()
        host.pid = proc.pid
        return host

    def _configure_root(self, host: LabHost, root: Path, key: Path) -> None:
        etc = root / "etc"
        write_public(etc / "hostname", f"{host.name}\n")
        write_public(
            etc / "hosts",
            f"127.0.0.1\tlocalhost\n127.0.1.1\t{host.fqdn} {host.name}\n"
            "::1\tlocalhost ip6-localhost ip6-loopback\n",
        )
        write_public(etc / "machine-id", uuid.uuid4().hex + "\n", 0o444)
        (etc / "resolv.conf").unlink(missing_ok=True)
        write_public(etc / "resolv.conf", "# the lab has no DNS\n")
        for old in (etc / "ssh").glob("ssh_host_*"):
            old.unlink()
        run(["ssh-keygen", "-A", "-f", str(root)])
        ssh_dir = root / "root" / ".ssh"
        ssh_dir.mkdir(mode=0o700, exist_ok=True)
        (ssh_dir / "authorized_keys").write_text(key.with_suffix(".pub").read_text())
        (ssh_dir / "authorized_keys").chmod(0o600)
        # apt: this release's main, updates and security suites, through the lab's cache
        mirrors = parse_apt_sources(host_codename())
        stanzas = []
        for mirror in mirrors:
            suites = (
                f"{host.release}-security"
                if mirror.security
                else f"{host.release} {host.release}-updates"
            )
            stanzas.append(
                f"Types: deb\nURIs: {mirror.lab_url}\nSuites: {suites}\nComponents: main\n"
                "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
            )
        apt = etc / "apt"
        (apt / "sources.list").unlink(missing_ok=True)
        for old in (apt / "sources.list.d").glob("*"):
            old.unlink()
        write_public(apt / "sources.list.d" / "debian.sources", "\n".join(stanzas))
        conf = [
            f'Acquire::http::Proxy "http://{self.state.bridge_address}:{self.state.acng_port}";'
        ]
        if apt_config_false("Acquire::Check-Valid-Until"):
            conf.append('Acquire::Check-Valid-Until "false";')
        write_public(apt / "apt.conf.d" / "01hostops-lab", "\n".join(conf) + "\n")
        # mmdebstrap leaves no package lists but a fresh lists directory, which apt's
        # cache_valid_time would take for a recent update: date it like a real server's.
        os.utime(root / "var" / "lib" / "apt" / "lists", (0, 0))

    def _wait_for(self, host: LabHost) -> None:
        deadline = time.monotonic() + BOOT_TIMEOUT
        try:
            wait_tcp(host.address, 22, BOOT_TIMEOUT, f"{host.name} sshd", pid=host.pid)
        except HostopsError as err:
            raise HostopsError(f"{err}; console log: {host.log}") from err
        while time.monotonic() < deadline:
            proc = subprocess.run(
                [
                    *self.ssh_command_for(host),
                    "systemctl is-system-running --wait 2>/dev/null || true",
                ],
                capture_output=True,
                text=True,
                check=False,
                timeout=BOOT_TIMEOUT,
            )
            status = proc.stdout.strip()
            if status in ("running", "degraded"):
                if status == "degraded":
                    failed = subprocess.run(
                        [*self.ssh_command_for(host), "systemctl --failed --no-legend --plain"],
                        capture_output=True,
                        text=True,
                        check=False,
                    ).stdout.strip()
                    log(f"{host.name}: booted degraded; failed units: {failed}")
                log(f"{host.name}: up ({status}) at {host.address}")
                return
            time.sleep(0.5)
        raise HostopsError(f"{host.name}: systemd did not finish booting; console log: {host.log}")

    def ssh_command_for(self, host: LabHost) -> list[str]:
        return ["ssh", *ssh_options(self.paths.ssh_key), f"root@{host.address}"]

    def _remove_host(self, host: LabHost) -> None:
        stop_pid(host.pid, host.netns)
        if Path(f"/run/netns/{host.netns}").exists():
            run(["ip", "netns", "del", host.netns], check=False)
        if link_exists(host.veth):  # normally gone with its namespace
            run(["ip", "link", "del", host.veth], check=False, quiet=True)
        root = Path(host.root)
        if root.exists() and root.is_relative_to(self.paths.machines):
            shutil.rmtree(root, ignore_errors=True)
        if host.log:
            Path(host.log).unlink(missing_ok=True)
        log(f"{host.name}: removed")

    def _write_inventory(self) -> None:
        if not self.state.hosts:
            self.paths.inventory.unlink(missing_ok=True)
            return
        write_inventory(
            self.paths.inventory, list(self.state.hosts.values()), self.state, self.paths.ssh_key
        )


# Where lab hosts' debsecan reads the security tracker's data (a file per suite).
LAB_SECURITY_WATCH_SOURCE = "file:///var/lib/hostops-security-watch/offline/"


def write_inventory(
    path: Path, hosts: list[LabHost], state: LabState, key: Path, group: str | None = None
) -> None:
    """An Ansible inventory of lab hosts: group ``lab`` (connection settings), one group
    per release, and optionally GROUP holding exactly these hosts."""
    by_release: dict[str, dict[str, None]] = {}
    entries = {}
    for host in sorted(hosts, key=lambda h: h.name):
        entries[host.name] = {
            "ansible_host": host.address,
            "hostops_lab_release": host.release,
            "hostops_fqdn": host.fqdn,
        }
        by_release.setdefault(host.release, {})[host.name] = None
    children: dict[str, object] = {
        "lab": {
            "hosts": entries,
            "vars": connection_vars(state, key),
        },
        **{release: {"hosts": members} for release, members in by_release.items()},
    }
    if group:
        children[group] = {"hosts": {h.name: None for h in hosts}}
    path.parent.mkdir(parents=True, exist_ok=True)
    header = "---\n# Written by 'hostops lab up'; do not edit.\n"
    # Written aside and renamed: a command of another process reading the inventory
    # (``--lab``) sees the old file or the new one, never a half-written one.
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(header + yaml.safe_dump({"all": {"children": children}}, sort_keys=False))
    partial.replace(path)


def connection_vars(state: LabState, key: Path) -> dict[str, object]:
    """The inventory variables of every lab host: how Ansible reaches it, and the lab's
    apt cache (the base role's proxy; hostops_apt_proxy names it for the tests)."""
    proxy = f"http://{state.bridge_address}:{state.acng_port}"
    return {
        "ansible_user": "root",
        "ansible_ssh_private_key_file": str(key),
        "ansible_ssh_common_args": " ".join(ssh_options(None)),
        # lab hosts are new at each boot: the Mitogen strategy checks host keys itself
        # (it reads this, not the ssh options above)
        "ansible_host_key_checking": False,
        # one interpreter path on every release: under Mitogen a task delegated to
        # another host uses the delegating host's (python3.11 on Debian 12)
        "ansible_python_interpreter": "/usr/bin/python3",
        # the lab's hosts are on a bridge of this machine: SSH's compression of Mitogen's
        # stream (on by default; module sources are zlib-compressed already) only costs
        # both ends CPU, about 0.5 s of a re-apply (docs/performance.md)
        "mitogen_ssh_compression": False,
        "hostops_apt_proxy": proxy,
        "base_apt_proxy": proxy,
        # no route out: debsecan reads an offline copy of the security tracker's data
        # (roles/security_watch/README.md), put there by the tests
        "security_watch_source": LAB_SECURITY_WATCH_SOURCE,
    }


def ssh_options(key: Path | None) -> list[str]:
    options = [
        "-o",
        "StrictHostKeyChecking=no",
        "-o",
        "UserKnownHostsFile=/dev/null",
        "-o",
        "LogLevel=ERROR",
        "-o",
        "BatchMode=yes",
        "-o",
        "ConnectTimeout=10",
    ]
    if key is not None:
        options = ["-i", str(key), *options]
    return options


def link_exists(name: str) -> bool:
    return Path(f"/sys/class/net/{name}").exists()


def apt_config_false(option: str) -> bool:
    proc = subprocess.run(
        ["apt-config", "dump", option], capture_output=True, text=True, check=False
    )
    return bool(
        re.search(rf'^{re.escape(option)} "(false|0|no)";', proc.stdout, re.MULTILINE | re.I)
    )


def wait_tcp(address: str, port: int, timeout: float, what: str, pid: int = 0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pid and not Path(f"/proc/{pid}").exists():
            raise HostopsError(f"{what}: the process (pid {pid}) exited during start-up")
        try:
            with socket.create_connection((address, port), timeout=1.0):
                return
        except OSError:
            time.sleep(0.2)
    raise HostopsError(f"{what} did not answer on {address}:{port} within {timeout:.0f}s")


def require_root() -> None:
    if os.geteuid() != 0:
        raise HostopsError(
            "the lab must run as root (it creates network namespaces and boots containers): "
            "run it as root, e.g. 'sudo hostops lab up'"
        )


# Each booted host's systemd (PID 1, journald, logind, ...) holds inotify instances of
# root's; Debian's default of 128 for all of root's processes runs out at about 20 hosts
# ("Failed to allocate manager object: Too many open files" on the host's console).
INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")
MIN_INOTIFY_INSTANCES = 1024


def ensure_inotify_instances(path: Path = INOTIFY_INSTANCES) -> None:
    """Raise the kernel's per-user inotify instances to what many hosts need (never lower)."""
    try:
        current = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return
    if current < MIN_INOTIFY_INSTANCES:
        path.write_text(f"{MIN_INOTIFY_INSTANCES}\n")
        log(f"raised fs.inotify.max_user_instances from {current} to {MIN_INOTIFY_INSTANCES}")


def ensure_system_packages() -> None:
    """Install the system tools the lab needs, or name the exact command."""
    missing = sorted({pkg for tool, pkg in SYSTEM_PACKAGES.items() if shutil.which(tool) is None})
    if not missing:
        return
    command = ["apt-get", "install", "-y", "--no-install-recommends", *missing]
    log(f"installing {' '.join(missing)}")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    update = subprocess.run(["apt-get", "update"], capture_output=True, env=env, check=False)
    install = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    if update.returncode != 0 or install.returncode != 0:
        raise HostopsError(
            f"could not install {' '.join(missing)}; run: apt-get update && {' '.join(command)}"
        )
