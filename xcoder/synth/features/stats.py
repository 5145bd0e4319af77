"""Feature-tree statistics (nodes and leaves per depth, top features) as JSON, text and a PNG plot."""

from __future__ import annotations

import collections
import os
from pathlib import Path
from typing import Any

from xcoder.runs import write_json_atomic
from xcoder.synth.features.tree import FeatureTree, upstream_leaf_count


def tree_stats(tree: FeatureTree, top: int = 20) -> dict[str, Any]:
    """Counts a reader needs to judge a tree: size, shape by depth, most frequent features."""
    nodes_per_depth: collections.Counter[int] = collections.Counter()
    leaves_per_depth: collections.Counter[int] = collections.Counter()
    inner_fanout: list[int] = []
    leaves: list[tuple[int, str]] = []
    inner: list[tuple[int, str]] = []
    for path, node in tree.walk():
        depth = len(path) - 1
        nodes_per_depth[depth] += 1
        label = " > ".join(path)
        if node.is_leaf:
            leaves_per_depth[depth] += 1
            leaves.append((node.freq, label))
        else:
            inner_fanout.append(len(node.children))
            inner.append((node.freq, label))
    depth_max = max(nodes_per_depth) if nodes_per_depth else -1
    key = lambda item: (-item[0], item[1])  # noqa: E731
    return {
        "nodes": sum(nodes_per_depth.values()),
        "leaves": sum(leaves_per_depth.values()),
        "upstream_leaf_count": upstream_leaf_count(tree.to_upstream()),
        "roots": len(tree.roots),
        "max_depth": depth_max,
        "nodes_per_depth": [nodes_per_depth[d] for d in range(depth_max + 1)],
        "leaves_per_depth": [leaves_per_depth[d] for d in range(depth_max + 1)],
        "mean_fanout": round(sum(inner_fanout) / len(inner_fanout), 3) if inner_fanout else 0.0,
        "root_freq": {n.name: n.freq for n in tree.roots.values()},
        "top_leaves": [{"feature": label, "freq": f} for f, label in sorted(leaves, key=key)[:top]],
        "top_inner": [{"feature": label, "freq": f} for f, label in sorted(inner, key=key)[:top]],
    }


def format_stats(stats: dict[str, Any], title: str = "feature tree") -> str:
    lines = [f"{title}: {stats['nodes']} nodes, {stats['leaves']} leaves, {stats['roots']} roots, "
             f"max depth {stats['max_depth']}, mean fan-out {stats['mean_fanout']}",
             "depth  nodes  leaves"]
    for d, (n, leaf) in enumerate(zip(stats["nodes_per_depth"], stats["leaves_per_depth"])):
        lines.append(f"{d:>5}  {n:>5}  {leaf:>6}")
    top = "; ".join(f"{t['feature'].split(' > ')[-1]} ({t['freq']})" for t in stats["top_leaves"][:8])
    lines.append("top leaves: " + top)
    return "\n".join(lines)


def plot_stats(stats: dict[str, Any], path: str | os.PathLike, title: str = "feature tree") -> Path:
    """Two panels: nodes/leaves per depth, and the most frequent leaves (Agg backend, no display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(13, 5), gridspec_kw={"width_ratios": [1, 1.6]})
    depths = list(range(len(stats["nodes_per_depth"])))
    ax1.bar([d - 0.2 for d in depths], stats["nodes_per_depth"], width=0.4, label="nodes")
    ax1.bar([d + 0.2 for d in depths], stats["leaves_per_depth"], width=0.4, label="leaves")
    ax1.set_xlabel("depth")
    ax1.set_ylabel("count")
    ax1.set_xticks(depths)
    ax1.legend()
    ax1.set_title(f"{title}: {stats['nodes']} nodes, {stats['leaves']} leaves")
    top = stats["top_leaves"][:20][::-1]
    ax2.barh([t["feature"].split(" > ")[-1][:40] for t in top], [t["freq"] for t in top])
    ax2.set_xlabel("frequency")
    ax2.set_title("most frequent leaves")
    ax2.tick_params(axis="y", labelsize=8)
    fig.tight_layout()
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}{path.suffix}")
    fig.savefig(tmp, dpi=90)
    plt.close(fig)
    os.replace(tmp, path)
    return path


def write_stats(tree: FeatureTree, out_dir: str | os.PathLike, name: str, plot: bool = True) -> dict[str, Any]:
    """`<name>_stats.json` (+ `<name>_stats.png`) in `out_dir`; returns the stats."""
    stats = tree_stats(tree)
    out_dir = Path(out_dir)
    write_json_atomic(out_dir / f"{name}_stats.json", stats)
    if plot:
        plot_stats(stats, out_dir / f"{name}_stats.png", title=name)
    return stats
