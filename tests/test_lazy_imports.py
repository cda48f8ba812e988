"""`weightkeeper --help` must stay fast: the heavy libraries are imported only by the commands that use them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

HEAVY = ("langchain_core", "langgraph", "chromadb", "textual", "torch", "openai", "huggingface_hub", "httpx",
         "rich", "yaml", "platformdirs", "sqlite3")
# A fresh interpreter runs `weightkeeper --help`; a probe's own lines follow.
RUN_HELP = (
    "import contextlib, io, json, sys\n"
    "from weightkeeper.cli.main import main\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n"
    "    try:\n"
    "        main(['--help'])\n"
    "    except SystemExit:\n"
    "        pass\n"
)


def test_help_imports_no_heavy_library() -> None:
    probe = RUN_HELP + f"print(json.dumps(sorted(m for m in {HEAVY!r} if m in sys.modules)))\n"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == []


def test_archive_list_imports_what_reading_an_archive_needs_and_no_more(tmp_path) -> None:
    """ocfl-py imports s3fs, which imports aiobotocore: most of `archive list`'s start, for S3 roots it never opens;
    fetching sources (httpx) is for archiving, not listing."""
    from weightkeeper import config
    from tools.archive.store import open_store

    config.write_default(tmp_path)
    open_store(config.load(tmp_path)).objects()  # an archive exists, so listing opens it
    probe = (
        "import contextlib, io, json, sys\n"
        "from weightkeeper.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        f"    assert main(['archive', 'list', '--home', {str(tmp_path)!r}]) == 0\n"
        "print(json.dumps(sorted(m for m in ('s3fs', 'aiobotocore', 'botocore', 'httpx', 'ocfl') if m in sys.modules)))\n"
    )
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == ["ocfl"]


def test_the_command_sets_the_libraries_environment_before_they_are_imported() -> None:
    """huggingface_hub and langgraph read their variables once, when first imported: a module that sets them
    when it is imported is too late if the library came first. The command sets them as it starts."""
    probe = RUN_HELP + (
        "import huggingface_hub.constants, langgraph.checkpoint.serde._msgpack as serde\n"
        "print(json.dumps([huggingface_hub.constants.HF_HUB_DISABLE_TELEMETRY, serde.STRICT_MSGPACK_ENABLED]))\n"
    )
    env = {key: value for key, value in os.environ.items()
           if key not in ("HF_HUB_DISABLE_TELEMETRY", "LANGGRAPH_STRICT_MSGPACK")}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True, env=env)
    assert json.loads(out.stdout) == [True, True]
