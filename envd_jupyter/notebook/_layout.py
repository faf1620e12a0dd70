"""Layered layout of an LLB graph (``Definition.to_graph()``) for the DAG widget and its static SVG.

Sugiyama-style and pure Python so it runs wherever the kernel does, with no ``dot`` to install or
to hang: longest-path layers (inputs above the ops that read them), barycentric ordering sweeps
(the order with the fewest crossings is kept), and x positions by least-squares placement within
each layer's order. Linear chains longer than ``collapse`` fold into one "… N steps" node, and a
graph still larger than ``max_nodes`` becomes a plain list: time stays linear in the graph size.

The result is a JSON-ready dict (the widget sends it to the browser as is)::

    {"version": 1, "mode": "dag" | "list", "reason": str, "width": float, "height": float,
     "nodes": [{"id", "kind", "name", "label", "location", "attrs", "head", "layer",
                "x", "y", "width", "height", "members": [{"id", "name"}] (folded chains only),
                "chain": chain id (members of an expanded chain only)}],
     "edges": [{"source", "target", "count", "points": [[x, y], …]}],
     "chains": [{"id", "count", "collapsed": bool}]}

``x``/``y`` are a node's top-left corner; edge points run from the source's bottom centre to the
target's top centre. Collapsed chains have kind ``"chain"`` and id ``"chain:<first hidden id>"``,
the id to pass in ``expanded`` to lay the graph out again with that chain open.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any

NODE_HEIGHT = 34
LAYER_GAP = 46
NODE_GAP = 22
MARGIN = 16
CHAR_WIDTH = 7
LABEL_CHARS = 32
MIN_WIDTH = 64
LIST_WIDTH = 480
LIST_ROW = 28
DUMMY_WIDTH = 6
ORDER_SWEEPS = 4
PLACE_ROUNDS = 4
CHAIN_PREFIX = "chain:"


def truncate(text: str, limit: int = LABEL_CHARS) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis (the full text goes in a tooltip)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def layout_graph(graph: Mapping[str, Any], *, collapse: int | None = 12, max_nodes: int = 2000,
                 expanded: Iterable[str] = ()) -> dict[str, Any]:
    """Lay out ``graph`` (the ``Definition.to_graph()`` shape); see the module docstring for the result."""
    nodes = {node["id"]: node for node in graph.get("nodes", ())}
    head = graph.get("head")
    counts: dict[tuple[str, str], int] = {}
    for edge in graph.get("edges", ()):
        if edge["source"] in nodes and edge["target"] in nodes and edge["source"] != edge["target"]:
            key = (edge["source"], edge["target"])
            counts[key] = counts.get(key, 0) + 1

    chains, owner = _fold_chains(list(nodes), counts, collapse, set(expanded))
    visible = [_visible_node(nodes[i], head) for i in nodes if i not in owner]
    visible += [_chain_node(chain, nodes) for chain in chains if chain["collapsed"]]
    opened = {member: chain["id"] for chain in chains if not chain["collapsed"] for member in chain["members"]}
    for node in visible:
        if node["id"] in opened:
            node["chain"] = opened[node["id"]]  # lets the widget fold it again
    folded: dict[tuple[str, str], int] = {}
    for (source, target), count in counts.items():
        key = (owner.get(source, source), owner.get(target, target))
        if key[0] != key[1]:
            folded[key] = folded.get(key, 0) + count
    edges = [{"source": s, "target": t, "count": c} for (s, t), c in folded.items()]
    chain_list = [{"id": c["id"], "count": len(c["members"]), "collapsed": c["collapsed"]} for c in chains]

    order = _topological(visible, edges)
    if len(visible) > max_nodes:
        reason = f"{len(visible):,} vertices (after folding chains) is more than {max_nodes:,}: shown as a list"
        return _as_list(order, edges, chain_list, reason)
    return _as_dag(order, edges, chain_list, max_nodes)


def _fold_chains(ids: list[str], counts: Mapping[tuple[str, str], int], collapse: int | None,
                 expanded: set[str]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Chains longer than ``collapse`` (all but their ends hidden), and hidden id → chain id.

    A chain link u → v: v is u's only consumer and u is v's only input. Every chain is
    reported (collapsed or expanded, so the widget can fold it back); only long ones are.
    """
    if not collapse or collapse < 1:
        return [], {}
    succs: dict[str, list[str]] = {i: [] for i in ids}
    preds: dict[str, list[str]] = {i: [] for i in ids}
    for source, target in counts:
        succs[source].append(target)
        preds[target].append(source)

    def link(u: str) -> str | None:
        return succs[u][0] if len(succs[u]) == 1 and len(preds[succs[u][0]]) == 1 else None

    linked_to = {v for u in ids if (v := link(u)) is not None}
    chains, owner = [], {}
    for start in ids:
        if start in linked_to:
            continue
        run, current = [start], link(start)
        while current is not None:
            run.append(current)
            current = link(current)
        if len(run) <= collapse:
            continue
        hidden = run[1:-1]
        chain_id = CHAIN_PREFIX + hidden[0]
        collapsed = chain_id not in expanded
        chains.append({"id": chain_id, "members": hidden, "collapsed": collapsed})
        if collapsed:
            owner.update((member, chain_id) for member in hidden)
    return chains, owner


