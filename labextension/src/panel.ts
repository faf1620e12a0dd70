// The "envd" side panel: Builders, the active notebook's States, History, and one build's detail.
import { Widget } from '@lumino/widgets';

import * as api from './api';
import { renderDag } from './dag';
import { DetailView } from './detail';
import { bytes, button, h } from './dom';
import { HistoryView } from './history';
import { KernelLink, KernelState, KernelView } from './kernel';

const BUILDERS_EVERY_MS = 30000; // while the panel is visible; events refresh them sooner
const EVENT_REFRESH_DELAY_MS = 500;

/** Code for a cell that continues from `state` (%%envd NAME --from STATE; `start` is that state). */
export function continueCell(state: string, taken: string[] = []): string {
  let name = `${state}_next`;
  for (let n = 2; taken.includes(name); n++) name = `${state}_next${n}`;
  return `%%envd ${name} --from ${state}\nstart.run("echo continuing from ${state}", name="next step")`;
}

/** A section with a heading button that folds it (aria-expanded, keyboard-reachable). */
function section(title: string, className: string, ...content: HTMLElement[]): HTMLElement {
  const body = h('div', { class: 'envd-lab-section-body', id: `${className}-body` }, ...content);
  const toggle = h('button', {
    type: 'button', class: 'envd-lab-section-toggle', 'aria-expanded': 'true', 'aria-controls': `${className}-body`,
    onclick: () => {
      const open = toggle.getAttribute('aria-expanded') !== 'true';
      toggle.setAttribute('aria-expanded', String(open));
      body.hidden = !open;
    }
  }, title);
  return h('section', { class: `envd-lab-section ${className}`, 'aria-label': title }, h('h2', {}, toggle), body);
}

export class EnvdPanel extends Widget {
  private readonly buildersList = h('ul', { class: 'envd-lab-builders-list', 'aria-label': 'builders' });
  private readonly buildersNote = h('div', { class: 'envd-lab-builders-note' });
  private readonly statesList = h('ul', { class: 'envd-lab-states-list', 'aria-label': 'states' });
  private readonly statesNote = h('div', { class: 'envd-lab-states-note' });
  private readonly live = h('span', { class: 'envd-lab-live', 'data-connected': 'false' }, 'offline');
  private readonly sections: HTMLElement;
  private readonly history: HistoryView;
  private readonly detail: DetailView;
  private readonly events: api.EventStream;
  private openState = '';
  private buildersTimer = 0;
  private eventTimer = 0;

  constructor(private readonly link: KernelLink, private readonly insert: (code: string) => void) {
    super();
    this.id = 'envd-jupyter-panel';
    this.addClass('envd-lab-panel');
    this.title.caption = 'envd: builders, states, build history';
    const insertFrom = (state: string) =>
      this.insert(continueCell(state, this.link.view.states.map((known) => known.name)));
    this.history = new HistoryView({ open: (item) => this.openDetail(item), insert: insertFrom });
    this.detail = new DetailView({
      back: () => this.closeDetail(),
      changed: () => void this.history.load(),
      insert: insertFrom
    });
    this.sections = h('div', { class: 'envd-lab-sections' },
      section('Builders', 'envd-lab-builders', this.buildersList, this.buildersNote),
      section('States', 'envd-lab-states', this.statesNote, this.statesList),
      section('History', 'envd-lab-history-section', this.history.node));
    this.node.append(
      h('header', { class: 'envd-lab-header' },
        h('h1', {}, 'envd'), this.live,
        button('↻', 'refresh builders, states and history', () => this.refresh(), 'envd-lab-refresh')),
      this.sections, this.detail.node);
    link.changed.connect((_, view) => this.drawStates(view), this);
    this.drawStates(link.view);
    this.events = new api.EventStream((event) => this.onEvent(event), (connected) => {
      this.live.textContent = connected ? 'live' : 'offline';
      this.live.dataset.connected = String(connected);
      if (connected) void this.history.load(); // events missed while disconnected
    });
  }

  refresh(): void {
    void this.loadBuilders();
    void this.history.load();
    this.link.refresh();
  }

  protected onAfterShow(): void {
    this.refresh();
    window.clearInterval(this.buildersTimer);
    this.buildersTimer = window.setInterval(() => void this.loadBuilders(), BUILDERS_EVERY_MS);
  }

  protected onAfterHide(): void {
    window.clearInterval(this.buildersTimer);
  }

  private onEvent(event: api.HistoryEvent): void {
    this.history.apply(event);
    const shown = this.detail.shown;
    if (shown && shown.id === event.item.id && shown.builder === event.builder && event.kind !== 'deleted') {
      void this.detail.show({ ...shown, ...event.item });
    }
    window.clearTimeout(this.eventTimer); // a burst of builds: one builders refresh after it
    this.eventTimer = window.setTimeout(() => void this.loadBuilders(), EVENT_REFRESH_DELAY_MS);
  }

