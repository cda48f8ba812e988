"""Archive then verify a local model, against `openssl dgst -sha256` over the same bytes.

Target (issue 5): archiving at >= 50% and verifying at >= 80% of openssl's throughput, measured in the same run:

    python benchmarks/archive.py [--gigabytes 2] [--repeat 3] [--dir /tmp]

The model folder (two weight files of half the size each, and a config.json) is written once, before the runs,
under --dir. The page cache cannot be dropped here, so all three measurements read bytes that are cached,
alike; before each run `sync` (not timed) writes back what is dirty, so that no run pays for the writeback of
the model or of an earlier run. Each run measures (1) `openssl dgst -sha256` over the model's files (one subprocess, wall time);
(2) archiving into a fresh store: each file copied into the staging (`shutil.copyfile`, as the local source
does), `finish` (sha256 with the sha1 fixity in the same pass) and `ingest`; (3) `verify` of that object
(sha256 of every content file). Throughput is the model's bytes over the wall time, in GB/s (10^9 bytes).
Archiving writes a copy of the model: once about 1 GB of it is dirty the kernel throttles the copy towards the
disk's write speed, so on a slow disk the archive figure varies from run to run, and more so for larger models.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tools.archive.store import ArchiveStore  # noqa: E402

BLOCK = 16 << 20
OBJECT_ID = "local/bench/model-2gb"
TARGETS = {"archive": 0.5, "verify": 0.8}


def write_model(folder: Path, total: int) -> dict[str, Path]:
    """Two weight files and a config.json: random blocks, each file's first block its own."""
    folder.mkdir(parents=True)
    files = {"model/config.json": folder / "config.json"}
    files["model/config.json"].write_text('{"model_type": "llama", "hidden_size": 4096}\n')
    block = os.urandom(BLOCK)
    for index in (1, 2):
        path = folder / f"model-0000{index}-of-00002.safetensors"
        with path.open("wb") as out:
            out.write(os.urandom(BLOCK))
            for _ in range(total // 2 // BLOCK - 1):
                out.write(block)
        files[f"model/{path.name}"] = path
    return files


def openssl(files: dict[str, Path]) -> tuple[float, dict[str, str]]:
    """Wall time of one `openssl dgst -sha256` over every file, and the digests it printed."""
    started = time.perf_counter()
    out = subprocess.run(["openssl", "dgst", "-sha256", "-r", *map(str, files.values())], check=True,
                         capture_output=True, text=True).stdout
    seconds = time.perf_counter() - started
    by_path = {line.split(" *", 1)[1]: line.split(" ", 1)[0] for line in out.splitlines()}
    return seconds, {logical: by_path[str(path)] for logical, path in files.items()}


def archive(root: Path, files: dict[str, Path], digests: dict[str, str]) -> float:
    started = time.perf_counter()
    store = ArchiveStore(root)
    staging = store.staging(OBJECT_ID, "main")
    for logical, path in files.items():
        shutil.copyfile(path, staging.partial(logical))
        staging.finish(logical, sha256=digests[logical], size=path.stat().st_size)
    store.ingest(staging, message="benchmark", user_name="benchmark")
    return time.perf_counter() - started


def verify(root: Path) -> float:
    started = time.perf_counter()
    report = ArchiveStore(root).verify(OBJECT_ID)
    seconds = time.perf_counter() - started
    assert report.ok, report.failures
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--gigabytes", type=float, default=2.0)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="wk-archive-bench-", dir=args.dir))
    try:
        files = write_model(work / "model", int(args.gigabytes * 1e9))
        size = sum(path.stat().st_size for path in files.values())
        print(f"model: {len(files)} files, {size / 1e9:.2f} GB in {work / 'model'} (cached: written just now)")
        rates: dict[str, list[float]] = {"openssl": [], "archive": [], "verify": []}
        for run in range(1, args.repeat + 1):
            root = work / f"store-{run}"
            os.sync()
            seconds = {"openssl": 0.0, "archive": 0.0, "verify": 0.0}
            seconds["openssl"], digests = openssl(files)
            seconds["archive"] = archive(root, files, digests)
            seconds["verify"] = verify(root)
            shutil.rmtree(root)
            for name, spent in seconds.items():
                rates[name].append(size / spent / 1e9)
            print(f"run {run}: " + "  ".join(
                f"{name} {spent:.2f} s = {rates[name][-1]:.2f} GB/s"
                + ("" if name == "openssl" else f" ({rates[name][-1] / rates['openssl'][-1]:.0%})")
                for name, spent in seconds.items()))
        print(f"median of {args.repeat}: openssl {statistics.median(rates['openssl']):.2f} GB/s")
        for name, target in TARGETS.items():
            ratio = statistics.median(rate / base for rate, base in zip(rates[name], rates["openssl"]))
            verdict = "meets" if ratio >= target else "MISSES"
            print(f"  {name} {statistics.median(rates[name]):.2f} GB/s, {ratio:.0%} of openssl "
                  f"({verdict} the {target:.0%} target)")
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
