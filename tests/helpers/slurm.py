"""A throw-away one-node Slurm cluster on localhost, for the tests of ``--executor slurm``.

Why this exists: the Slurm path of :mod:`reactcli.execution` (job arrays through submitit,
cancelled tasks, failed shards) can only be trusted if it is exercised against a real
``slurmctld``/``slurmd``, not a mock. Debian's packages (``munge slurmctld slurmd
slurm-client``) run a complete one-node cluster as root without systemd, so the tests start one:

- everything lives in one private directory: ``slurm.conf`` (clients find it through the
  ``SLURM_CONF`` environment variable, which is set while the cluster is up), state, spool,
  PID and log files, and a *private* ``munged`` with its own key and socket
  (``AuthInfo=socket=...``), so an existing munge or Slurm installation is neither used nor
  disturbed;
- the daemons run in the foreground as children of this process (``munged -F`` as the munge
  user, ``slurmctld -D -i``, ``slurmd -D``) and :meth:`SlurmCluster.stop` ends exactly those
  PIDs (after cancelling the jobs of this cluster), never anything found by name;
- config facts that matter on these machines: the node name is ``hostname -s`` with
  ``NodeAddr=127.0.0.1``; ``proctrack/linuxproc`` and ``task/none`` (no cgroups);
  ``select/cons_tres``; ``batch_sched_delay=0,sched_min_interval=0,bf_interval=1`` (a small
  array starts in ~1 s instead of ~6 s); ``KillWait=2`` (a cancelled node is not stuck
  "completing"). There is no accounting (``sacct`` fails), so callers must wait with a timeout.

When a cluster cannot be started (not root, packages missing and not installable, ports busy,
a daemon failing) :func:`start_local_slurm` returns a *reason string* instead, so that tests
skip with that reason.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

#: Debian packages that provide a one-node cluster
PACKAGES = ("munge", "slurmctld", "slurmd", "slurm-client")
#: binaries that must be on PATH (or in /usr/sbin) for a cluster to start
BINARIES = ("munged", "munge", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scancel", "srun")
#: the ports Slurm uses by default; other free ports are chosen when these are taken
DEFAULT_PORTS = (6817, 6818)


@dataclass
class SlurmSettings:
    """How the test cluster is started."""

    install: bool | None = None
    """Install the Debian packages with apt-get when they are missing (root only). None: yes,
    unless the environment variable ``REACTCLI_SLURM_INSTALL=0``."""
    start_timeout: float = 60.0
    """Seconds to wait for the node to become idle before giving up (with the daemons' logs)."""
    install_timeout: float = 300.0
    """Seconds allowed for ``apt-get update`` + ``apt-get install``."""
    partition: str = "debug"
    """Name of the single (default) partition."""
    oversubscribe: bool = False
    """Let the partition run more tasks than CPUs (``OverSubscribe=FORCE``)."""
    extra_conf: list[str] = field(default_factory=list)
    """Extra ``slurm.conf`` lines appended verbatim."""


@dataclass
class SlurmCluster:
    """A running local cluster; use :meth:`stop` (or :func:`local_slurm`) to end it."""

    root: Path
    """Private directory with slurm.conf, state, spool, logs and the munge socket."""
    conf: Path
    """The cluster's ``slurm.conf`` (exported as ``SLURM_CONF`` while the cluster is up)."""
    node: str
    """Node name (``hostname -s``)."""
    partition: str
    """The default partition."""
    ports: tuple[int, int]
    """(slurmctld, slurmd) ports."""
    startup_seconds: float
    """Wall time from the first daemon start to an idle node (package install excluded)."""
    install_seconds: float = 0.0
    """Wall time spent installing packages (0 when they were there)."""
    procs: dict[str, subprocess.Popen] = field(default_factory=dict)
    """The daemons this object started, by name: only these are ever signalled."""
    _old_conf: str | None = None
    _stopped: bool = False
    _own_root: bool = False
    """The root directory was created here (a temporary one): removed by :meth:`stop`."""

    @property
    def env(self) -> dict[str, str]:
        """An environment for client commands (``sbatch``, ``squeue``, ...) of this cluster."""
        return {**os.environ, "SLURM_CONF": str(self.conf)}

    def run(self, *cmd: str, timeout: float = 30.0, check: bool = False) -> subprocess.CompletedProcess:
        """Run a client command against this cluster; returns the completed process (text)."""
        return subprocess.run(list(cmd), env=self.env, capture_output=True, text=True, timeout=timeout, check=check)

    def jobs(self) -> list[tuple[str, str]]:
        """(job id, state) of every job this cluster knows (array tasks expanded)."""
        r = self.run("squeue", "-h", "-r", "-t", "all", "-o", "%i %T")
        return [tuple(line.split()[:2]) for line in r.stdout.splitlines() if line.strip()]  # type: ignore[misc]

    def logs(self, tail: int = 40) -> str:
        """The last lines of every daemon log (for failure messages)."""
        parts = []
        for name in ("munged.log", "slurmctld.log", "slurmd.log"):
            p = self.root / ("munge" if name == "munged.log" else "log") / name
            if p.is_file():
                lines = p.read_text(errors="replace").splitlines()[-tail:]
                parts.append(f"== {p}\n" + "\n".join(lines))
        return "\n".join(parts)

    def stop(self, timeout: float = 15.0) -> None:
        """Cancel this cluster's jobs, then end exactly the daemons started here (by PID)."""
        if self._stopped:
            return
        self._stopped = True
        if "slurmctld" in self.procs and self.procs["slurmctld"].poll() is None:
            # Jobs' slurmstepd processes outlive slurmd: cancel them while the cluster still runs.
            with contextlib.suppress(Exception):
                self.run("scancel", "--user", pwd.getpwuid(os.getuid()).pw_name, "--full", timeout=10)
                deadline = time.monotonic() + 10
                while time.monotonic() < deadline and any(
                        s in ("RUNNING", "COMPLETING", "PENDING", "CONFIGURING") for _, s in self.jobs()):
                    time.sleep(0.2)
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.procs.get(name)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(5)
        if os.environ.get("SLURM_CONF") == str(self.conf):
            if self._old_conf is None:
                os.environ.pop("SLURM_CONF", None)
            else:
                os.environ["SLURM_CONF"] = self._old_conf
        if self._own_root:
            shutil.rmtree(self.root, ignore_errors=True)


def _which(name: str) -> str | None:
    return shutil.which(name) or shutil.which(name, path="/usr/sbin:/sbin:/usr/bin")


def _missing_binaries() -> list[str]:
    return [b for b in BINARIES if _which(b) is None]


def install_packages(timeout: float = 300.0) -> str | None:
    """``apt-get install`` the Slurm/munge packages; returns None on success, else why not."""
    if os.geteuid() != 0:
        return "not root: cannot install the Slurm packages"
    apt = shutil.which("apt-get")
    if apt is None:
        return "slurm packages missing and apt-get is not available"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    try:
        for cmd in ([apt, "update", "-qq"], [apt, "install", "-y", "-qq", *PACKAGES]):
            r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=timeout)
            if r.returncode != 0:
                return f"`{' '.join(cmd)}` failed (rc {r.returncode}): {(r.stderr or r.stdout).strip()[-300:]}"
    except subprocess.TimeoutExpired:
        return f"installing {' '.join(PACKAGES)} took more than {timeout:.0f} s"
    missing = _missing_binaries()
    return f"installed the packages but still missing: {', '.join(missing)}" if missing else None


