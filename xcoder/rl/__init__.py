"""GRPO with verl or ms-swift, the sandbox judge as reward.

Modules: `reward` (the reward: verl entry `compute_score`, batch scorer `CodeReward`), `extract`
(which code is graded), `ground_truth` (tests from a row, per-(task, epoch) subsets), `data` (RLRow validation,
released-data
converter, sandbox_fusion view), `verl_cmd` (verl / merger command lines), `stage` (`xcoder rl`),
`swift_plugin` (ms-swift ORM), `bench` (reward throughput vs upstream), `verl_cpu` (stock verl on a
CPU-only machine: platform, HF-generate rollout, guarded patches), `curve` (per-step rewards of a run).
"""
