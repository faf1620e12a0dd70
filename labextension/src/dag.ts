// A Definition's graph (llb to_graph(): nodes and edges) as a small layered SVG: each node one row
// below its deepest input, ordered in its row by its inputs' mean column. Enough for a side panel;
// the notebook's own DAG widget does the full layout.
import { Graph } from './api';
import { s } from './dom';

const NODE_W = 150;
const NODE_H = 24;
const GAP_X = 16;
const GAP_Y = 28;
const PAD = 8;
const LABEL_CHARS = 22;

export interface PlacedNode {
  id: string;
  name: string;
  kind: string;
  x: number;
  y: number;
}

/** Rows by longest path from a source, then each row sorted by its inputs' mean x. */
export function layout(graph: Graph): { nodes: PlacedNode[]; width: number; height: number } {
  const inputs = new Map<string, string[]>();
  for (const node of graph.nodes) inputs.set(node.id, []);
  for (const edge of graph.edges) {
    if (inputs.has(edge.target) && inputs.has(edge.source)) inputs.get(edge.target)!.push(edge.source);
  }
  const depth = new Map<string, number>();
  // Iterative longest-path depth (graphs can be deep chains: no recursion).
  for (const node of graph.nodes) {
    const stack: [string, boolean][] = [[node.id, false]];
    while (stack.length) {
      const [id, expanded] = stack.pop()!;
      if (depth.has(id)) continue;
      const parents = inputs.get(id) ?? [];
      if (expanded) {
        depth.set(id, parents.length ? 1 + Math.max(...parents.map((p) => depth.get(p) ?? 0)) : 0);
        continue;
      }
      stack.push([id, true]);
      for (const parent of parents) if (!depth.has(parent)) stack.push([parent, false]);
    }
  }
  const rows: string[][] = [];
  for (const node of graph.nodes) {
    const row = depth.get(node.id) ?? 0;
    (rows[row] ??= []).push(node.id);
  }
  const column = new Map<string, number>();
  const byId = new Map(graph.nodes.map((node) => [node.id, node]));
  const placed: PlacedNode[] = [];
  let widest = 1;
  rows.forEach((row, index) => {
    const mean = (id: string) => {
      const parents = inputs.get(id) ?? [];
      return parents.length ? parents.reduce((sum, p) => sum + (column.get(p) ?? 0), 0) / parents.length : 0;
    };
    if (index > 0) row.sort((a, b) => mean(a) - mean(b));
    row.forEach((id, position) => {
      column.set(id, position);
      const node = byId.get(id)!;
      placed.push({
        id,
        name: node.name || node.kind,
        kind: node.kind,
        x: PAD + position * (NODE_W + GAP_X),
        y: PAD + index * (NODE_H + GAP_Y)
      });
    });
    widest = Math.max(widest, row.length);
  });
  return {
    nodes: placed,
    width: PAD * 2 + widest * NODE_W + (widest - 1) * GAP_X,
    height: PAD * 2 + rows.length * NODE_H + Math.max(0, rows.length - 1) * GAP_Y
  };
}

const short = (text: string) => (text.length > LABEL_CHARS ? `${text.slice(0, LABEL_CHARS - 1)}…` : text);

/** The SVG: edges from the bottom of an input to the top of its user; `states` colours nodes by digest. */
export function renderDag(graph: Graph, label: string, states: Map<string, string> = new Map()): SVGElement {
  const { nodes, width, height } = layout(graph);
  const at = new Map(nodes.map((node) => [node.id, node]));
  const svg = s('svg', {
    class: 'envd-lab-dag',
    viewBox: `0 0 ${width} ${height}`,
    width,
    height,
    role: 'img',
    'aria-label': label
  });
  for (const edge of graph.edges) {
    const from = at.get(edge.source);
    const to = at.get(edge.target);
    if (!from || !to) continue;
    const x1 = from.x + NODE_W / 2;
    const y1 = from.y + NODE_H;
    const x2 = to.x + NODE_W / 2;
    const y2 = to.y;
    const bend = (y2 - y1) / 2;
    svg.appendChild(s('path', { class: 'envd-lab-dag-edge', d: `M${x1},${y1} C${x1},${y1 + bend} ${x2},${y2 - bend} ${x2},${y2}` }));
  }
  for (const node of nodes) {
    const state = states.get(node.id) ?? '';
    svg.appendChild(
      s('g', { class: 'envd-lab-dag-node', 'data-kind': node.kind, 'data-state': state, transform: `translate(${node.x},${node.y})` },
        s('title', {}, `${node.name} (${node.kind})${state ? ` — ${state}` : ''}`),
        s('rect', { width: NODE_W, height: NODE_H, rx: 4 }),
        s('text', { x: 8, y: NODE_H / 2 + 4 }, short(node.name)))
    );
  }
  return svg;
}
