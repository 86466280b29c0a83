"""What the numbers were measured on: cores, Python, kernel, disk, fsync latency."""

from __future__ import annotations

import hashlib
import os
import platform
import statistics
import subprocess
import time

from .procs import REPO_ROOT, tool_version

#: fdatasync samples for the disk measurement: enough for a p99, few enough
#: to take well under a second on an SSD.
FSYNC_SAMPLES = 300


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "?"


def _mem_total() -> int:
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemTotal:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _filesystem_of(path: str) -> str:
    """Device and type of the mount holding ``path`` (longest mount-point prefix)."""
    path = os.path.realpath(path)
    best = ("", "?", "?")
    try:
        with open("/proc/mounts", encoding="utf-8", errors="replace") as f:
            for line in f:
                dev, mnt, fstype = line.split()[:3]
                if (path == mnt or path.startswith(mnt.rstrip("/") + "/")) and len(mnt) > len(best[0]):
                    best = (mnt, dev, fstype)
    except OSError:
        pass
    return f"{best[1]} ({best[2]}) mounted on {best[0] or '?'}"


def fsync_latency(dirpath: str, samples: int = FSYNC_SAMPLES, size: int = 64) -> dict[str, float]:
    """Append ``size`` bytes then fdatasync, ``samples`` times, in a file in ``dirpath``.

    That is a WAL commit of one small record: the floor under any durable
    write on this disk. Returns p50/p99/mean/max in microseconds.
    """
    path = os.path.join(dirpath, "fsync-probe.tmp")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_TRUNC, 0o644)
    lat = []
    payload = b"x" * size
    try:
        os.write(fd, payload)
        os.fsync(fd)  # the first sync also writes the inode; keep it out of the samples
        for _ in range(samples):
            t = time.perf_counter()
            os.write(fd, payload)
            os.fdatasync(fd)
            lat.append((time.perf_counter() - t) * 1e6)
    finally:
        os.close(fd)
        os.unlink(path)
    lat.sort()
    return {"p50_us": lat[len(lat) // 2], "p99_us": lat[min(len(lat) - 1, int(len(lat) * 0.99))],
            "mean_us": statistics.fmean(lat), "max_us": lat[-1], "samples": samples}


def describe(data_dir: str, fsync_samples: int = FSYNC_SAMPLES) -> dict:
    """Everything the report says about the machine."""
    return {
        "cpu": _cpu_model(),
        "cores": os.cpu_count() or 0,
        "memory_bytes": _mem_total(),
        "kernel": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "python_impl": platform.python_implementation(),
        "redis_server": tool_version(["redis-server", "--version"]),
        "redis_benchmark": tool_version(["redis-benchmark", "--version"]),
        "data_dir": data_dir,
        "filesystem": _filesystem_of(data_dir),
        "fsync": fsync_latency(data_dir, fsync_samples),
        "loadavg_start": os.getloadavg(),
    }


def source_hash() -> str:
    """A short hash of every kvserver/*.py file: which server code was measured."""
    h = hashlib.sha256()
    root = REPO_ROOT / "kvserver"
    for path in sorted(root.rglob("*.py")):
        h.update(str(path.relative_to(root)).encode())
        h.update(path.read_bytes())
    return h.hexdigest()[:12]


def git_describe() -> str:
    """HEAD's short hash, plus "+changes" when kvserver/ differs from it (read-only git)."""
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT,
                              capture_output=True, text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "kvserver"],
                               cwd=REPO_ROOT, capture_output=True, text=True,
                               timeout=10).stdout.strip()
    except (OSError, subprocess.TimeoutExpired):
        return "?"
    return (head or "?") + ("+uncommitted changes in kvserver/" if dirty else "")


class LoadSampler:
    """The 1-minute load average, sampled once per server start."""

    samples: list[float] = []

    @classmethod
    def sample(cls) -> None:
        cls.samples.append(os.getloadavg()[0])

    @classmethod
    def summary(cls) -> tuple[float, float, float] | None:
        if not cls.samples:
            return None
        s = sorted(cls.samples)
        return s[0], s[len(s) // 2], s[-1]
