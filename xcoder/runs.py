"""The shared core of a training run: JSON files written atomically, content hashes, model identity,
checkpoint discovery and hand-off, one run per key, the typed run `Manifest`, and the lifecycle
every training stage follows (manifest check -> claim the run -> launch -> publish final -> manifest).

Why one module: SFT, RL (verl and ms-swift) and eval all key their work on "what the inputs ARE" and
hand a checkpoint to the next stage through a stable path. Written once here, the stages cannot
drift apart (e.g. one of them resuming another key's checkpoints), and no stage package has to import
another to reuse it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

_CKPT = re.compile(r"^checkpoint-(\d+)$")
RUN_FILE = "xcoder_run.json"  # {"key": ..., "status": "running"|"done"} inside a checkpoints dir


class CheckpointError(RuntimeError):
    """No usable checkpoint where one is expected."""


# ---- files --------------------------------------------------------------------------------------
def write_json_atomic(path: str | os.PathLike, obj: Any, *, sort_keys: bool = False) -> Path:
    """Write JSON through a temp file + rename, so a reader (or a crash) never sees half a file.
    Keys keep their order unless `sort_keys` (manifests of runs sort them; synth's keep stage order)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=sort_keys, ensure_ascii=False, default=str) + "\n",
                   encoding="utf-8")
    os.replace(tmp, path)
    return path


def read_json(path: str | os.PathLike) -> dict[str, Any]:
    """A JSON object file, or {} when it is missing, unreadable or not an object."""
    try:
        obj = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError):
        return {}
    return obj if isinstance(obj, dict) else {}


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    """Content hash of a local input: a cache key must not change when a file is rewritten with the
    same bytes (a rerun of synth export), nor survive a same-size edit (mtime games)."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def short_hash(obj: Any) -> str:
    """16 hex digits of the SHA-256 of `obj` as canonical JSON: the run keys' format."""
    return hashlib.sha256(json.dumps(obj, sort_keys=True).encode()).hexdigest()[:16]


def model_identity(model: str | os.PathLike) -> dict[str, Any]:
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


# ---- checkpoints --------------------------------------------------------------------------------
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
    """Point `final` at `target` with a relative symlink, replaced atomically: the next stage
    interpolates `final`, so it must be a stable path that is never half-written."""
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
    log.info("final checkpoint: %s -> %s", final, rel)
    return final


def publish_final(checkpoints_dir: str | os.PathLike, final: str | os.PathLike) -> Path:
    """Link the last checkpoint as `final`; error if training left none."""
    last = last_checkpoint(checkpoints_dir)
    if last is None:
        raise CheckpointError(f"no HF-loadable checkpoint-N under {checkpoints_dir} (did the trainer save one?)")
    link_final(final, last)
    return last


# ---- one training run per key -------------------------------------------------------------------
def read_run(checkpoints_dir: str | os.PathLike) -> dict[str, Any] | None:
    """The run record of a checkpoints dir (None if absent or unreadable)."""
    return read_json(Path(checkpoints_dir) / RUN_FILE) or None


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


# ---- the run manifest ---------------------------------------------------------------------------
@dataclasses.dataclass
class Manifest:
    """`<stage output_dir>/manifest.json` of a finished training run: what the report reads and what
    a rerun compares its key with. Unknown keys of an older file are ignored on read."""

    key: str
    command: str
    status: str = "done"
    checkpoint: str | None = None  # the trainer's last checkpoint
    final_checkpoint: str | None = None  # the stable path the next stage interpolates
    data: dict[str, Any] = dataclasses.field(default_factory=dict)  # stage-specific data facts
    model: dict[str, Any] | None = None  # start model identity (model_identity)
    steps: int | None = None
    rewards: str | None = None  # RL: the reward log of this run
    config: dict[str, Any] | None = None  # the stage's resolved config, secrets masked

    def write(self, path: str | os.PathLike) -> Path:
        return write_json_atomic(path, {k: v for k, v in dataclasses.asdict(self).items()
                                        if v is not None or k in ("checkpoint", "final_checkpoint", "steps")},
                                 sort_keys=True)

    @classmethod
    def read(cls, path: str | os.PathLike) -> Manifest | None:
        """The manifest at `path`, or None when it is missing or not a manifest."""
        raw = read_json(path)
        if not isinstance(raw.get("key"), str):
            return None
        names = {f.name for f in dataclasses.fields(cls)}
        fields = {k: v for k, v in raw.items() if k in names}
        fields.setdefault("command", "")
        if not isinstance(fields.get("data"), dict):
            fields["data"] = {}
        return cls(**fields)


# ---- the lifecycle ------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class TrainRun:
    """One keyed training run of a stage (`what` names it in logs: "SFT", "RL")."""

    what: str
    key: str
    checkpoints_dir: Path
    manifest_path: Path
    final: Path | None  # None: nothing is published at a stable path (its presence is not checked)
    resumable: bool
    primary: bool = True  # rank 0 owns the checkpoints dir and the manifest; other nodes only train
    done_because: str = "config and data"

    def finished(self) -> bool:
        """The manifest records this key as done and its final checkpoint is loadable."""
        manifest = Manifest.read(self.manifest_path)
        return (manifest is not None and manifest.status == "done" and manifest.key == self.key
                and (self.final is None or is_hf_checkpoint(self.final)))

    def claim(self) -> tuple[str, Path | None]:
        if self.primary:
            return claim_run(self.checkpoints_dir, self.key, resumable=self.resumable)
        return run_state(self.checkpoints_dir, self.key), None  # the same decision rank 0 makes


class StepFailed(RuntimeError):
    """A launched process failed; the stage exits with its return code."""

    def __init__(self, message: str, returncode: int) -> None:
        super().__init__(message)
        self.returncode = returncode


def train_once(run: TrainRun, launch: Callable[[str, Path | None], int], publish: Callable[[], Manifest]) -> int:
    """Manifest check -> claim the run -> `launch(state, moved_aside)` -> mark done -> `publish()` ->
    manifest. A finished key is never retrained; a run that finished without its manifest (killed
    while publishing) is published without training. Returns a process exit code."""
    if run.finished():
        where = f": {run.final}" if run.final is not None else ""
        log.info("%s already done for this %s (key %s)%s; delete %s to retrain",
                 run.what, run.done_because, run.key, where, run.manifest_path)
        if run.final is not None:
            print(f"final checkpoint: {run.final}")
        return 0
    state, moved = run.claim()
    try:
        if state == "done":
            log.info("%s run %s already finished in %s; publishing it without training",
                     run.what, run.key, run.checkpoints_dir)
        else:
            rc = launch(state, moved)
            if rc != 0 or not run.primary:
                return rc
            write_run(run.checkpoints_dir, run.key, "done")
        if not run.primary:
            return 0
        publish().write(run.manifest_path)
    except StepFailed as exc:
        log.error("%s", exc)
        return exc.returncode
    return 0