def _port_free(port: int) -> bool:
    for host in ("0.0.0.0", "127.0.0.1"):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError:
                return False
    return True


def choose_ports() -> tuple[int, int] | str:
    """Slurm's default ports if free, else two other free ports; a reason string if none."""
    if all(_port_free(p) for p in DEFAULT_PORTS):
        return DEFAULT_PORTS
    for base in range(16817, 17817, 2):  # deterministic fallback range, away from ephemeral ports
        if _port_free(base) and _port_free(base + 1):
            return base, base + 1
    return f"ports {DEFAULT_PORTS} and every fallback pair in 16817-17817 are in use"


def preflight(settings: SlurmSettings | None = None) -> str | None:
    """Why a cluster cannot be started here (None if it can be tried). Installs when allowed."""
    settings = settings or SlurmSettings()
    if os.name != "posix" or not hasattr(os, "geteuid"):
        return "Slurm needs a POSIX system"
    if os.geteuid() != 0:
        return "not root: the local Slurm cluster runs its daemons as root"
    if _missing_binaries():
        install = settings.install
        if install is None:
            install = os.environ.get("REACTCLI_SLURM_INSTALL", "1") != "0"
        if not install:
            return f"Slurm binaries missing ({', '.join(_missing_binaries())}) and installing is disabled"
        why = install_packages(settings.install_timeout)
        if why:
            return why
    try:
        pwd.getpwnam("munge")
    except KeyError:
        return "no 'munge' user (the munge package is not installed correctly)"
    return None


