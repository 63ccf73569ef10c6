"""Smoke tests of the benchmark functions at tiny sizes (no timing asserts: CI machines vary)."""

import json

import pytest
import torch

from mosaics_edu import bench

TINY = dict(vocab_size=64, block_size=32, n_layer=1, n_head=2, n_embd=16)


def test_peak_tensor_bytes_tells_linear_from_quadratic():
    small = bench.peak_tensor_bytes(lambda: torch.ones(100, 100) @ torch.ones(100, 1))
    big = bench.peak_tensor_bytes(lambda: torch.ones(200, 200) @ torch.ones(200, 1))
    assert 3.5 < big / small < 4.5  # the (n, n) matrix dominates: 4x memory for 2x n
    assert bench.peak_tensor_bytes(lambda: torch.ones(10)) == 40


def test_bench_leaky_small():
    r = bench.bench_leaky(T=64, batch=1, n_head=2, head_size=4, repeats=1, memory_T=(32, 64))
    assert r["max_abs_diff"] < 1e-5 and r["speedup"] > 0
    assert set(r["growth_per_doubling"]) == {"scan", "matrix"}
    assert r["peak_bytes"][64]["matrix"] > r["peak_bytes"][64]["scan"]


def test_bench_train_step_small():
    r = bench.bench_train_step(size=TINY, batch=2, repeats=1)
    assert r["ratio"] > 0 and r["params_gpt"] - r["params_mosaic"] == 32 * 16 - 7 * 2


def test_bench_generation_small():
    r = bench.bench_generation(size=TINY, prompt_len=8, new_tokens=6)
    assert r["mosaic"]["identical"] and r["gpt"]["identical"]


def test_course_sizes_build_three_models_of_each_size():
    assert set(bench.COURSE_SIZES) == {"cpu-tiny", "stories", "regbench-mini", "paper"}
    built = bench.course_models("regbench-mini")
    assert set(built) == {"mosaic", "v2", "gpt"}
    assert built["mosaic"].config.pmem_size == 276  # matched to the GPT, as RegBench-mini trains
    assert bench.course_models("stories")["mosaic"].config.pmem_size == 288  # the story models


def test_bench_course_sizes_small(monkeypatch):
    monkeypatch.setitem(bench.COURSE_SIZES, "tiny", dict(size=TINY, batch=2, T=16, pmem_size=None))
    monkeypatch.setattr(bench, "BENCH_GENERATION_SIZE", TINY)
    r = bench.bench_course_sizes(["tiny"], repeats=1, prompt_len=8, new_tokens=4)
    c = r["tiny"]
    assert c["mosaic_gpt"] > 0 and c["v2_v1_median"] > 0 and c["tokens_per_s"]["gpt"] > 0
    assert set(r["generation"]["s_per_token"]) == {"mosaic", "v2", "gpt"}


def test_main_quick_prints_the_course_sizes(capsys):
    assert bench.main(["--quick", "--only", "course"]) == 0
    out = capsys.readouterr().out
    assert "course size cpu-tiny" in out and "mosaic / GPT" in out and "<= 1.15" in out


def test_bench_throughput_runs_on_cpu_with_bf16():
    r = bench.bench_throughput(preset="cpu-tiny", device="cpu", bf16=True, compile=False,
                               batch=1, steps=1, warmup=0, **TINY)
    assert r["mosaic"]["tokens_per_s"] > 0 and r["ratio"] > 0


def test_main_quick_prints_a_table(capsys):
    assert bench.main(["--quick", "--only", "leaky,generate"]) == 0
    out = capsys.readouterr().out
    assert "leaky scan vs matrix" in out and "generation mosaic" in out


def test_main_writes_json_and_refuses_cuda_without_a_gpu(tmp_path, capsys):
    path = tmp_path / "bench.json"
    assert bench.main(["--quick", "--only", "throughput", "--bf16", "--json", str(path)]) == 0
    report = json.loads(path.read_text())
    r = report["throughput"]
    assert r["bf16"] and r["ratio"] == r["gpt"]["tokens_per_s"] / r["mosaic"]["tokens_per_s"]
    if not torch.cuda.is_available():
        with pytest.raises(SystemExit):
            bench.main(["--device", "cuda", "--bf16", "--compile"])
        assert "no CUDA GPU is visible" in capsys.readouterr().err
