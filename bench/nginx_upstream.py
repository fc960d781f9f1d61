"""A fast fake OpenRouter for throughput figures: nginx (Debian's `nginx`) answering canned
bodies, so the harness is not the bottleneck on a 2-core machine.

    /stream/api/v1/chat/completions -> an SSE answer (5 content chunks, usage with cost, [DONE])
    /json/api/v1/chat/completions   -> the same answer as one chat.completion JSON
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

WORDS = ["Hello ", "from ", "the ", "fast ", "fake."]


def _sse_body() -> str:
    base = {"id": "chatcmpl-nginx", "object": "chat.completion.chunk", "created": 1,
            "model": "meta-llama/llama-3.2-3b-instruct"}
    events = [{**base, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""},
                                    "finish_reason": None}]}]
    events += [{**base, "choices": [{"index": 0, "delta": {"content": w}, "finish_reason": None}]}
               for w in WORDS]
    events.append({**base, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
    events.append({**base, "choices": [], "usage": {"prompt_tokens": 8, "completion_tokens": 5,
                                                    "total_tokens": 13, "cost": 0.0000018}})
    return "".join(f"data: {json.dumps(e)}\n\n" for e in events) + "data: [DONE]\n\n"


def _json_body() -> str:
    return json.dumps({"id": "chatcmpl-nginx", "object": "chat.completion", "created": 1,
                       "model": "meta-llama/llama-3.2-3b-instruct",
                       "choices": [{"index": 0, "message": {"role": "assistant",
                                                            "content": "".join(WORDS)},
                                    "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": 8, "completion_tokens": 5, "total_tokens": 13,
                                 "cost": 0.0000018}})


def _models_body() -> str:
    return json.dumps({"data": [{"id": "meta-llama/llama-3.2-3b-instruct",
                                 "pricing": {"prompt": "0.0000001", "completion": "0.0000002"}}]})


def _nginx_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n") + "'"


class NginxUpstream:
    def __init__(self) -> None:
        exe = shutil.which("nginx") or "/usr/sbin/nginx"
        if not Path(exe).exists():
            raise FileNotFoundError("nginx is not installed (apt-get install nginx-light)")
        self.dir = Path(tempfile.mkdtemp(prefix="exo-bridge-nginx-"))
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        (self.dir / "logs").mkdir()
        (self.dir / "nginx.conf").write_text(f"""
worker_processes 1;
daemon off;
error_log {self.dir}/logs/error.log crit;
pid {self.dir}/nginx.pid;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {self.dir}/body;
    proxy_temp_path {self.dir}/proxy;
    fastcgi_temp_path {self.dir}/fastcgi;
    uwsgi_temp_path {self.dir}/uwsgi;
    scgi_temp_path {self.dir}/scgi;
    keepalive_requests 1000000;
    server {{
        listen 127.0.0.1:{self.port};
        location = /stream/api/v1/chat/completions {{
            default_type text/event-stream;
            return 200 {_nginx_string(_sse_body())};
        }}
        location = /json/api/v1/chat/completions {{
            default_type application/json;
            return 200 {_nginx_string(_json_body())};
        }}
        location / {{ default_type application/json; return 200 {_nginx_string(_models_body())}; }}
    }}
}}
""")
        self.proc = subprocess.Popen([exe, "-p", str(self.dir), "-c", str(self.dir / "nginx.conf")],
                                     stderr=subprocess.DEVNULL)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.1).close()
                break
            except OSError:
                time.sleep(0.02)

    @property
    def stream_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/stream/api/v1"

    @property
    def json_base(self) -> str:
        return f"http://127.0.0.1:{self.port}/json/api/v1"

    def close(self) -> None:
        self.proc.terminate()
        self.proc.wait(5)
        shutil.rmtree(self.dir, ignore_errors=True)
