"""SynthSmith feature trees: extract features from seed code, merge, evolve, and sample subtrees.

`tree` (model + upstream layout), `merge`, `schema` (LLM answer checks), `extract`, `evolve`,
`sample`, `stats`, `seed` (the shipped taxonomy) and `stages` (the `xcoder synth` stage functions).
"""

from xcoder.synth.features.sample import SamplerParams, sample_subtrees
from xcoder.synth.features.tree import FeatureTree, Node, from_upstream, to_upstream, upstream_leaf_count

__all__ = ["FeatureTree", "Node", "SamplerParams", "from_upstream", "sample_subtrees", "to_upstream",
           "upstream_leaf_count"]