def _node_line(node: str) -> str:
    """The node definition from ``slurmd -C`` (real CPUs/memory), with the loopback address."""
    r = subprocess.run([_which("slurmd") or "slurmd", "-C"], capture_output=True, text=True, timeout=30)
    first = next((ln for ln in r.stdout.splitlines() if ln.startswith("NodeName=")), None)
    if first is None:
        cpus = os.cpu_count() or 1
        first = f"NodeName={node} CPUs={cpus}"
    words = [w for w in first.split() if not w.startswith(("NodeName=", "UpTime="))]
    return " ".join([f"NodeName={node}", *words, "NodeAddr=127.0.0.1", "State=UNKNOWN"])


def write_conf(root: Path, node: str, ports: tuple[int, int], settings: SlurmSettings) -> Path:
    """Write the cluster's ``slurm.conf`` under ``root``; returns its path."""
    sock = root / "munge" / "munge.socket"
    over = " OverSubscribe=FORCE" if settings.oversubscribe else ""
    lines = [
        "ClusterName=reactcli-test",
        f"SlurmctldHost={node}(127.0.0.1)",
        "SlurmUser=root",
        "SlurmdUser=root",
        f"SlurmctldPort={ports[0]}",
        f"SlurmdPort={ports[1]}",
        "AuthType=auth/munge",
        "CredType=cred/munge",
        f"AuthInfo=socket={sock}",
        f"StateSaveLocation={root / 'state'}",
        f"SlurmdSpoolDir={root / 'spool'}",
        f"SlurmctldPidFile={root / 'run' / 'slurmctld.pid'}",
        f"SlurmdPidFile={root / 'run' / 'slurmd.pid'}",
        f"SlurmctldLogFile={root / 'log' / 'slurmctld.log'}",
        f"SlurmdLogFile={root / 'log' / 'slurmd.log'}",
        "SlurmctldDebug=info",
        "SlurmdDebug=info",
        "ProctrackType=proctrack/linuxproc",
        "TaskPlugin=task/none",
        "SelectType=select/cons_tres",
        "SelectTypeParameters=CR_Core",
        "SchedulerType=sched/backfill",
        "SchedulerParameters=batch_sched_delay=0,sched_min_interval=0,bf_interval=1",
        "KillWait=2",
        "MpiDefault=none",
        "ReturnToService=2",
        "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none",
        "JobCompType=jobcomp/none",
        "InactiveLimit=0",
        "MinJobAge=300",
        "SlurmctldTimeout=30",
        "SlurmdTimeout=60",
        _node_line(node),
        f"PartitionName={settings.partition} Nodes=ALL Default=YES MaxTime=INFINITE State=UP{over}",
        *settings.extra_conf,
    ]
    conf = root / "slurm.conf"
    tmp = conf.with_suffix(".conf.tmp")
    tmp.write_text("\n".join(lines) + "\n")
    os.replace(tmp, conf)
    return conf


def _prepare_munge(root: Path) -> tuple[Path, int, int]:
    """A private munge directory and key owned by the munge user; returns (dir, uid, gid)."""
    pw = pwd.getpwnam("munge")
    d = root / "munge"
    d.mkdir()
    os.chown(d, pw.pw_uid, pw.pw_gid)
    os.chmod(d, 0o755)  # munged insists that every user can reach its socket
    key = d / "munge.key"
    fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(os.urandom(1024))
    os.chown(key, pw.pw_uid, pw.pw_gid)
    return d, pw.pw_uid, pw.pw_gid


