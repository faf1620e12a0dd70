// One build's detail: its steps with timings (cached / ran / failed), the failure, the scheduling
// scores, its graph and logs, and pin / delete.
import { Dialog, showDialog } from '@jupyterlab/apputils';

import * as api from './api';
import { renderDag } from './dag';
import { button, duration, h, when } from './dom';

export interface DetailActions {
  back(): void;
  changed(): void; // pinned or deleted: the list should reload
  insert(fromState: string): void;
}

const stepState = (step: api.Step) =>
  step.error ? 'failed' : step.cached ? 'cached' : step.completed ? 'done' : step.started ? 'running' : 'pending';

export class DetailView {
  readonly node: HTMLElement;
  private readonly body: HTMLElement;
  private item: api.HistoryItem | null = null;

  constructor(private readonly actions: DetailActions) {
    this.body = h('div', { class: 'envd-lab-detail-body', 'aria-live': 'polite' });
    this.node = h('section', {
      class: 'envd-lab-detail', 'aria-label': 'build detail', hidden: true,
      onkeydown: (event: Event) => {
        if ((event as KeyboardEvent).key === 'Escape') this.actions.back();
      }
    }, this.body);
  }

  get shown(): api.HistoryItem | null {
    return this.node.hidden ? null : this.item;
  }

  async show(item: api.HistoryItem): Promise<void> {
    this.item = item;
    this.node.hidden = false;
    this.body.replaceChildren(this.header(item), h('p', { class: 'envd-lab-loading' }, 'loading…'));
    let detail: api.HistoryDetail;
    try {
      detail = await api.detail(item.builder, item.id);
    } catch (error) {
      if (this.item === item) {
        this.body.replaceChildren(this.header(item), h('p', { class: 'envd-lab-error', role: 'alert' }, (error as Error).message));
      }
      return;
    }
    if (this.item !== item) return;
    this.item = { ...item, ...detail };
    this.render(detail);
    (this.body.querySelector('.envd-lab-back') as HTMLElement | null)?.focus();
  }

  hide(): void {
    this.node.hidden = true;
    this.item = null;
  }

  private header(item: api.HistoryItem): HTMLElement {
    const pinLabel = item.pinned ? 'unpin' : 'pin';
    return h('div', { class: 'envd-lab-detail-header' },
      button('‹ back', 'back to the list', () => this.actions.back(), 'envd-lab-back'),
      h('h3', { class: 'envd-lab-detail-title' }, item.name || item.id),
      h('div', { class: 'envd-lab-detail-actions' },
        button(pinLabel, `${pinLabel} this build in the daemon's history`, () => void this.pin(!item.pinned), 'envd-lab-pin'),
        button('delete', 'delete this build from the history', () => void this.remove(), 'envd-lab-delete'),
        item.state ? button('insert cell', `insert a cell continuing from ${item.state}`,
          () => this.actions.insert(item.state!), 'envd-lab-insert') : null));
  }

  private render(detail: api.HistoryDetail): void {
    const took = detail.created && detail.completed ? duration(detail.completed - detail.created) : '';
    const facts: [string, string][] = [
      ['status', detail.status], ['builder', detail.builder], ['started', when(detail.created)], ['took', took],
      ['steps', `${detail.total} · ${detail.cached} cached · ${detail.ran} ran`], ['source', detail.source],
      ['notebook', detail.notebook ?? ''], ['ref', detail.id]
    ];
    const parts: (Node | null)[] = [
      this.header(this.item!),
      h('dl', { class: 'envd-lab-facts' }, ...facts.filter(([, value]) => value).flatMap(([name, value]) =>
        [h('dt', {}, name), h('dd', { 'data-fact': name }, value)])),
      detail.error ? h('p', { class: 'envd-lab-failure', role: 'alert' }, detail.error) : null,
      ...(detail.notes ?? []).map((note) => h('p', { class: 'envd-lab-note' }, note)),
      this.steps(detail.steps ?? []),
      this.scores(detail.scheduling ?? []),
      detail.graph?.nodes?.length ? h('div', { class: 'envd-lab-detail-graph' }, h('h4', {}, 'graph'),
        renderDag(detail.graph, `graph of ${detail.name}`,
          new Map((detail.steps ?? []).map((step) => [step.digest, stepState(step)])))) : null,
      this.logs(detail.logs ?? [])];
    this.body.replaceChildren(...parts.filter((part): part is Node => part !== null));
  }

