"""What a scan shows while it runs: log lines off a terminal, a live progress line on one."""

from __future__ import annotations

from weightkeeper.cli.progress import LogLines, ProgressBar


def test_log_lines_report_every_wait_and_progress_every_so_many_pages() -> None:
    lines: list[str] = []
    display = LogLines(lines.append, every=2)
    display.start("hub")
    for page in range(1, 5):
        display.progress(page, page * 1000)
    display.wait(7.0, "listing models: HTTP 429")
    display.progress(1, 1)  # counted as people write it, never "1 pages"
    display.every = 1
    display.progress(1, 1)
    display.stop()
    assert lines == ["hub: 2 pages, 2,000 models listed so far", "hub: 4 pages, 4,000 models listed so far",
                     "hub: waiting 7.0 s (listing models: HTTP 429)", "hub: 1 page, 1 model listed so far"]


def test_the_progress_bar_shows_pages_models_and_the_current_wait_until_the_next_page() -> None:
    bar = ProgressBar()
    bar.start("hub")
    try:
        bar.progress(3, 3000)
        bar.wait(12.0, "HTTP 429")
        (task,) = bar._bar.tasks
        assert (task.fields["registry"], task.fields["listed"]) == ("hub", "3 pages, 3,000 models")
        assert task.fields["waiting"] == "waiting 12 s: HTTP 429"
        bar.progress(1, 1)
        assert (bar._bar.tasks[0].fields["listed"], bar._bar.tasks[0].fields["waiting"]) == ("1 page, 1 model", "")
    finally:
        bar.stop()
