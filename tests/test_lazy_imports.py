"""`weightkeeper --help` must stay fast: the heavy libraries are imported only by the commands that use them."""

from __future__ import annotations

import json
import subprocess
import sys

HEAVY = ("langchain_core", "langgraph", "chromadb", "textual", "torch", "openai", "huggingface_hub", "httpx",
         "rich", "yaml", "platformdirs", "sqlite3")


def test_help_imports_no_heavy_library() -> None:
    probe = (
        "import contextlib, io, json, sys\n"
        "from weightkeeper.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n"
        "        main(['--help'])\n"
        "    except SystemExit:\n"
        "        pass\n"
        f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []
