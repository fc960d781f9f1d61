"""The cluster from the command line: ``status`` (text and ``--json``'s ``cluster``) and
``exo-bridge exo warm | reload | unload``, against the simulated cluster."""

from __future__ import annotations

import json
import subprocess

import pytest

from router.cli.main import main
from tests.conftest import subprocess_env
from tests.fakes.exo_cluster import BIG, LLAMA, QWEN
from tests.fakes.provider import FakeProvider
from tests.test_cli import EXE


@pytest.fixture
def cfg(exo_cluster: FakeProvider, tmp_path) -> str:
    path = tmp_path / "config.toml"
    path.write_text(f'[[providers]]\nid = "exo"\nkind = "exo"\nname = "Exo Local"\n'
                    f'base_urls = ["{exo_cluster.origin}"]\n\n[models."qwen3-8b"]\nexo = "{QWEN}"\n')
    return str(path)


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_status_json_has_the_cluster(capsys, cfg, exo_cluster):
    cluster = exo_cluster.cluster
    cluster.download_speed = 1  # stays downloading
    cluster.place({"model_id": QWEN})
    for _ in range(3):  # created, idle, its download started
        cluster.step(0.01)
    code, out, _ = run(capsys, "status", "--json", "--config", cfg)
    assert code == 0
    seen = json.loads(out)["cluster"]
    assert seen["provider"] == "exo"
    mini, book = seen["nodes"]
    assert (mini["name"], mini["ram_total_bytes"], mini["models"]) == ("Mac mini", 16 << 30, [LLAMA, QWEN])
    assert 0 < mini["ram_used_bytes"] < mini["ram_total_bytes"] and book["models"] == []
    llama = next(m for m in seen["models"] if m["model"] == LLAMA)
    assert (llama["name"], llama["ready"], llama["state"]) == ("Llama 3.2 3B", True, "ready")
    [download] = seen["downloads"]
    assert (download["model"], download["node_name"], download["state"]) == (QWEN, "Mac mini", "ongoing")
    assert download["speed_bytes_per_s"] == 1 and download["eta_s"] > 1e6
    assert seen["problems"] == [] and seen["gone"] == []


def test_status_text_names_a_failing_model_and_how_to_fix_it(capsys, cfg, exo_cluster):
    cluster = exo_cluster.cluster
    cluster.fail_load, cluster.retry_s = "weights corrupt", 30.0
    mini = next(n for n in cluster.nodes.values() if n.name == "Mac mini")
    mini.files.add(QWEN)
    cluster.place({"model_id": QWEN})
    cluster.step(0.1)
    cluster.step(0.1)
    code, out, _ = run(capsys, "status", "--config", cfg)
    assert code == 0
    assert "Exo Local cluster:" in out
    assert "  Mac mini · " in out and "Llama 3.2 3B (ready)" in out
    assert ("  ! Qwen3 8B on Mac mini: runner failed: weights corrupt; [METAL] Command buffer "
            "execution failed: GPU Timeout — `exo-bridge exo reload mlx-community/Qwen3-8B-4bit` "
            "(or `exo unload`)") in out


def test_status_json_cluster_is_null_without_a_cluster(capsys, make_config, keys_in_env, exo):
    exo.stop()
    _, path = make_config()
    code, out, _ = run(capsys, "status", "--json", "--config", str(path))
    assert code == 0 and json.loads(out)["cluster"] is None


def test_exo_warm_waits_until_ready_then_unload(cfg, exo_cluster):
    env = subprocess_env()
    done = subprocess.run([EXE, "exo", "warm", "qwen3-8b", "--config", cfg], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Qwen3 8B is ready on exo\n"
    assert "Qwen3 8B: placing" in done.stderr
    assert QWEN in exo_cluster.cluster.ready_models()
    done = subprocess.run([EXE, "exo", "unload", "qwen3-8b", "--config", cfg], env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout == "unloaded qwen3-8b\n"
    assert QWEN not in {i.model for i in exo_cluster.cluster.instances.values()}


def test_exo_warm_of_a_model_that_cannot_fit_says_why(capsys, cfg, exo_cluster):
    code, out, err = run(capsys, "exo", "warm", BIG, "--config", cfg)
    assert code == 3 and out == ""
    assert err.startswith("exo-bridge: Llama 3.3 70B cannot be loaded: No cycles found with "
                          "sufficient memory: it needs 39.7 GB; free: Mac mini")
    assert exo_cluster.cluster.placed == []


def test_exo_unload_of_a_model_not_loaded(capsys, cfg):
    code, _, err = run(capsys, "exo", "unload", "qwen3-8b", "--config", cfg)
    assert code == 3 and err == "exo-bridge: Qwen3 8B is not loaded on Exo Local\n"


def test_exo_reload_no_wait(capsys, cfg, exo_cluster):
    code, out, _ = run(capsys, "exo", "reload", "qwen3-8b", "--no-wait", "--config", cfg)
    assert code == 0 and out.startswith("Qwen3 8B: placing")
    assert len(exo_cluster.cluster.placed) == 1
