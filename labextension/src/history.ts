// The History section: the merged list (daemon records + archive), paged, filtered by builder,
// status and name, kept current by the server's event stream.
import * as api from './api';
import { button, duration, h, when } from './dom';

export const PAGE_SIZE = 50;
const NAME_FILTER_DELAY_MS = 300;
const STATUSES = ['running', 'ok', 'failed', 'cancelled'];

export interface HistoryActions {
  open(item: api.HistoryItem): void;
  insert(fromState: string): void;
}

const key = (item: { builder: string; id: string }) => `${item.builder}\u0000${item.id}`;

export class HistoryView {
  readonly node: HTMLElement;
  private readonly list: HTMLElement;
  private readonly footer: HTMLElement;
  private readonly builderFilter: HTMLSelectElement;
  private readonly statusFilter: HTMLSelectElement;
  private readonly nameFilter: HTMLInputElement;
  private query: api.HistoryQuery = { offset: 0, limit: PAGE_SIZE };
  private items: api.HistoryItem[] = [];
  private total = 0;
  private errors: Record<string, string> = {};
  private problem = '';
  private loading = 0; // the latest request's number: older answers are dropped
  private nameTimer = 0;

  constructor(private readonly actions: HistoryActions) {
    const changed = () => this.filter();
    this.builderFilter = h('select', { class: 'envd-lab-filter-builder', 'aria-label': 'filter by builder', onchange: changed },
      h('option', { value: '' }, 'all builders'));
    this.statusFilter = h('select', { class: 'envd-lab-filter-status', 'aria-label': 'filter by status', onchange: changed },
      h('option', { value: '' }, 'any status'), ...STATUSES.map((status) => h('option', { value: status }, status)));
    this.nameFilter = h('input', {
      class: 'envd-lab-filter-name', type: 'search', placeholder: 'name', 'aria-label': 'filter by name',
      oninput: () => {
        window.clearTimeout(this.nameTimer);
        this.nameTimer = window.setTimeout(changed, NAME_FILTER_DELAY_MS);
      }
    });
    this.list = h('ul', { class: 'envd-lab-history-list', 'aria-label': 'builds' });
    this.footer = h('div', { class: 'envd-lab-pager' });
    this.node = h('div', { class: 'envd-lab-history' },
      h('div', { class: 'envd-lab-filters' }, this.builderFilter, this.statusFilter, this.nameFilter),
      this.list, this.footer);
  }

  /** The builder filter's choices (kept when the chosen one is still there). */
  setBuilders(names: string[]): void {
    const chosen = this.builderFilter.value;
    this.builderFilter.replaceChildren(h('option', { value: '' }, 'all builders'),
      ...names.map((name) => h('option', { value: name }, name)));
    this.builderFilter.value = names.includes(chosen) ? chosen : '';
  }

  async load(): Promise<void> {
    const request = ++this.loading;
    try {
      const page = await api.history(this.query);
      if (request !== this.loading) return;
      this.items = page.items;
      this.total = page.total;
      this.errors = page.errors ?? {};
      this.problem = '';
    } catch (error) {
      if (request !== this.loading) return;
      this.problem = (error as Error).message;
    }
    this.render();
  }

  /** A live event: update the row in place, add a new build on the first page, drop a deleted one. */
  apply(event: api.HistoryEvent): void {
    const item = { ...event.item, builder: event.item.builder || event.builder };
    const index = this.items.findIndex((known) => key(known) === key(item));
    if (event.kind === 'deleted') {
      if (index >= 0) {
        this.items.splice(index, 1);
        this.total = Math.max(0, this.total - 1);
      }
    } else if (index >= 0) {
      this.items[index] = { ...this.items[index], ...item };
      if (!this.matches(this.items[index])) this.items.splice(index, 1);
    } else if (this.query.offset === 0 && this.matches(item)) {
      this.items.unshift(item);
      this.total += 1;
      this.items.length = Math.min(this.items.length, this.query.limit);
    } else {
      return;
    }
    this.render();
  }

  private matches(item: api.HistoryItem): boolean {
    const { builder, status, name } = this.query;
    return (!builder || item.builder === builder) && (!status || item.status === status) &&
      (!name || (item.name ?? '').toLowerCase().includes(name.toLowerCase()));
  }

  private filter(): void {
    this.query = {
      offset: 0, limit: PAGE_SIZE, builder: this.builderFilter.value || undefined,
      status: this.statusFilter.value || undefined, name: this.nameFilter.value.trim() || undefined
    };
    void this.load();
  }

  private page(offset: number): void {
    this.query = { ...this.query, offset: Math.max(0, offset) };
    void this.load();
  }

  private render(): void {
    const rows: HTMLElement[] = this.items.map((item) => this.row(item));
    if (!rows.length) {
      rows.push(h('li', { class: 'envd-lab-empty' }, this.problem ? '' : 'no builds yet'));
    }
    this.list.replaceChildren(...rows);
    const notes = Object.entries(this.errors).map(([builder, error]) =>
      h('div', { class: 'envd-lab-note', 'data-builder': builder }, `${builder}: ${error}`));
    if (this.problem) notes.unshift(h('div', { class: 'envd-lab-error', role: 'alert' }, this.problem));
    const { offset, limit } = this.query;
    const last = Math.min(offset + this.items.length, this.total);
    this.footer.replaceChildren(
      ...notes,
      h('div', { class: 'envd-lab-pager-row' },
        button('‹', 'previous page', () => this.page(offset - limit), 'envd-lab-prev'),
        h('span', { class: 'envd-lab-range', 'aria-live': 'polite' },
          this.total ? `${offset + 1}–${last} of ${this.total}` : '0 builds'),
        button('›', 'next page', () => this.page(offset + limit), 'envd-lab-next')));
    (this.footer.querySelector('.envd-lab-prev') as HTMLButtonElement).disabled = offset === 0;
    (this.footer.querySelector('.envd-lab-next') as HTMLButtonElement).disabled = last >= this.total;
  }

  private row(item: api.HistoryItem): HTMLElement {
    const took = item.created && item.completed ? duration(item.completed - item.created) : '';
    const counts = `${item.total} steps · ${item.cached} cached · ${item.ran} ran`;
    const row = h('li', {
      class: 'envd-lab-history-row', 'data-id': item.id, 'data-builder': item.builder, 'data-status': item.status,
      'data-source': item.source, onclick: () => this.actions.open(item)
    },
    h('span', { class: `envd-lab-status envd-lab-status-${item.status}`, title: item.status }, item.status),
    // The row's one focusable control (Enter/Space open it); a click anywhere on the row does the same.
    h('button', {
      type: 'button', class: 'envd-lab-row-main envd-lab-row-open',
      'aria-label': `build ${item.name || item.id} on ${item.builder}, ${item.status}: open details`
    },
    h('span', { class: 'envd-lab-row-name' }, item.name || item.id.slice(0, 12)),
    item.pinned ? h('span', { class: 'envd-lab-pinned' }, 'pinned') : null,
    h('span', { class: 'envd-lab-row-meta' }, `${item.builder} · ${when(item.created)}${took ? ` · ${took}` : ''}`),
    h('span', { class: 'envd-lab-row-counts' }, counts),
    item.error ? h('span', { class: 'envd-lab-row-error' }, item.error) : null),
    item.state ? button('+ cell', `insert a cell continuing from ${item.state}`, () => this.actions.insert(item.state!),
      'envd-lab-insert') : null);
    return row;
  }
}
