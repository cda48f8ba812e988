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


def screen(session: str) -> str:
    return subprocess.run(["tmux", "capture-pane", "-p", "-t", session], capture_output=True, text=True,
                          check=True).stdout


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
        "env", f"WEIGHTKEEPER_KEYS_DIR={os.environ['WEIGHTKEEPER_KEYS_DIR']}", "WEIGHTKEEPER_REVIEWER=ada",
        "TERM=xterm-256color", sys.executable, "-m", "weightkeeper.cli.main", "--home", str(console_home), "review"))
    subprocess.run(["tmux", "new-session", "-d", "-s", session, "-x", "100", "-y", "30", command], check=True)
    try:
        first = reviews(console_home)[1]
        shown = wait_for(session, lambda text: "support-llama-8b-lora" in text and "quillfeather" in text, "the inbox")
        assert "reviewer ada" in shown and "3 pending" in shown
        subprocess.run(["tmux", "send-keys", "-t", session, "Enter"], check=True)
        wait_for(session, lambda text: "Review 1 · pending" in text, "the proposal")
        subprocess.run(["tmux", "send-keys", "-t", session, "a"], check=True)
        shown = wait_for(session, lambda text: "payload sha256" in text, "the approval dialog")
        assert first.payload_sha256(0) in shown.replace("\n", "")
        subprocess.run(["tmux", "send-keys", "-t", session, "y"], check=True)
        wait_for(session, lambda text: "Review 1 · executed" in text, "the executed proposal")
        subprocess.run(["tmux", "send-keys", "-t", session, "Escape"], check=True)
        shown = wait_for(session, lambda text: "2 pending" in text, "the inbox without it")
        assert "support-llama-8b-lora" not in shown
        (letter,) = outbox(console_home)
        assert first.draft.title in letter
        assert reviews(console_home)[1].status == "executed"
        subprocess.run(["tmux", "send-keys", "-t", session, "q"], check=True)
        deadline = time.monotonic() + 20
        while subprocess.run(["tmux", "has-session", "-t", session], capture_output=True).returncode == 0:
            assert time.monotonic() < deadline, "q did not leave the console"
            time.sleep(0.2)
    finally:
        subprocess.run(["tmux", "kill-session", "-t", session], capture_output=True)