def _die_with_parent() -> None:
    """``preexec_fn``: the daemon gets SIGTERM when the process that started it dies, so a test
    process killed without cleanup does not leave a cluster running (Linux only; best effort)."""
    with contextlib.suppress(Exception):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def _wait(pred, timeout: float, procs: dict[str, subprocess.Popen]) -> str | None:
    """Poll ``pred()`` until true; a reason string if a daemon died or the time ran out."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        dead = [f"{n} exited with code {p.returncode}" for n, p in procs.items() if p.poll() is not None]
        if dead:
            return "; ".join(dead)
        if pred():
            return None
        time.sleep(0.1)
    return f"timed out after {timeout:.0f} s"


def start_local_slurm(root: str | os.PathLike | None = None, settings: SlurmSettings | None = None) -> SlurmCluster | str:
    """Start a one-node cluster; returns it, or a reason string when that is not possible.

    ``root`` is a fresh directory for the cluster's files (a new temporary one by default; it
    is made world-traversable because munged runs as the munge user). On success
    ``SLURM_CONF`` points at the cluster until :meth:`SlurmCluster.stop`.
    """
    settings = settings or SlurmSettings()
    had = not _missing_binaries()
    t_install = time.monotonic()
    why = preflight(settings)
    if why:
        return why
    install_seconds = 0.0 if had else time.monotonic() - t_install
    ports = choose_ports()
    if isinstance(ports, str):
        return ports
    own_root = root is None
    root_p = Path(root) if root is not None else Path(tempfile.mkdtemp(prefix="reactcli-slurm-"))
    root_p.mkdir(parents=True, exist_ok=True)
    os.chmod(root_p, 0o755)
    for sub in ("state", "spool", "run", "log"):
        (root_p / sub).mkdir(exist_ok=True)
    node = socket.gethostname().split(".")[0]
    conf = write_conf(root_p, node, ports, settings)
    mdir, uid, gid = _prepare_munge(root_p)
    cluster = SlurmCluster(root=root_p, conf=conf, node=node, partition=settings.partition, ports=ports,
                           startup_seconds=0.0, install_seconds=install_seconds,
                           _old_conf=os.environ.get("SLURM_CONF"), _own_root=own_root)
    env = cluster.env
    t0 = time.monotonic()
    try:
        sock = mdir / "munge.socket"
        cluster.procs["munged"] = subprocess.Popen(
            [_which("munged") or "munged", "-F", f"--socket={sock}", f"--key-file={mdir / 'munge.key'}",
             f"--log-file={mdir / 'munged.log'}", f"--pid-file={mdir / 'munged.pid'}",
             f"--seed-file={mdir / 'munged.seed'}"],
            user=uid, group=gid, extra_groups=[], preexec_fn=_die_with_parent, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=open(mdir / "munged.stderr", "wb"), start_new_session=True)

        def munge_ok() -> bool:
            if not sock.exists():
                return False
            enc = subprocess.run([_which("munge") or "munge", "-n", f"--socket={sock}"], capture_output=True, timeout=10)
            return enc.returncode == 0
        why = _wait(munge_ok, 15, cluster.procs)
        if why:
            raise RuntimeError(f"munged did not start: {why}")
        log_dir = root_p / "log"
        cluster.procs["slurmctld"] = subprocess.Popen(
            [_which("slurmctld") or "slurmctld", "-D", "-i", "-f", str(conf)], env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=open(log_dir / "slurmctld.stderr", "wb"), start_new_session=True,
            preexec_fn=_die_with_parent)
        cluster.procs["slurmd"] = subprocess.Popen(
            [_which("slurmd") or "slurmd", "-D", "-f", str(conf)], env=env, stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=open(log_dir / "slurmd.stderr", "wb"), start_new_session=True,
            preexec_fn=_die_with_parent)

        def idle() -> bool:
            r = subprocess.run([_which("sinfo") or "sinfo", "-h", "-N", "-o", "%T"], env=env,
                               capture_output=True, text=True, timeout=10)
            return r.returncode == 0 and r.stdout.strip().rstrip("*") == "idle"
        why = _wait(idle, settings.start_timeout, cluster.procs)
        if why:
            raise RuntimeError(f"the Slurm node did not become idle: {why}")
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        logs = cluster.logs(tail=8)
        cluster.stop()
        return f"{exc}\n{logs}".strip()
    cluster.startup_seconds = time.monotonic() - t0
    os.environ["SLURM_CONF"] = str(conf)
    atexit.register(cluster.stop)  # normal interpreter exit without stop(): still clean up
    return cluster


@contextlib.contextmanager
def local_slurm(root: str | os.PathLike | None = None, settings: SlurmSettings | None = None) -> Iterator[SlurmCluster | str]:
    """Context manager around :func:`start_local_slurm`: yields the cluster (stopped on exit)
    or the reason string it could not be started."""
    cluster = start_local_slurm(root, settings)
    try:
        yield cluster
    finally:
        if isinstance(cluster, SlurmCluster):
            cluster.stop()


def slurm_fixture(tmp_path_factory, settings: SlurmSettings | None = None) -> Iterator[SlurmCluster]:
    """Body of a pytest fixture: yields a running cluster or skips with the reason.

    Use as ``@pytest.fixture(scope="module") def slurm(tmp_path_factory): yield from
    slurm_fixture(tmp_path_factory)``. The cluster directory must be traversable by the munge
    user, so it is created under the system temp directory, not pytest's 0700 base.
    """
    import pytest

    root = Path(tempfile.mkdtemp(prefix="reactcli-slurm-"))
    with local_slurm(root, settings) as cluster:
        if isinstance(cluster, str):
            shutil.rmtree(root, ignore_errors=True)
            pytest.skip(f"local Slurm cluster not available: {cluster}")
        yield cluster
    shutil.rmtree(root, ignore_errors=True)
