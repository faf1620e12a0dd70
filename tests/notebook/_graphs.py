"""Hand-made graph dicts in the ``Definition.to_graph()`` shape (DESIGN.md), for layout and widget tests."""

from __future__ import annotations

import random


def node(digest: str, name: str, kind: str = "exec", **attrs: str) -> dict:
    return {"id": digest, "kind": kind, "name": name, "location": "cell-1:2", "attrs": attrs}


def graph(nodes: list[dict], edges: list[tuple[str, str]], head: str | None = None) -> dict:
    """``edges`` as (input, consumer); each edge's index is its position among the consumer's inputs."""
    seen: dict[str, int] = {}
    out = []
    for source, target in edges:
        out.append({"source": source, "target": target, "index": seen.get(target, 0)})
        seen[target] = seen.get(target, 0) + 1
    return {"version": 1, "head": head if head is not None else (nodes[-1]["id"] if nodes else None),
            "nodes": nodes, "edges": out}


def chain(length: int, prefix: str = "c") -> dict:
    """image → run → run → … (``length`` vertices in all)."""
    nodes = [node(f"sha256:{prefix}0", "image busybox:latest", "image")]
    nodes += [node(f"sha256:{prefix}{i}", f"sh -c 'echo {i}'") for i in range(1, length)]
    return graph(nodes, [(f"sha256:{prefix}{i - 1}", f"sha256:{prefix}{i}") for i in range(1, length)])


def two_branches() -> dict:
    """The tutorial's shape: a base, two branches of two steps, a merge, one step after it."""
    n = [node("sha256:base", "image python:3.11", "image"),
         node("sha256:a1", "[envd] pip install numpy"), node("sha256:a2", "[envd] pip install pandas"),
         node("sha256:b1", "[envd] apt-get install git"), node("sha256:b2", "copy /src → /app", "file"),
         node("sha256:ctx", "local context", "local"),
         node("sha256:m", "merge", "merge"), node("sha256:t", "sh -c 'python -V'")]
    e = [("sha256:base", "sha256:a1"), ("sha256:a1", "sha256:a2"), ("sha256:base", "sha256:b1"),
         ("sha256:b1", "sha256:b2"), ("sha256:ctx", "sha256:b2"), ("sha256:a2", "sha256:m"),
         ("sha256:b2", "sha256:m"), ("sha256:m", "sha256:t")]
    return graph(n, e)


def random_dag(count: int, seed: int = 0) -> dict:
    """A build-shaped DAG: mostly chains off recent vertices, some merges and copies across branches."""
    rng = random.Random(seed)
    nodes = [node(f"sha256:{i:06x}", f"step {i}: sh -c 'make target-{i}'") for i in range(count)]
    nodes[0] = node("sha256:000000", "image debian:bookworm", "image")
    edges = []
    for i in range(1, count):
        edges.append((nodes[max(0, i - 1 - int(rng.expovariate(0.3)))]["id"], nodes[i]["id"]))
        if rng.random() < 0.15 and i > 2:
            j = rng.randrange(max(0, i - 40), i - 1)
            edges.append((nodes[j]["id"], nodes[i]["id"]))
    return graph(nodes, edges)


def vertex(digest: str, name: str, state: str, index: int = 0, **fields) -> dict:
    """A ``VertexState.to_dict()``-shaped dict (DESIGN.md "Events as data")."""
    base = {"digest": digest, "index": index, "name": name, "inputs": [], "state": state, "started": None,
            "completed": None, "duration": None, "cached": state == "cached", "error": "", "log_tail": [],
            "log_bytes": 0, "statuses": []}
    base.update(fields)
    return base


def two_branches_model(done: bool = True) -> dict:
    """A ``BuildModel.to_dict()`` for ``two_branches()``: one branch cached, the other failing."""
    vertices = [
        vertex("sha256:base", "image python:3.11", "cached", 1),
        vertex("sha256:a1", "[envd] pip install numpy", "cached", 2),
        vertex("sha256:a2", "[envd] pip install pandas", "done", 3, duration=4.25,
               log_tail=["Collecting pandas", "Successfully installed pandas-2.2.3"]),
        vertex("sha256:ctx", "local context", "done", 4, duration=0.12),
        vertex("sha256:b1", "[envd] apt-get install git", "running" if not done else "failed", 5, duration=2.5,
               error="" if not done else "process \"apt-get install -y git\" did not complete: exit code: 100",
               log_tail=["Reading package lists...", "E: Unable to locate package git"]),
        vertex("sha256:b2", "copy /src → /app", "pending", 6),
        vertex("sha256:m", "merge", "pending", 7),
        vertex("sha256:t", "sh -c 'python -V'", "pending", 8),
    ]
    return {"version": 1, "vertices": vertices, "total": 8, "cached": 2, "ran": 3, "failed": int(done),
            "done": done}