def _visible_node(node: Mapping[str, Any], head: str | None) -> dict[str, Any]:
    name = node.get("name") or node["id"]
    return {"id": node["id"], "kind": node.get("kind", ""), "name": name, "label": truncate(name),
            "location": node.get("location"), "attrs": dict(node.get("attrs") or {}),
            "head": node["id"] == head}


def _chain_node(chain: Mapping[str, Any], nodes: Mapping[str, Mapping[str, Any]]) -> dict[str, Any]:
    members = chain["members"]
    name = f"… {len(members)} steps"
    return {"id": chain["id"], "kind": "chain", "name": name, "label": name, "location": None, "attrs": {},
            "head": False,
            "members": [{"id": m, "name": nodes[m].get("name") or m} for m in members]}


def _topological(nodes: list[dict[str, Any]], edges: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``nodes`` inputs first, ties in the given order; nodes on a cycle (never in LLB) go last."""
    index = {node["id"]: i for i, node in enumerate(nodes)}
    indegree = [0] * len(nodes)
    succs: list[list[int]] = [[] for _ in nodes]
    for edge in edges:
        succs[index[edge["source"]]].append(index[edge["target"]])
        indegree[index[edge["target"]]] += 1
    ready = deque(i for i, d in enumerate(indegree) if d == 0)
    order: list[int] = []
    while ready:
        i = ready.popleft()
        order.append(i)
        for j in succs[i]:
            indegree[j] -= 1
            if indegree[j] == 0:
                ready.append(j)
    placed = set(order)
    order += [i for i in range(len(nodes)) if i not in placed]
    return [nodes[i] for i in order]


def _as_list(order: list[dict[str, Any]], edges: list[dict[str, Any]], chains: list[dict[str, Any]],
             reason: str) -> dict[str, Any]:
    for row, node in enumerate(order):
        node.update(layer=row, x=MARGIN, y=MARGIN + row * LIST_ROW, width=LIST_WIDTH, height=LIST_ROW - 4)
    for edge in edges:
        edge["points"] = []
    return {"version": 1, "mode": "list", "reason": reason, "width": LIST_WIDTH + 2 * MARGIN,
            "height": 2 * MARGIN + len(order) * LIST_ROW, "nodes": order, "edges": edges, "chains": chains}


def _as_dag(order: list[dict[str, Any]], edges: list[dict[str, Any]], chains: list[dict[str, Any]],
            max_nodes: int) -> dict[str, Any]:
    position = {node["id"]: i for i, node in enumerate(order)}
    # Edges against the topological order only exist on a cycle: laid out reversed.
    pairs = [(min(position[e["source"]], position[e["target"]]), max(position[e["source"]], position[e["target"]]))
             for e in edges]
    layer = _layers(len(order), pairs)
    grid = _Grid(order, layer)
    direct = _routes(grid, pairs, layer, budget=min(4 * max_nodes, 2 * len(order) + 500))
    rows = _order_layers(grid)
    _place(grid, rows)

    for i, node in enumerate(order):
        node.update(layer=layer[i], x=grid.left(i), y=grid.top(i), width=grid.width[i], height=NODE_HEIGHT)
    for edge, (u, v), route in zip(edges, pairs, grid.routes):
        points = [[grid.centre[u], grid.top(u) + NODE_HEIGHT]]
        points += [[grid.centre[d], grid.top(d) + NODE_HEIGHT / 2] for d in route]
        points.append([grid.centre[v], grid.top(v)])
        if position[edge["source"]] > position[edge["target"]]:
            points.reverse()
        edge["points"] = points
    width = max((grid.centre[i] + grid.width[i] / 2 for i in range(grid.size)), default=0) + MARGIN
    height = MARGIN + (max(layer, default=-1) + 1) * (NODE_HEIGHT + LAYER_GAP) - LAYER_GAP + MARGIN
    reason = f"{direct} long edges drawn straight" if direct else ""
    return {"version": 1, "mode": "dag", "reason": reason, "width": width, "height": max(height, 2 * MARGIN),
            "nodes": order, "edges": edges, "chains": chains}


def _layers(count: int, pairs: list[tuple[int, int]]) -> list[int]:
    """Longest path from the sources; a source then moves down to just above its first consumer."""
    layer = [0] * count
    preds: list[list[int]] = [[] for _ in range(count)]
    succs: list[list[int]] = [[] for _ in range(count)]
    for u, v in pairs:
        preds[v].append(u)
        succs[u].append(v)
    for v in range(count):  # pairs go from lower to higher index: index order is topological
        if preds[v]:
            layer[v] = max(layer[u] for u in preds[v]) + 1
    for u in range(count):
        if not preds[u] and succs[u]:
            layer[u] = min(layer[v] for v in succs[u]) - 1
    return layer


class _Grid:
    """Real nodes (indices 0..n-1) and the dummies that carry long edges, by layer."""

    def __init__(self, order: list[dict[str, Any]], layer: list[int]) -> None:
        self.real = len(order)
        self.layer = list(layer)
        self.width = [max(MIN_WIDTH, len(node["label"]) * CHAR_WIDTH + 20) for node in order]
        self.up: list[list[int]] = [[] for _ in order]
        self.down: list[list[int]] = [[] for _ in order]
        self.routes: list[list[int]] = []
        self.centre: list[float] = []

    @property
    def size(self) -> int:
        return len(self.layer)

    def add_dummy(self, layer: int) -> int:
        self.layer.append(layer)
        self.width.append(DUMMY_WIDTH)
        self.up.append([])
        self.down.append([])
        return len(self.layer) - 1

    def connect(self, u: int, v: int) -> None:
        self.down[u].append(v)
        self.up[v].append(u)

    def left(self, i: int) -> float:
        return self.centre[i] - self.width[i] / 2

    def top(self, i: int) -> float:
        return MARGIN + self.layer[i] * (NODE_HEIGHT + LAYER_GAP)


def _routes(grid: _Grid, pairs: list[tuple[int, int]], layer: list[int], budget: int) -> int:
    """Dummies along every edge that spans layers, longest edges drawn straight past ``budget``.

    Returns how many edges were left straight (they take no part in ordering).
    """
    spans = sorted(range(len(pairs)), key=lambda e: layer[pairs[e][1]] - layer[pairs[e][0]])
    allowed, used = set(), 0
    for e in spans:
        need = layer[pairs[e][1]] - layer[pairs[e][0]] - 1
        if used + need > budget:
            break
        allowed.add(e)
        used += need
    direct = 0
    for e, (u, v) in enumerate(pairs):
        route: list[int] = []
        if e in allowed:
            previous = u
            for step in range(layer[u] + 1, layer[v]):
                dummy = grid.add_dummy(step)
                grid.connect(previous, dummy)
                route.append(dummy)
                previous = dummy
            grid.connect(previous, v)
        else:
            direct += 1
        grid.routes.append(route)
    return direct


def _order_layers(grid: _Grid) -> list[list[int]]:
    """Each layer's left-to-right order: barycentric sweeps down and up, fewest crossings kept."""
    depth = max(grid.layer, default=-1) + 1
    rows: list[list[int]] = [[] for _ in range(depth)]
    for i in range(grid.size):
        rows[grid.layer[i]].append(i)
    position = [0.0] * grid.size
    for row in rows:
        for p, i in enumerate(row):
            position[i] = p
    best, fewest = [list(row) for row in rows], _crossings(rows, grid.down, position)
    for sweep in range(2 * ORDER_SWEEPS):
        downward = sweep % 2 == 0
        span = range(1, depth) if downward else range(depth - 2, -1, -1)
        neighbours = grid.up if downward else grid.down
        for r in span:
            row = rows[r]
            keys = {}
            for i in row:
                near = neighbours[i]
                keys[i] = sum(position[j] for j in near) / len(near) if near else position[i]
            row.sort(key=lambda i: (keys[i], position[i]))
            for p, i in enumerate(row):
                position[i] = p
        _transpose(rows, grid, position)
        crossings = _crossings(rows, grid.down, position)
        if crossings < fewest:
            best, fewest = [list(row) for row in rows], crossings
        if fewest == 0:
            break
    return best


def _transpose(rows: list[list[int]], grid: _Grid, position: list[float]) -> None:
    """Swap neighbours in a layer where that alone removes crossings (one pass over every layer)."""
    for row in rows:
        for k in range(len(row) - 1):
            u, v = row[k], row[k + 1]
            kept = swapped = 0
            for near in (grid.up, grid.down):
                a = sorted(position[j] for j in near[u])
                b = sorted(position[j] for j in near[v])
                if a and b:
                    kept += sum(bisect_left(b, x) for x in a)  # u's neighbour right of v's
                    swapped += sum(len(b) - bisect_right(b, x) for x in a)
            if swapped < kept:
                row[k], row[k + 1] = v, u
                position[u], position[v] = k + 1, k


def _crossings(rows: list[list[int]], down: list[list[int]], position: list[float]) -> int:
    """Edge crossings between adjacent layers (inversions counted with a Fenwick tree)."""
    total = 0
    for row, below in zip(rows, rows[1:]):
        targets = sorted((position[u], position[v]) for u in row for v in down[u])
        tree = [0] * (len(below) + 1)
        for seen, (_, v) in enumerate(targets):
            k, not_greater = int(v) + 1, 0
            while k > 0:
                not_greater += tree[k]
                k -= k & -k
            total += seen - not_greater
            k = int(v) + 1
            while k <= len(below):
                tree[k] += 1
                k += k & -k
    return total


def _place(grid: _Grid, rows: list[list[int]]) -> None:
    """x centres: each node pulled to the mean of its neighbours, order and spacing kept."""
    grid.centre = [0.0] * grid.size
    for row in rows:
        x = MARGIN
        for i in row:
            grid.centre[i] = x + grid.width[i] / 2
            x += grid.width[i] + NODE_GAP
    depth = len(rows)
    passes = [(range(1, depth), grid.up), (range(depth - 2, -1, -1), grid.down)] * PLACE_ROUNDS
    for span, neighbours in passes:
        for r in span:
            _settle(grid, rows[r], lambda i, near=neighbours: near[i])
    for r in range(depth):
        _settle(grid, rows[r], lambda i: grid.up[i] + grid.down[i])
    shift = MARGIN - min((grid.left(i) for i in range(grid.size)), default=MARGIN)
    grid.centre = [c + shift for c in grid.centre]


def _settle(grid: _Grid, row: list[int], near_of) -> None:
    """Least-squares centres for ``row`` toward its neighbours' mean, order and gaps kept (PAV)."""
    if not row:
        return
    offsets, offset = [], 0.0
    for k, i in enumerate(row):
        if k:
            offset += (grid.width[row[k - 1]] + grid.width[i]) / 2 + NODE_GAP
        offsets.append(offset)
    blocks: list[list[float]] = []  # [sum, count]
    for k, i in enumerate(row):
        near = near_of(i)
        wanted = sum(grid.centre[j] for j in near) / len(near) if near else grid.centre[i]
        blocks.append([wanted - offsets[k], 1])
        while len(blocks) > 1 and blocks[-2][0] * blocks[-1][1] > blocks[-1][0] * blocks[-2][1]:
            total, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
    k = 0
    for total, count in blocks:
        value = total / count
        for _ in range(int(count)):
            grid.centre[row[k]] = value + offsets[k]
            k += 1
