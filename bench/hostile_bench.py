"""What hostile providers and clients can do to `exo-bridge serve` (issue 13), measured.

    .venv/bin/python -m bench.hostile_bench [--only memory,deadlines,flood,slow]

Every fake provider and `exo-bridge serve` run in processes of their own; memory is read from
/proc (Linux), so the figures are the server's alone.

  memory     default limits; a fake exo answers with a bomb. The server's RSS at rest, its peak
             (VmHWM) over the request, what the client got, and how often another client's
             /health answered (within 5 s) while it ran.
  deadlines  idle_timeout_s = 5, total_timeout_s = 20: the time until a streaming client gets
             the error chunk, and a non-streaming one its 503, when exo sends only keep-alive
             comments after its first token, or valid tokens for ever.
  flood      `serve` under RLIMIT_NOFILE 1024, 1,100 idle connections held open (timeouts set to
             120 s so that only the connection cap acts), then a client with the token asks 200
             times (a new connection each) and /health 200 times.
  slow       default timeouts: 100 idle, 100 slow-header and 100 slow-body connections; how long
             until the server closed each kind, and the token holder's success meanwhile.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
TOKEN = "bench-token-0123456789abcdef"
OR_KEY = "sk-or-bench-0000000000000000"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ASK = {"model": "llama-3.2-3b", "messages": [{"role": "user", "content": "hi"}]}
EXO_MODEL = "mlx-community/Llama-3.2-3B-Instruct-4bit"


def start_fake(flavor: str, *args: str) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen([sys.executable, "-m", "tests.fakes.serve", flavor, *args], cwd=ROOT,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert proc.stdout is not None
    port = int(proc.stdout.readline().split()[1])
    return proc, f"http://127.0.0.1:{port}"


def config(exo: str, openrouter: str | None, *, exo_extra: str = "", server: str = "") -> str:
    text = f'[[providers]]\nid = "exo"\nkind = "exo"\nbase_urls = ["{exo}"]\n{exo_extra}\n'
    aliases = f'[models."llama-3.2-3b"]\nexo = "{EXO_MODEL}"\n'
    if openrouter:
        text += (f'[[providers]]\nid = "openrouter"\nkind = "openrouter"\nbase_url = "{openrouter}/api/v1"'
                 '\npaid = true\napi_key_env = "OPENROUTER_API_KEY"\n')
        aliases += 'openrouter = "meta-llama/llama-3.2-3b-instruct"\n'
    return text + aliases + (f"\n[server]\n{server}\n" if server else "")


class Serve:
    """`exo-bridge serve` in a child process (optionally limited to 1,024 open files)."""

    def __init__(self, config_text: str, *, limit_files: bool = False):
        self.dir = Path(tempfile.mkdtemp(prefix="hostile-bench-"))
        (self.dir / "config.toml").write_text(config_text)
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        env = {**os.environ, "EXO_BRIDGE_TOKEN": TOKEN, "OPENROUTER_API_KEY": OR_KEY,
               "EXO_BRIDGE_DATA_DIR": str(self.dir / "data")}
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "router", "serve", "--port", str(self.port), "--config",
             str(self.dir / "config.toml")], cwd=ROOT, env=env, stderr=subprocess.PIPE, text=True,
            preexec_fn=_limit_files if limit_files else None)
        assert self.proc.stderr is not None
        line = self.proc.stderr.readline()
        assert "serving" in line, line
        self.log: list[str] = []
        threading.Thread(target=lambda: self.log.extend(self.proc.stderr or ()), daemon=True).start()
        self.url = f"http://127.0.0.1:{self.port}"

    def memory_mib(self) -> tuple[float, float]:
        """(RSS now, peak RSS so far) of the server process."""
        fields = dict(line.split(":", 1) for line in Path(f"/proc/{self.proc.pid}/status").read_text()
                      .splitlines() if ":" in line)
        return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024

    def files(self) -> int:
        return len(os.listdir(f"/proc/{self.proc.pid}/fd"))

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)


def _limit_files() -> None:
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, 1024))


# -- memory ------------------------------------------------------------------------------------
BOMBS = [("gzip bomb as the JSON answer (1 GiB inflated)", "gzip_bomb_json", "0", 1024, False),
         ("gzip bomb in one SSE line after the first token (1 GiB)", "gzip_bomb_sse", "1", 1024, True),
         ("300 MB non-streamed answer", "huge_json", "0", 300, False),
         ("50 MB SSE line after the first token", "huge_line", "1", 50, True)]


async def _health_during(url: str, stop: asyncio.Event) -> tuple[int, int]:
    answered = asked = 0
    async with httpx.AsyncClient(timeout=5) as http:
        while not stop.is_set():
            asked += 1
            with contextlib.suppress(httpx.HTTPError):
                answered += (await http.get(f"{url}/health")).status_code == 200
            await asyncio.sleep(0.2)
    return answered, asked


async def _bomb(serve: Serve, stream: bool) -> str:
    stop = asyncio.Event()
    health = asyncio.create_task(_health_during(serve.url, stop))
    async with httpx.AsyncClient(timeout=120) as http:
        response = await http.post(f"{serve.url}/v1/chat/completions", headers=AUTH,
                                   json={**ASK, "stream": stream})
        await asyncio.sleep(1.0)  # /health goes on a moment after
        stop.set()
    answered, asked = await health
    if stream:
        clean = '"error"' in response.text and "[DONE]" not in response.text
        said = "error chunk" if clean else "a stream without an error chunk"
        detail = next((f"({limit})" for limit in ("max_line_bytes", "max_decompressed_bytes",
                                                  "max_response_bytes") if limit in response.text), "")
    else:
        said = f"{response.status_code} via {response.headers.get('x-exo-bridge-attempts')}"
        detail = ""
    return f"{said} {detail}".strip() + f" | {answered}/{asked}"


def memory() -> None:
    print("\n## Peak server RSS under each bomb (default limits)\n")
    print("| bomb | RSS at rest | peak RSS | what the client got | /health answered |\n|---|---|---|---|---|")
    for label, fault, after, mib, stream in BOMBS:
        exo, exo_url = start_fake("exo", "--fault", fault, "--fault-after-tokens", after,
                                  "--hostile-mib", str(mib))
        router, or_url = start_fake("openrouter", "--key", OR_KEY)
        serve = Serve(config(exo_url, or_url, exo_extra="first_token_timeout_s = 60"))
        try:
            httpx.post(f"{serve.url}/v1/chat/completions", headers=AUTH, timeout=30, json={
                "model": "meta-llama/llama-3.2-3b-instruct", "messages": ASK["messages"]})  # warm
            rest, _ = serve.memory_mib()
            got = asyncio.run(_bomb(serve, stream))
            _, peak = serve.memory_mib()
            print(f"| {label} | {rest:.0f} MiB | {peak:.0f} MiB | {got} |")
        finally:
            serve.stop()
            exo.kill()
            router.kill()


# -- deadlines ---------------------------------------------------------------------------------
async def _time_to_end(serve: Serve, stream: bool) -> tuple[float, str]:
    start = time.perf_counter()
    async with httpx.AsyncClient(timeout=120) as http:
        response = await http.post(f"{serve.url}/v1/chat/completions", headers=AUTH,
                                   json={**ASK, "stream": stream})
    took = time.perf_counter() - start
    if stream:
        return took, "error chunk" if '"error"' in response.text else "ended without an error"
    return took, f"HTTP {response.status_code}"


def deadlines() -> None:
    print("\n## Time to end an endless stream (idle_timeout_s = 5, total_timeout_s = 20)\n")
    print("| exo sends, after its first token | streaming client | non-streaming client |\n|---|---|---|")
    for label, fault in (("only `: keep-alive` comments (every 0.5 s)", "endless_keepalive"),
                         ("valid tokens for ever (every 50 ms)", "endless_tokens")):
        exo, exo_url = start_fake("exo", "--fault", fault, "--keep-alive", "0.5", "--chunk-delay", "0.05")
        serve = Serve(config(exo_url, None, exo_extra="idle_timeout_s = 5\ntotal_timeout_s = 20"))
        try:
            cells = [asyncio.run(_time_to_end(serve, stream)) for stream in (True, False)]
            print(f"| {label} | " + " | ".join(f"{t:.1f} s ({what})" for t, what in cells) + " |")
        finally:
            serve.stop()
            exo.kill()


# -- flood -------------------------------------------------------------------------------------
def _open_idle(port: int, count: int) -> list[socket.socket]:
    held = []
    for n in range(count):
        sock = socket.socket()
        sock.setblocking(False)
        sock.connect_ex(("127.0.0.1", port))
        held.append(sock)
        if n % 50 == 49:
            time.sleep(0.05)
    return held


def _token_holder(url: str, count: int, path: str) -> tuple[int, list[float]]:
    """``count`` requests, each on a new connection (``Connection: close``)."""
    ok, took = 0, []
    with httpx.Client(timeout=10, headers={**AUTH, "Connection": "close"}) as http:
        for _ in range(count):
            start = time.perf_counter()
            try:
                response = (http.post(f"{url}{path}", json=ASK) if path.endswith("completions")
                            else http.get(f"{url}{path}"))
                ok += response.status_code == 200
            except httpx.HTTPError:
                pass
            took.append((time.perf_counter() - start) * 1000)
    return ok, took


def _quantiles(took: list[float]) -> str:
    cuts = statistics.quantiles(took, n=100)
    return f"p50 {cuts[49]:.1f} ms, p99 {cuts[98]:.1f} ms"


def flood() -> None:
    print("\n## 1,100 idle connections to `serve` under RLIMIT_NOFILE 1024\n")
    exo, exo_url = start_fake("exo")
    serve = Serve(config(exo_url, None, server="keepalive_timeout_s = 120\nheader_timeout_s = 120"),
                  limit_files=True)
    try:
        held = _open_idle(serve.port, 1100)
        time.sleep(2.0)
        print(f"- server's open files with the flood held: {serve.files()} (of the 1024 it may open)")
        for path in ("/v1/chat/completions", "/health"):
            ok, took = _token_holder(serve.url, 200, path)
            print(f"- {path}: {ok}/200 answered ({100 * ok / 200:.0f}%), {_quantiles(took)}")
        for sock in held:
            sock.close()
        print("- 'Too many open files' in the server's log:",
              any("Too many open files" in line for line in serve.log))
    finally:
        serve.stop()
        exo.kill()


# -- slow clients ------------------------------------------------------------------------------
async def _slow(port: int, kind: str) -> float:
    start = time.perf_counter()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    if kind == "body":
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer "
                     + TOKEN.encode() + b"\r\nContent-Length: 100000\r\n\r\n{")
    elif kind == "header":
        writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\n")

    async def drip() -> None:
        for i in range(120):
            await asyncio.sleep(1.0)
            writer.write(b" " if kind == "body" else f"X-Slow-{i}: 1\r\n".encode())

    dripping = asyncio.create_task(drip()) if kind != "idle" else None
    try:
        while await reader.read(65536):
            pass
    except ConnectionError:
        pass
    finally:
        if dripping is not None:
            dripping.cancel()
        writer.close()
    return time.perf_counter() - start


async def _slow_all(port: int) -> dict[str, list[float]]:
    kinds = ["idle", "header", "body"]
    found = await asyncio.gather(*(_slow(port, kind) for kind in kinds for _ in range(100)))
    return {kind: found[i * 100:(i + 1) * 100] for i, kind in enumerate(kinds)}


def slow() -> None:
    print("\n## 100 idle, 100 slow-header and 100 slow-body connections (default timeouts)\n")
    exo, exo_url = start_fake("exo")
    serve = Serve(config(exo_url, None))
    try:
        result: dict[str, dict[str, list[float]]] = {}
        worker = threading.Thread(target=lambda: result.update(found=asyncio.run(_slow_all(serve.port))))
        worker.start()
        time.sleep(1.0)
        ok, took = _token_holder(serve.url, 100, "/v1/chat/completions")
        worker.join()
        for kind, times in result["found"].items():
            print(f"- {kind}: closed by the server after {statistics.median(times):.1f} s "
                  f"(median; max {max(times):.1f} s)")
        print(f"- the token holder meanwhile: {ok}/100 answered, {_quantiles(took)}")
    finally:
        serve.stop()
        exo.kill()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--only", default="memory,deadlines,flood,slow")
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, min(hard, 8192)), hard))  # for the flood
    for part in args.only.split(","):
        {"memory": memory, "deadlines": deadlines, "flood": flood, "slow": slow}[part]()


if __name__ == "__main__":
    main()
