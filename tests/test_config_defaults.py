"""Settings dataclasses hold no defaults of their own: the YAML config is the one place (issue 16,
item 5). A knob added to one side only, or a default written back into a dataclass, fails here."""

from __future__ import annotations

import dataclasses

from omegaconf import OmegaConf

from xcoder.config import compose
from xcoder.judge.server import ServerSettings
from xcoder.rl.reward import RewardSettings

REWARD_ONLY_IN_YAML = {"backend", "num_workers"}  # launcher knobs, not the reward function's


def _field_defaults(cls: type) -> dict[str, object]:
    return {f.name: f.default for f in dataclasses.fields(cls)
            if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING}


def test_settings_dataclasses_declare_no_defaults() -> None:
    assert _field_defaults(ServerSettings) == {}
    assert _field_defaults(RewardSettings) == {}


def test_server_settings_are_exactly_the_judge_server_block() -> None:
    block = OmegaConf.to_container(compose().judge.server, resolve=True)
    assert {f.name for f in dataclasses.fields(ServerSettings)} == set(block)
    assert dataclasses.asdict(ServerSettings.defaults()) == block
    assert ServerSettings.defaults(port=0).port == 0


def test_reward_settings_are_exactly_the_rl_reward_block() -> None:
    reward = OmegaConf.to_container(compose().rl.reward, resolve=True)
    yaml_keys = {f"judge_{k}" for k in reward.pop("judge")} | set(reward) - REWARD_ONLY_IN_YAML
    assert {f.name for f in dataclasses.fields(RewardSettings)} == yaml_keys
    settings = RewardSettings.defaults()
    for key in set(reward) - REWARD_ONLY_IN_YAML:
        assert getattr(settings, key) == reward[key], key
    assert RewardSettings.from_mapping({"k": 3}) == dataclasses.replace(settings, k=3)