  /** In the order they started (a replayed status stream lists them in its own order). */
  private steps(unordered: api.Step[]): HTMLElement {
    const began = (step: api.Step) => step.started ?? step.completed ?? 0;
    const steps = [...unordered].sort((a, b) => began(a) - began(b) || a.index - b.index);
    const rows = steps.map((step, position) => {
      const state = stepState(step);
      return h('tr', { class: 'envd-lab-step', 'data-state': state, 'data-digest': step.digest },
        h('td', { class: 'envd-lab-step-index' }, String(position + 1)),
        h('td', { class: 'envd-lab-step-name', title: step.name }, step.name || step.digest.slice(7, 19)),
        h('td', {}, h('span', { class: `envd-lab-status envd-lab-status-${state}` }, state)),
        h('td', { class: 'envd-lab-step-time' }, step.cached ? '' : duration(step.duration)));
    });
    const failed = steps.filter((step) => step.error);
    return h('div', { class: 'envd-lab-steps' }, h('h4', {}, `steps (${steps.length})`),
      steps.length
        ? h('table', { 'aria-label': 'steps' },
          h('thead', {}, h('tr', {}, h('th', {}, '#'), h('th', {}, 'step'), h('th', {}, 'state'), h('th', {}, 'time'))),
          h('tbody', {}, ...rows))
        : h('p', { class: 'envd-lab-note' }, 'no steps recorded'),
      ...failed.map((step) => h('pre', { class: 'envd-lab-step-error' },
        `${step.name}: ${step.error}\n${(step.log_tail ?? []).join('\n')}`.trim())));
  }

  private scores(cycles: api.SchedulingCycle[]): HTMLElement | null {
    if (!cycles.length) return null;
    return h('div', { class: 'envd-lab-scores' }, h('h4', {}, 'scheduling'), ...cycles.map((cycle) => {
      const removed = (cycle.filters ?? []).filter((f) => f.removed?.length)
        .map((f) => h('li', {}, `removed by ${f.filter}: ${f.removed.join(', ')}`));
      const ranked = Object.entries(cycle.scores ?? {}).sort(([, a], [, b]) => b.total - a.total);
      return h('div', { class: 'envd-lab-cycle' },
        h('p', {}, `${cycle.profile ? `profile ${cycle.profile}: ` : ''}${(cycle.candidates ?? []).length} candidates · picked ${(cycle.picked ?? []).join(', ') || 'none'}`),
        removed.length ? h('ul', {}, ...removed) : null,
        ranked.length ? h('table', { 'aria-label': 'scores' },
          h('thead', {}, h('tr', {}, h('th', {}, 'builder'), h('th', {}, 'score'))),
          h('tbody', {}, ...ranked.map(([name, score]) => h('tr', {
            class: 'envd-lab-score', 'data-builder': name,
            'data-picked': String((cycle.picked ?? []).includes(name))
          }, h('td', {}, name), h('td', {}, score.total.toFixed(2)))))) : null,
        cycle.error ? h('p', { class: 'envd-lab-failure' }, cycle.error) : null);
    }));
  }

  /** The server sends [{digest, name, lines}] per step; plain strings are shown as they are. */
  private logs(logs: unknown[]): HTMLElement | null {
    if (!logs.length) return null;
    const text = logs.map((entry) => {
      if (typeof entry === 'string') return entry;
      const step = entry as { name?: string; lines?: string[] };
      return (step.lines ?? []).map((line) => `[${step.name ?? ''}] ${line}`).join('\n');
    }).filter(Boolean).join('\n');
    return h('details', { class: 'envd-lab-logs' }, h('summary', {}, `logs (${logs.length} steps)`),
      h('pre', {}, text));
  }

  private async pin(pinned: boolean): Promise<void> {
    const item = this.item;
    if (!item) return;
    try {
      await api.pin(item.builder, item.id, pinned);
      this.actions.changed();
      await this.show({ ...item, pinned });
    } catch (error) {
      this.flash((error as Error).message);
    }
  }

  private async remove(): Promise<void> {
    const item = this.item;
    if (!item) return;
    const answer = await showDialog({
      title: 'Delete this build?',
      body: `${item.name || item.id} on ${item.builder} leaves the daemon's history and the archive.`,
      buttons: [Dialog.cancelButton(), Dialog.warnButton({ label: 'Delete' })]
    });
    if (!answer.button.accept) return;
    try {
      await api.remove(item.builder, item.id);
      this.actions.changed();
      this.actions.back();
    } catch (error) {
      this.flash((error as Error).message);
    }
  }

  private flash(message: string): void {
    this.body.querySelector('.envd-lab-action-error')?.remove();
    this.body.insertBefore(h('p', { class: 'envd-lab-error envd-lab-action-error', role: 'alert' }, message),
      this.body.children[1] ?? null);
  }
}
