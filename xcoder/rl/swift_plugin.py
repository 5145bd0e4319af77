"""ms-swift GRPO reward plugin: `swift rlhf --external_plugins <this file> --reward_funcs xcoder_code`.

swift calls the ORM with all completions of a step plus every extra dataset column as a batched
kwarg (`ground_truth`, `task_id`), and `trainer_state` (its epoch picks the test subset). The whole
step is graded through one `CodeReward.score_batch` (one `Judge.run_many`), keyed by response id.

Settings come from the env var `XCODER_RL_REWARD_SETTINGS` (JSON of `RewardSettings`, written by
`xcoder rl`); when `XCODER_RL_REWARD_LOG` names a file, one JSON line per graded response
(step, id, task, score, verdict counts) is appended there so runs can be audited.
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import os
import threading
from typing import Any

from swift.rewards import ORM
from swift.rewards.orm import orms

from xcoder.rl.reward import CodeReward, RewardItem, RewardSettings

log = logging.getLogger(__name__)
SETTINGS_ENV = "XCODER_RL_REWARD_SETTINGS"
LOG_ENV = "XCODER_RL_REWARD_LOG"


class XCoderCodeReward(ORM):
    """Judge-backed partial-credit code reward (paper-recipe §9)."""

    def __init__(self, args: Any = None, **kwargs: Any) -> None:
        super().__init__(args, **kwargs)
        settings = RewardSettings.from_mapping(json.loads(os.environ.get(SETTINGS_ENV) or "{}"))
        self.reward = CodeReward(settings)
        self.log_path = os.environ.get(LOG_ENV) or None
        self._calls = itertools.count()
        self._lock = threading.Lock()

    def __call__(self, completions: list[str], ground_truth: list[str] | None = None, task_id: list[str] | None = None,
                 trainer_state: Any = None, **kwargs: Any) -> list[float]:
        if ground_truth is None:
            raise KeyError("xcoder_code reward needs a 'ground_truth' dataset column (xcoder rl writes it)")
        call = next(self._calls)
        step = int(getattr(trainer_state, "global_step", call) or 0) if trainer_state is not None else call
        epoch = int(math.floor(float(getattr(trainer_state, "epoch", 0) or 0))) if trainer_state is not None else 0
        ids = [f"{call}-{i}" for i in range(len(completions))]
        items = [
            RewardItem(rid, text, gt, {"task_id": (task_id[i] if task_id else None)}, epoch)
            for i, (rid, text, gt) in enumerate(zip(ids, completions, ground_truth, strict=True))
        ]
        results = self.reward.score_batch(items)
        if self.log_path:
            with self._lock, open(self.log_path, "a", encoding="utf-8") as fh:
                for rid, it in zip(ids, items):
                    r = results[rid]
                    fh.write(json.dumps({"step": step, "call": call, "id": rid, "task_id": it.extra_info["task_id"],
                                         "score": r.score, "passed": r.passed, "graded": r.graded,
                                         "format_failure": r.format_failure, "judge_error": r.judge_error,
                                         "verdicts": r.verdicts}) + "\n")
        scores = [results[rid].score for rid in ids]
        log.info("xcoder_code reward: step %s, %d responses, mean %.3f, stats %s", step, len(scores),
                 sum(scores) / max(1, len(scores)), dict(self.reward.stats))
        return scores


orms["xcoder_code"] = XCoderCodeReward
