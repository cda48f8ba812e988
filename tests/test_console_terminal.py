"""The console in a real terminal (tmux): `weightkeeper review` opens on the demo's proposals, and `enter`, `a`,
`y` approve the first one, which leaves the inbox while its letter reaches the outbox."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from test_console import outbox, reviews


def tmux(session: str, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """tmux on a server of the test's own (its socket named after the session), never the user's."""
    return subprocess.run(["tmux", "-L", session, "-f", "/dev/null", *args], capture_output=True, text=True,
                          check=check)


def screen(session: str) -> str:
    return tmux(session, "capture-pane", "-p", "-t", session).stdout


def wait_for(session: str, condition: Callable[[str], bool], what: str, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        shown = screen(session)
        if condition(shown):
            return shown
        time.sleep(0.2)
    raise AssertionError(f"the terminal never showed {what}; it shows:\n{screen(session)}")


def test_enter_a_y_in_a_real_terminal_approves_the_first_proposal(console_home: Path) -> None:
    session = f"wk-{uuid.uuid4().hex[:8]}"
    command = " ".join(shlex.quote(part) for part in (
        "env", "-u", "COLUMNS", "-u", "LINES", f"WEIGHTKEEPER_KEYS_DIR={os.environ['WEIGHTKEEPER_KEYS_DIR']}", "WEIGHTKEEPER_REVIEWER=ada",
        "TERM=xterm-256color", sys.executable, "-m", "weightkeeper.cli.main", "--home", str(console_home), "review"))
    # The window has its size before the console starts in it: a command started with the session may see the
    # default 80x24 first.
    tmux(session, "new-session", "-d", "-s", session, "-x", "100", "-y", "30", "cat")
    assert tmux(session, "display", "-p", "-t", session, "#{window_width}x#{window_height}").stdout.strip() == "100x30"
    tmux(session, "respawn-pane", "-k", "-t", session, command)
    try:
        first = reviews(console_home)[1]
        wait_for(session, lambda text: all(part in text for part in (
            "reviewer ada", "support-llama-8b-lora", "mistral-7b-legal-clauses", "gemma-2-9b-poetry", "3 pending")),
            "the inbox with the demo's three proposals")
        tmux(session, "send-keys", "-t", session, "Enter")
        wait_for(session, lambda text: "Review 1 · pending" in text, "the proposal")
        tmux(session, "send-keys", "-t", session, "a")
        shown = wait_for(session, lambda text: "payload sha256" in text, "the approval dialog")
        assert first.payload_sha256(0) in shown.replace("\n", "")
        tmux(session, "send-keys", "-t", session, "y")
        wait_for(session, lambda text: "Review 1 · executed" in text, "the executed proposal")
        tmux(session, "send-keys", "-t", session, "Escape")
        shown = wait_for(session, lambda text: "2 pending" in text, "the inbox without it")
        rows = "\n".join(shown.splitlines()[:8])  # the inbox's rows (its notices show at the bottom)
        assert "support-llama-8b-lora" not in rows and "gemma-2-9b-poetry" in rows
        (letter,) = outbox(console_home)
        assert first.draft.title in letter
        assert reviews(console_home)[1].status == "executed"
        tmux(session, "send-keys", "-t", session, "q")
        deadline = time.monotonic() + 20
        while tmux(session, "has-session", "-t", session, check=False).returncode == 0:
            assert time.monotonic() < deadline, "q did not leave the console"
            time.sleep(0.2)
    finally:
        tmux(session, "kill-server", check=False)


def test_without_a_terminal_the_console_says_so_and_starts_nothing(console_home: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "weightkeeper.cli.main", "--home", str(console_home), "review"],
                          capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert done.returncode == 2 and "the review console needs a terminal" in done.stderr
    assert "weightkeeper review list" in done.stderr


def test_a_new_home_gets_its_ledger_before_the_console_reads_it(tmp_path: Path) -> None:
    from tui.app import prepared

    prepared(tmp_path / "new")  # what `weightkeeper review` does first: its workers then open a ready ledger
    assert (tmp_path / "new" / "ledger.sqlite3").exists()
