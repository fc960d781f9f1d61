"""The streaming floor (bench/floor_stream.py) joins an answer the way exo-bridge does, wherever
the network splits the stream: otherwise issue 19's ratios would compare unequal work."""

from __future__ import annotations

import itertools
import json

from hypothesis import given
from hypothesis import strategies as st

from bench.floor_stream import _Answer


def _stream(words: list[str]) -> bytes:
    def chunk(delta: dict[str, str], finish: str | None) -> bytes:
        body = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 7,
                "model": "fake-model", "choices": [{"index": 0, "delta": delta,
                                                    "finish_reason": finish}]}
        return b"data: " + json.dumps(body).encode() + b"\n\n"

    usage = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 7,
             "model": "fake-model", "choices": [],
             "usage": {"prompt_tokens": 3, "completion_tokens": len(words), "total_tokens": 3 + len(words)}}
    return (b"".join(chunk({"content": word}, None) for word in words) + chunk({}, "stop")
            + b"data: " + json.dumps(usage).encode() + b"\n\ndata: [DONE]\n\n")


@given(words=st.lists(st.text(min_size=1, max_size=8), min_size=1, max_size=20),
       cuts=st.lists(st.integers(min_value=0, max_value=4000), max_size=12))
def test_the_answer_is_the_same_however_the_stream_is_split(words: list[str], cuts: list[int]) -> None:
    raw = _stream(words)
    answer = _Answer()
    edges = [0, *sorted(cut % (len(raw) + 1) for cut in cuts), len(raw)]
    for start, end in itertools.pairwise(edges):
        answer.feed(raw[start:end])
    body = json.loads(answer.body())
    assert body["choices"][0]["message"]["content"] == "".join(words)
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"]["completion_tokens"] == len(words)
    assert (body["id"], body["model"], body["object"]) == ("chatcmpl-1", "fake-model",
                                                           "chat.completion")