  private async loadBuilders(): Promise<void> {
    let found: api.BuilderInfo[];
    try {
      found = await api.builders();
    } catch (error) {
      this.buildersNote.replaceChildren(h('div', { class: 'envd-lab-error', role: 'alert' }, (error as Error).message));
      return;
    }
    this.buildersNote.replaceChildren(found.length ? '' : h('div', { class: 'envd-lab-note' }, 'no builders configured'));
    this.history.setBuilders(found.map((builder) => builder.name));
    this.buildersList.replaceChildren(...found.map((builder) =>
      h('li', {
        class: 'envd-lab-builder', 'data-name': builder.name, 'data-healthy': String(builder.healthy),
        title: builder.error || builder.platforms.join(', ')
      },
      h('span', { class: 'envd-lab-health', 'aria-label': builder.healthy ? 'healthy' : 'unhealthy' }),
      h('span', { class: 'envd-lab-row-main' },
        h('span', { class: 'envd-lab-row-name' }, builder.name),
        h('span', { class: 'envd-lab-row-meta envd-lab-address', title: builder.address }, builder.address),
        h('span', { class: 'envd-lab-row-counts' }, builder.healthy
          ? [builder.version ? `BuildKit ${builder.version}` : 'BuildKit (version not reported)',
            `${builder.in_flight} in flight`, `${bytes(builder.disk_bytes)} cache`].join(' · ')
          : builder.error || 'unreachable')))));
  }

  private drawStates(view: KernelView): void {
    const notebook = view.notebook ? view.notebook.split('/').pop() : '';
    this.statesNote.replaceChildren(!view.notebook
      ? h('div', { class: 'envd-lab-note' }, 'no active notebook')
      : h('div', { class: 'envd-lab-note', 'data-connected': String(view.connected) },
        view.connected ? `${notebook}: ${view.states.length} ${view.states.length === 1 ? 'state' : 'states'}`
          : `${notebook}: run %load_ext envd_jupyter in its kernel`));
    this.statesList.replaceChildren(...view.states.map((state) => this.stateRow(state, view)));
  }

  private stateRow(state: KernelState, view: KernelView): HTMLElement {
    const open = this.openState === state.name;
    const stepping = view.stepper?.state === state.name;
    const toggle = () => {
      this.openState = open ? '' : state.name;
      this.drawStates(this.link.view);
      (this.statesList.querySelector(`[data-name="${CSS.escape(state.name)}"] .envd-lab-state-toggle`) as HTMLElement | null)?.focus();
    };
    const marks = new Map<string, string>();
    if (stepping && view.stepper?.position) marks.set(view.stepper.position, 'running');
    return h('li', { class: 'envd-lab-state', 'data-name': state.name, 'data-status': state.status },
      h('div', { class: 'envd-lab-state-row' },
        h('button', {
          type: 'button', class: 'envd-lab-state-toggle', 'aria-expanded': String(open),
          'aria-label': `${state.name}: ${open ? 'hide' : 'show'} its graph`, onclick: toggle
        },
        h('span', { class: `envd-lab-status envd-lab-status-${state.status || 'defined'}` }, state.status || 'defined'),
        h('span', { class: 'envd-lab-row-name' }, state.name),
        h('span', { class: 'envd-lab-row-meta' }, [state.builder, stepping ? 'stepping' : ''].filter(Boolean).join(' · '))),
        button('+ cell', `insert a cell continuing from ${state.name}`, () =>
          this.insert(continueCell(state.name, view.states.map((known) => known.name))), 'envd-lab-insert')),
      open ? h('div', { class: 'envd-lab-state-graph' }, state.graph?.nodes?.length
        ? renderDag(state.graph, `graph of ${state.name}`, marks) : h('div', { class: 'envd-lab-note' }, 'no graph')) : null);
  }

  private openDetail(item: api.HistoryItem): void {
    this.sections.hidden = true;
    void this.detail.show(item);
  }

  private closeDetail(): void {
    const shown = this.detail.shown;
    this.detail.hide();
    this.sections.hidden = false;
    const row = shown && this.node.querySelector(`.envd-lab-history-row[data-id="${CSS.escape(shown.id)}"] .envd-lab-row-open`);
    (row as HTMLElement | null)?.focus();
  }

  dispose(): void {
    if (this.isDisposed) return;
    window.clearInterval(this.buildersTimer);
    window.clearTimeout(this.eventTimer);
    this.events.dispose();
    super.dispose();
  }
}
