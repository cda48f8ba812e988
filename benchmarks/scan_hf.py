"""Scan a 200,000-model fake Hub and compare with a bare `HfApi.list_models` loop over it.

Target (issue 3): `weightkeeper scan` into an empty ledger (2), and a rescan with 1% churn (3),
each within 1.3x of the bare loop (1), all measured in the same run:

    python benchmarks/scan_hf.py [--models 200000] [--churn 0.01] [--repeat 3]

The fake Hub runs in its own process (it would otherwise share the client's interpreter lock)
and answers `GET /api/models` in pages of 1,000 with `Link: <...>; rel="next"`, items shaped like
the Hub's with the fields weightkeeper's adapter asks for, and `GET /api/models/{id}` for the
lookups that confirm deletions (404 with `X-Error-Code: RepoNotFound`). Its pages are serialised
once, when the data set is built, so the server's own cost is small and the same for (1) and (2).
`POST /_churn` switches to the churned data set: a third of the churn deleted, added, changed.
(1) iterates every `ModelInfo` that `list_models(author=..., expand=[the adapter's fields])`
yields; (2) and (3) run the `weightkeeper scan` command, start-up included, with the project's modules
compiled beforehand as an installed weightkeeper's are.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

AUTHOR = "bench"
PAGE = 1000
BASES = ("meta-llama/Llama-3.1-8B-Instruct", "mistralai/Mistral-7B-v0.3", "Qwen/Qwen2.5-7B-Instruct",
         "google/gemma-2-9b-it")
RELATIONS = ("finetune", "adapter", "quantized", "merge")


def item(i: int, changed: bool = False) -> dict:
    base, relation = BASES[i % len(BASES)], RELATIONS[i % len(RELATIONS)]
    return {
        "_id": f"{0x66A000000000000000000000 + i:024x}", "id": f"{AUTHOR}/model-{i:06d}",
        "sha": f"{(i * 2654435761 + changed) % (1 << 160):040x}",
        "lastModified": "2026-11-01T00:00:00.000Z", "createdAt": "2025-06-01T00:00:00.000Z",
        "private": False, "gated": False, "disabled": False, "downloads": i % 5000, "likes": i % 97,
        "tags": ["transformers", "safetensors", "text-generation", f"base_model:{relation}:{base}",
                 f"base_model:{base}", "license:apache-2.0", "region:us"],
        "pipeline_tag": "text-generation", "library_name": "transformers",
        "cardData": {"base_model": base, "license": "apache-2.0", "datasets": ["tatsu-lab/alpaca"],
                     "co2_eq_emissions": {"emissions": 120 + i % 50, "source": "codecarbon"}},
    }


def dataset(models: int, churn: float) -> list[dict]:
    step = round(1 / churn) if churn else 0
    items = []
    for i in range(models):
        fate = ("deleted", "added", "changed")[(i // step) % 3] if step and i % step == 0 else "same"
        if fate != "deleted":
            items.append(item(i, changed=fate == "changed"))
        if fate == "added":
            items.append(item(models + i))
    return sorted(items, key=lambda entry: entry["id"])


class Hub:
    def __init__(self, models: int, churn: float) -> None:
        self.models, self.churn = models, churn
        self.use(0.0)

    def use(self, churn: float) -> None:
        items = dataset(self.models, churn)
        self.pages = [json.dumps(items[start : start + PAGE]).encode() for start in range(0, len(items), PAGE)]
        self.by_id = {entry["id"]: entry for entry in items}


def serve(port: int, models: int, churn: float) -> None:
    hub = Hub(models, churn)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        disable_nagle_algorithm = True  # headers and body are two writes: without this, each waits a delayed ACK

        def _send(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
            self.send_response(status)
            for key, value in {"Content-Type": "application/json", **(headers or {})}.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            if parts.path == "/api/models":
                query = parse_qs(parts.query)
                page = int(query.get("cursor", ["0"])[0])
                headers = {}
                if page + 1 < len(hub.pages):
                    kept = "&".join(f"{key}={value}" for key, values in query.items() if key != "cursor"
                                    for value in values)
                    headers["Link"] = f'<http://127.0.0.1:{port}/api/models?{kept}&cursor={page + 1}>; rel="next"'
                self._send(200, hub.pages[page], headers)
            elif parts.path.startswith("/api/models/"):
                found = hub.by_id.get(parts.path.removeprefix("/api/models/"))
                if found is None:
                    self._send(404, b'{"error":"Repository not found"}',
                               {"X-Error-Code": "RepoNotFound", "X-Error-Message": "Repository not found"})
                else:
                    self._send(200, json.dumps(found).encode())
            else:
                self._send(404, b"{}")

        def do_POST(self) -> None:
            hub.use(hub.churn)
            self._send(200, b"{}")

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    print("ready", flush=True)
    server.serve_forever()


def bare_listing(endpoint: str) -> tuple[float, int]:
    from huggingface_hub import HfApi

    from tools.registries.huggingface import EXPAND

    started = time.perf_counter()
    count = sum(1 for _ in HfApi(endpoint=endpoint, token=False).list_models(author=AUTHOR, expand=list(EXPAND)))
    return time.perf_counter() - started, count


def compile_project() -> None:
    """Compile the project's modules, as `pip install` does: run from a checkout where PYTHONDONTWRITEBYTECODE
    is set (as on the machines this was measured on), every start would compile them again."""
    root = Path(__file__).resolve().parent.parent
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(root / "weightkeeper"), str(root / "tools")],
                   check=True)


def weightkeeper_scan(home: Path) -> tuple[float, dict]:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "weightkeeper.cli.main", "--home", str(home), "scan", "--json"],
                          capture_output=True, text=True, check=True)
    return time.perf_counter() - started, json.loads(done.stdout)[0]


def free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def one_run(models: int, churn: float) -> tuple[tuple[float, int], tuple[float, dict], tuple[float, dict]]:
    """(1), (2) and (3) against a fresh fake Hub and an empty ledger."""
    import httpx

    port, work = free_port(), Path(tempfile.mkdtemp(prefix="wk-scan-hf-"))
    server = subprocess.Popen([sys.executable, __file__, "--serve", str(port), str(models), str(churn)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert server.stdout.readline().strip() == "ready"
        endpoint = f"http://127.0.0.1:{port}"
        (work / "weightkeeper.toml").write_text(
            f'[ledger]\npath = "ledger.sqlite3"\n\n[registries.hub]\nkind = "hf"\nendpoint = "{endpoint}"\n'
            f'author = "{AUTHOR}"\n', encoding="utf-8")
        bare = bare_listing(endpoint)
        first = weightkeeper_scan(work)
        httpx.post(f"{endpoint}/_churn", timeout=600)
        rescan = weightkeeper_scan(work)
    finally:
        server.terminate()
        server.wait()
        shutil.rmtree(work, ignore_errors=True)
    assert first[1]["status"] == rescan[1]["status"] == "complete", (first, rescan)
    return bare, first, rescan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", type=int, default=200_000)
    parser.add_argument("--churn", type=float, default=0.01)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--serve", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        serve(int(args.serve[0]), int(args.serve[1]), float(args.serve[2]))
        return

    figures: dict[str, list[float]] = {"bare": [], "first": [], "rescan": []}
    compile_project()
    for run in range(args.repeat):
        (bare, count), (first, scanned), (rescan, rescanned) = one_run(args.models, args.churn)
        figures["bare"].append(bare)
        figures["first"].append(first)
        figures["rescan"].append(rescan)
        print(f"run {run + 1}: (1) bare list_models {bare:.2f} s for {count:,} models; (2) first scan "
              f"{first:.2f} s ({first / bare:.2f}x), events {scanned['events']}; (3) rescan with "
              f"{args.churn:.0%} churn {rescan:.2f} s ({rescan / bare:.2f}x), events {rescanned['events']}",
              flush=True)
        # The scan's own split of its time: waiting for the registry's pages (read ahead by a child process),
        # and writing the ledger; the rest of (2) and (3) is the command's start-up.
        for label, done in (("(2)", scanned), ("(3)", rescanned)):
            print(f"  {label} {done['seconds']['total']:.2f} s in the scan: waiting for pages "
                  f"{done['seconds']['registry']:.2f} s, ledger {done['seconds']['ledger']:.2f} s", flush=True)
    bare, first, rescan = (statistics.median(figures[key]) for key in ("bare", "first", "rescan"))
    print(f"medians: (1) {bare:.2f} s; (2) {first:.2f} s = {first / bare:.2f}x; (3) {rescan:.2f} s = "
          f"{rescan / bare:.2f}x (target <= 1.3x each)")


if __name__ == "__main__":
    main()
