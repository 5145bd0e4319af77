"""Feature-tree tools outside the pipeline: statistics of a tree, and a sampler benchmark.

    python -m xcoder.synth.features stats TREE.json [--out DIR]      # stats JSON + PNG, printed summary
    python -m xcoder.synth.features bench [TREE.json] [-n 20000]      # sampler draws/s (and vs. T, shapes)
    python -m xcoder.synth.features merge A.json B.json ... -o OUT.json  # union, frequencies added
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Sequence
from pathlib import Path

from xcoder.synth.features.merge import merge_trees
from xcoder.synth.features.sample import SamplerParams, sample_subtrees
from xcoder.synth.features.seed import SEED_TREE
from xcoder.synth.features.stats import format_stats, tree_stats, write_stats
from xcoder.synth.features.tree import FeatureTree


def _stats(args: argparse.Namespace) -> int:
    tree = FeatureTree.load(args.tree)
    if args.out:
        stats = write_stats(tree, args.out, Path(args.tree).stem, plot=True)
        print(f"wrote {args.out}/{Path(args.tree).stem}_stats.json and .png")
    else:
        stats = tree_stats(tree)
    print(format_stats(stats, title=str(args.tree)))
    return 0


def _bench(args: argparse.Namespace) -> int:
    tree = FeatureTree.load(args.tree)
    print(f"tree {args.tree}: {tree.num_nodes()} nodes, {tree.num_leaves()} leaves")
    print("| shape | filter | subtrees | draws | CPU s | subtrees per CPU s | vs. first row | mean leaves |")
    print("|---|---|---|---|---|---|---|---|")
    base = None
    cases = [
        ("[5,2,1,1] T=10", "none", SamplerParams(level_counts=[5, 2, 1, 1], temperature=10.0)),
        ("[5,2,1,1] T=1", "none", SamplerParams(level_counts=[5, 2, 1, 1], temperature=1.0)),
        ("[3,3] repeat, leaf_k=2", "none", SamplerParams(level_counts=[3, 3], repeat_last=True, leaf_k=2)),
        ("[5,2,2,1] T=10", "leaves 12..15", SamplerParams(level_counts=[5, 2, 2, 1], min_leaves=12, max_leaves=15)),
    ]
    for name, filt, params in cases:
        start = time.process_time()  # CPU time: the machine may be shared
        records, counts = sample_subtrees(tree, args.n, params)
        secs = time.process_time() - start
        mean = sum(r.leaf_count for r in records) / max(1, len(records))
        rate = len(records) / secs
        base = base or rate  # the machine is shared: compare rows of one run, not runs
        print(f"| {name} | {filt} | {len(records)} | {counts['draws']} | {secs:.2f} | {rate:,.0f} | {rate / base:.2f} "
              f"| {mean:.1f} |")
    return 0


def _merge(args: argparse.Namespace) -> int:
    merged = merge_trees((FeatureTree.load(p) for p in args.trees), meta={"merged_from": list(args.trees)})
    merged.save(args.out)
    print(f"{args.out}: {merged.num_nodes()} nodes, {merged.num_leaves()} leaves")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m xcoder.synth.features", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("stats", help="statistics (+ PNG with --out) of a feature tree")
    p.add_argument("tree")
    p.add_argument("--out", default=None, help="directory for <tree>_stats.json / .png")
    p.set_defaults(fn=_stats)
    b = sub.add_parser("bench", help="sampler throughput")
    b.add_argument("tree", nargs="?", default=str(SEED_TREE))
    b.add_argument("-n", type=int, default=20000, help="subtrees per case")
    b.set_defaults(fn=_bench)
    m = sub.add_parser("merge", help="merge trees (frequency or upstream form) into one")
    m.add_argument("trees", nargs="+")
    m.add_argument("-o", "--out", required=True)
    m.set_defaults(fn=_merge)
    args = parser.parse_args(argv)
    return args.fn(args)


if __name__ == "__main__":
    raise SystemExit(main())
