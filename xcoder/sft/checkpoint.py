"""Find ms-swift checkpoints and publish the last one at `sft.final_checkpoint`.

`sft.final_checkpoint` is what `rl.model_path` (and through RL, eval) interpolate, so it must be a
stable path to an HF-loadable model directory: a relative symlink to `checkpoint-N`, swapped
atomically, so nothing is copied and a half-written link is never visible.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

_CKPT = re.compile(r"^checkpoint-(\d+)$")


class CheckpointError(RuntimeError):
    """No usable checkpoint where one is expected."""


def is_hf_checkpoint(path: Path) -> bool:
    """A directory transformers can load: config plus weights (single file or sharded)."""
    return (path / "config.json").is_file() and (
        any(path.glob("*.safetensors")) or any(path.glob("pytorch_model*.bin"))
        or (path / "model.safetensors.index.json").is_file()
    )


def checkpoints(checkpoints_dir: str | os.PathLike) -> list[Path]:
    """`checkpoint-N` directories under `checkpoints_dir` (and one level of swift `v*-*` version
    dirs, should add_version be on), ordered by step."""
    root = Path(checkpoints_dir)
    if not root.is_dir():
        return []
    found = [p for p in root.glob("checkpoint-*") if _CKPT.match(p.name) and p.is_dir()]
    found += [p for p in root.glob("*/checkpoint-*") if _CKPT.match(p.name) and p.is_dir()]
    return sorted(found, key=lambda p: (int(_CKPT.match(p.name).group(1)), p.stat().st_mtime))  # type: ignore[union-attr]


def last_checkpoint(checkpoints_dir: str | os.PathLike) -> Path | None:
    """The highest-step HF-loadable checkpoint, or None."""
    usable = [p for p in checkpoints(checkpoints_dir) if is_hf_checkpoint(p)]
    return usable[-1] if usable else None


def link_final(final: str | os.PathLike, target: Path) -> Path:
    """Point `final` at `target` with a relative symlink, replaced atomically."""
    final = Path(final)
    if final.exists() and not final.is_symlink():
        raise CheckpointError(f"{final} exists and is not a symlink; refusing to replace it")
    final.parent.mkdir(parents=True, exist_ok=True)
    rel = os.path.relpath(target.resolve(), final.parent.resolve())
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    if tmp.is_symlink() or tmp.exists():
        tmp.unlink()
    os.symlink(rel, tmp, target_is_directory=True)
    os.replace(tmp, final)
    log.info("final SFT checkpoint: %s -> %s", final, rel)
    return final


def publish_final(checkpoints_dir: str | os.PathLike, final: str | os.PathLike) -> Path:
    """Link the last checkpoint as `final`; error if training left none."""
    last = last_checkpoint(checkpoints_dir)
    if last is None:
        raise CheckpointError(f"no HF-loadable checkpoint-N under {checkpoints_dir} (did `swift sft` save one?)")
    link_final(final, last)
    return last


# ---- one training run per key ------------------------------------------------------------------
RUN_FILE = "xcoder_run.json"  # {"key": ..., "status": "running"|"done"} inside a checkpoints dir


def read_run(checkpoints_dir: str | os.PathLike) -> dict | None:
    """The run record of a checkpoints dir (None if absent or unreadable)."""
    path = Path(checkpoints_dir) / RUN_FILE
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def write_run(checkpoints_dir: str | os.PathLike, key: str, status: str) -> None:
    root = Path(checkpoints_dir)
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f".{RUN_FILE}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps({"key": key, "status": status}, sort_keys=True) + "\n")
    os.replace(tmp, root / RUN_FILE)


def run_state(checkpoints_dir: str | os.PathLike, key: str) -> str:
    """'done' | 'running' (an unfinished run of this key) | 'other' (empty, or another key's run)."""
    info = read_run(checkpoints_dir)
    if info and info.get("key") == key and info.get("status") in ("done", "running"):
        return str(info["status"])
    return "other"


def claim_run(checkpoints_dir: str | os.PathLike, key: str, *, resumable: bool = True) -> tuple[str, Path | None]:
    """Make `checkpoints_dir` hold the run with `key` before training; return (state, moved_aside).

    state 'done': this key's run already finished (publish it, do not train); 'running': an
    unfinished run of this key is there (resume it, if `resumable`); 'fresh': train from scratch.
    Why: checkpoints of a different run (other data/command) must never be resumed or published
    as this run's (a finished checkpoint-4 resumed with a new key trains a silent step 5). They are
    moved aside to `<checkpoints_dir>.superseded-<old key>` (work is kept, never deleted quietly).
    """
    root = Path(checkpoints_dir)
    state = run_state(root, key)
    if state == "done" or (state == "running" and resumable):
        return state, None
    moved = None
    if root.exists() and any(root.iterdir()):
        info = read_run(root) or {}
        old = str(info.get("key") or "unknown")[:12]
        moved = root.with_name(f"{root.name}.superseded-{old}")
        if moved.exists():
            shutil.rmtree(moved)
        os.replace(root, moved)
        why = ("an unfinished run of the same key cannot be resumed" if old == key[:12]
               else f"run key changed ({old} -> {key[:12]}: different data or command)")
        log.warning("%s: moved the previous run in %s to %s; training starts fresh", why, root, moved)
    write_run(root, key, "running")
    return "fresh", moved


def model_identity(model: str | os.PathLike) -> dict:
    """What a model path currently IS, for cache keys: symlinks resolved, config.json hashed, and
    every top-level file's size + mtime, so a checkpoint retrained at the same path (or a `final`
    link moved to another checkpoint) gets a new identity. A non-local name (hub id) is itself."""
    path = Path(model)
    if not path.exists():
        return {"name": str(model)}
    real = path.resolve()
    if real.is_file():
        st = real.stat()
        return {"path": str(real), "size": st.st_size, "mtime_ns": st.st_mtime_ns}
    files = {}
    for f in sorted(real.iterdir()):
        if f.is_file():
            st = f.stat()
            files[f.name] = [st.st_size, st.st_mtime_ns]
    config = real / "config.json"
    config_sha = hashlib.sha256(config.read_bytes()).hexdigest() if config.is_file() else None
    return {"path": str(real), "config_sha256": config_sha, "files": files}


def model_identity_key(model: str | os.PathLike) -> str:
    """Short hash of `model_identity`."""
    blob = json.dumps(model_identity(model), sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
