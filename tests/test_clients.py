"""The README's client recipes, run with the real clients from PyPI: LangChain (langchain-openai,
chat completions and the Responses API) and the `llm` command (chat and responses models)."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from langchain_openai import ChatOpenAI

from tests.endpoint_fixtures import TOKEN, endpoint  # noqa: F401

pytestmark = pytest.mark.usefixtures("keys_in_env")


@pytest.mark.parametrize("responses_api", [False, True])
async def test_langchain(endpoint, exo, responses_api):  # noqa: F811
    chat = ChatOpenAI(base_url=endpoint.url, api_key=TOKEN, model="llama-3.2-3b", max_retries=0,
                      use_responses_api=responses_api)
    answer = await chat.ainvoke("hi there")
    assert answer.text.strip() == "Hello from the fake provider ."
    assert answer.response_metadata["id"].startswith("resp_" if responses_api else "chatcmpl-")
    streamed = "".join([chunk.text async for chunk in chat.astream("hi there")])
    assert streamed.strip() == "Hello from the fake provider ."
    assert len(exo.chat_requests) == 2


def llm_config(directory: Path, url: str) -> dict[str, str]:
    """The README's `llm` recipe, in a private LLM_USER_PATH."""
    directory.mkdir()
    (directory / "extra-openai-models.yaml").write_text(
        f"- model_id: exo\n  model_name: llama-3.2-3b\n  api_base: {url}\n  api_key_name: exo-bridge\n"
        f"- model_id: exo-responses\n  model_name: llama-3.2-3b\n  api_base: {url}\n"
        "  api_key_name: exo-bridge\n  responses: true\n")
    (directory / "keys.json").write_text(json.dumps({"exo-bridge": TOKEN}))
    return {"LLM_USER_PATH": str(directory), "PATH": str(Path(sys.executable).parent)}


@pytest.mark.parametrize("model", ["exo", "exo-responses"])
async def test_llm_command(endpoint, exo, tmp_path, model):  # noqa: F811
    env = llm_config(tmp_path / "llm", endpoint.url)
    exe = str(Path(sys.executable).with_name("llm"))
    for stream in ([], ["--no-stream"]):
        proc = await asyncio.create_subprocess_exec(
            exe, "-m", model, *stream, "hi there", env=env,
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        out, err = await asyncio.wait_for(proc.communicate(), 60)
        assert proc.returncode == 0, err.decode()
        assert out.decode().strip() == "Hello from the fake provider ."
    assert len(exo.chat_requests) == 2
    proc = await asyncio.create_subprocess_exec(exe, "logs", "-n", "2", "--json", env=env,
                                                stdout=asyncio.subprocess.PIPE)
    logged = json.loads((await asyncio.wait_for(proc.communicate(), 60))[0])
    assert [r["input_tokens"] > 0 and r["output_tokens"] == 6 for r in logged] == [True, True]
    api = "resp_" if model == "exo-responses" else "chatcmpl-"
    assert all(json.dumps(r["response_json"]).count(f'"id": "{api}') for r in logged)
