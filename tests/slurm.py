"""A real Slurm on 127.0.0.1 for tests: ``munged``, ``slurmctld`` and ``slurmd`` from a generated
``slurm.conf`` in a temporary folder (helpers and a pytest fixture, no tests; nothing here imports har).

Everything the daemons write (state, spool, pid files, logs, the munge key and socket) lives in that
folder; the controller and node listen on free ports, so a Slurm already on the machine is not touched.
One node named after this host with its CPUs and memory, and four count-only GPUs (``Gres=gpu:4`` with
no device files: the scripts' ``--gpus-per-task`` is accepted and scheduled, Ray is told the count,
and no trial of the tests asks for a GPU). ``sacct`` needs a database daemon; jobs are followed with
``scontrol show job`` instead (kept for ``MinJobAge`` seconds after they end), and every job's end is
also written by ``jobcomp/filetxt``.

The daemons are stopped by the process ids in their own pid files (never by name), then the folder is
deleted. Debian's ``slurm-wlm`` and ``munge`` provide the binaries (``.ci/run`` installs them); without
them the fixture skips. Measured recipe: ``shared/notes/slurm-here.md``.
"""

from __future__ import annotations

import contextlib
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from tests.servers import free_port

DAEMONS = ("slurmd", "slurmctld", "munged")  # the order they are stopped in
STAND_IN_GPUS = ("/dev/null", "/dev/zero", "/dev/full", "/dev/urandom")
GPUS = len(STAND_IN_GPUS)


class NoSlurm(RuntimeError):
    """Slurm's or munge's daemons are not installed here."""


def _binary(name: str) -> str:
    for folder in ("", "/usr/sbin", "/usr/bin", "/usr/local/sbin"):
        path = shutil.which(name) if not folder else str(Path(folder) / name)
        if path and os.access(path, os.X_OK):
            return path
    raise NoSlurm(f"{name} not found (Debian: apt-get install slurm-wlm munge)")


@dataclass
class Slurm:
    """A running controller and node; ``env`` points Slurm's client commands at it."""

    folder: Path
    node: str
    cpus: int
    memory_mb: int

    @property
    def conf(self) -> Path:
        return self.folder / "slurm.conf"

    @property
    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}

    def run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
        return subprocess.run(
            list(args), env={**os.environ, **self.env}, capture_output=True, text=True, timeout=timeout
        )

    def job(self, job_id: str) -> dict[str, str]:
        """``scontrol show job``'s fields (JobState, ExitCode, Restarts, ...), {} once it is forgotten."""
        proc = self.run("scontrol", "show", "job", "--oneliner", job_id)
        if proc.returncode != 0:
            return {}
        return dict(re.findall(r"(\w+)=(\S*)", proc.stdout))

    def wait(self, job_id: str, states: set[str], timeout: float, poll: float = 1.0) -> dict[str, str]:
        """Wait until the job's state is one of ``states``; its fields then."""
        deadline = time.monotonic() + timeout
        fields: dict[str, str] = {}
        while time.monotonic() < deadline:
            fields = self.job(job_id)
            if fields.get("JobState") in states:
                return fields
            time.sleep(poll)
        raise TimeoutError(
            f"job {job_id} not in {sorted(states)} after {timeout:.0f} s: {fields.get('JobState')} "
            f"({fields.get('Reason')})\n{self.log_tail()}"
        )

    def completions(self) -> str:
        """What jobcomp/filetxt wrote: one line per ended job (JobId=... JobState=... ExitCode=...)."""
        with contextlib.suppress(OSError):
            return (self.folder / "jobcomp.log").read_text()
        return ""

    def log_tail(self, chars: int = 2000) -> str:
        parts = []
        for name in ("slurmctld.log", "slurmd.log"):
            with contextlib.suppress(OSError):
                parts.append(f"--- {name}\n" + (self.folder / name).read_text(errors="replace")[-chars:])
        return "\n".join(parts)


def _memory_mb() -> int:
    with open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024 - 1024  # leave the OS a GiB
    raise RuntimeError("no MemTotal in /proc/meminfo")


