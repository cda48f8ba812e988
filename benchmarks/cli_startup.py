"""Wall time of `weightkeeper --help` (target <= 0.5 s): heavy libraries must be imported lazily.

    python benchmarks/cli_startup.py [--runs 20]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    beside_python = Path(sys.executable).with_name("weightkeeper")
    script = str(beside_python) if beside_python.exists() else shutil.which("weightkeeper")
    command = [script, "--help"] if script else [sys.executable, "-m", "weightkeeper.cli.main", "--help"]
    walls = []
    for _ in range(args.runs):
        start = time.perf_counter()
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        walls.append(time.perf_counter() - start)
    python_only = []
    for _ in range(args.runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-c", "pass"], check=True)
        python_only.append(time.perf_counter() - start)
    print(f"`{' '.join(command)}`: median {statistics.median(walls) * 1000:.0f} ms, "
          f"max {max(walls) * 1000:.0f} ms over {args.runs} runs (target <= 500 ms); "
          f"a bare `python -c pass` takes {statistics.median(python_only) * 1000:.0f} ms here")


if __name__ == "__main__":
    main()