def _write_conf(folder: Path, node: str, cpus: int, memory_mb: int, ctld_port: int, slurmd_port: int) -> None:
    # job ids name the jobs' Ray temp folders (/tmp/ray-<id>) and port blocks: a random start keeps two
    # test sessions on one machine apart
    first_job_id = secrets.randbelow(900_000) + 1000
    user = "root" if os.geteuid() == 0 else os.environ.get("USER", "root")
    conf = f"""\
ClusterName=har-test
FirstJobId={first_job_id}
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser={user}
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={folder / "munge.socket"}
StateSaveLocation={folder / "state"}
SlurmdSpoolDir={folder / "spool"}
SlurmctldPidFile={folder / "slurmctld.pid"}
SlurmdPidFile={folder / "slurmd.pid"}
SlurmctldLogFile={folder / "slurmctld.log"}
SlurmdLogFile={folder / "slurmd.log"}
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={folder / "jobcomp.log"}
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
GresTypes=gpu
ReturnToService=2
MinJobAge=600
KillWait=60
MpiDefault=none
SchedulerType=sched/backfill
SchedulerParameters=bf_interval=1
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} Gres=gpu:{GPUS} State=UNKNOWN
PartitionName=main Nodes={node} Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
"""
    (folder / "slurm.conf").write_text(conf)
    # Slurm counts a node's GPUs by their character devices; four harmless ones stand in (task/none: no
    # cgroup restricts them), so jobs may ask for GPUs as on a GPU cluster
    files = ",".join(STAND_IN_GPUS)
    (folder / "gres.conf").write_text(f"NodeName={node} Name=gpu File={files}\n")


def _pid(pidfile: Path) -> int | None:
    """The pid in ``pidfile``; None while it is missing or still empty (daemons create it, then write it)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        return int(pidfile.read_text().split()[0])
    return None


def _stop(pidfile: Path, grace: float = 15) -> None:
    pid = _pid(pidfile)
    if pid is None:
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _started(args: list[str], env: dict[str, str], pidfile: Path, what: str, log: Path) -> None:
    proc = subprocess.run(args, env=env, capture_output=True, text=True, timeout=60)
    deadline = time.monotonic() + 30
    while _pid(pidfile) is None:
        if time.monotonic() > deadline or proc.returncode != 0:
            tail = log.read_text(errors="replace")[-2000:] if log.exists() else ""
            raise RuntimeError(f"{what} did not start ({proc.returncode}): {proc.stderr[-1000:]}\n{tail}")
        time.sleep(0.1)


@contextlib.contextmanager
def running_slurm(cpus: int | None = None) -> Iterator[Slurm]:
    """munged + slurmctld + slurmd in a fresh temporary folder, waiting until the node is idle."""
    binaries = {name: _binary(name) for name in DAEMONS}
    folder = Path(tempfile.mkdtemp(prefix="har-slurm-"))
    node = socket.gethostname().split(".")[0]
    slurm = Slurm(folder, node, cpus or os.cpu_count() or 1, _memory_mb())
    env = {**os.environ, **slurm.env}
    try:
        for sub in ("state", "spool"):
            (folder / sub).mkdir()
        key = folder / "munge.key"
        fd = os.open(key, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o400)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(1024))
        _started(
            [binaries["munged"], f"--key-file={key}", f"--socket={folder / 'munge.socket'}",
             f"--pid-file={folder / 'munged.pid'}", f"--log-file={folder / 'munged.log'}",
             f"--seed-file={folder / 'munged.seed'}", "--force"],
            env, folder / "munged.pid", "munged", folder / "munged.log",
        )  # fmt: skip
        _write_conf(folder, node, slurm.cpus, slurm.memory_mb, free_port(), free_port())
        _started(
            [binaries["slurmctld"], "-c"],
            env,
            folder / "slurmctld.pid",
            "slurmctld",
            folder / "slurmctld.log",
        )
        _started([binaries["slurmd"]], env, folder / "slurmd.pid", "slurmd", folder / "slurmd.log")
        deadline = time.monotonic() + 60
        while True:
            state = slurm.run("sinfo", "--noheader", "--format=%T").stdout.strip()
            if state == "idle":
                break
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the Slurm node is {state or 'not listed'} after 60 s\n{slurm.log_tail()}"
                )
            time.sleep(0.5)
        yield slurm
    finally:
        for name in DAEMONS:  # node, controller, then munge: by their own pid files
            _stop(folder / f"{name}.pid")
        shutil.rmtree(folder, ignore_errors=True)


try:
    import pytest
except ImportError:
    pytest = None

if pytest is not None:

    @pytest.fixture(scope="module")
    def slurm() -> Iterator[Slurm]:
        try:
            with running_slurm() as cluster:
                yield cluster
        except NoSlurm as exc:
            pytest.skip(f"Slurm is not installed: {exc}")
