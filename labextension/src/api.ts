// The server extension's REST and WebSocket API (envd_jupyter.server), reached only through the
// Jupyter server: ServerConnection carries its token/XSRF, the WebSocket its ws URL and token.
import { URLExt } from '@jupyterlab/coreutils';
import { ServerConnection } from '@jupyterlab/services';

export interface BuilderInfo {
  name: string;
  address: string;
  healthy: boolean;
  version: string;
  platforms: string[];
  caps: string[];
  in_flight: number;
  disk_bytes: number;
  error: string;
}

export interface HistoryItem {
  id: string;
  builder: string;
  name: string;
  status: string; // running | ok | failed | cancelled
  created: number | null;
  completed: number | null;
  total: number;
  cached: number;
  ran: number;
  error: string;
  pinned: boolean;
  source: string; // daemon | archive | both
  notebook?: string | null;
  state?: string | null;
  cell_id?: string | null;
}

export interface Step {
  digest: string;
  index: number;
  name: string;
  state?: string;
  started: number | null;
  completed: number | null;
  duration: number | null;
  cached: boolean;
  error: string;
  log_tail?: string[];
}

export interface Graph {
  nodes: { id: string; kind: string; name: string; location?: string | null }[];
  edges: { source: string; target: string; index?: number }[];
  head?: string | null;
}

export interface SchedulingCycle {
  profile?: string;
  candidates: string[];
  filters: { filter: string; removed: string[] }[];
  scores: Record<string, { total: number; scorers: Record<string, { raw: number; weighted: number }> }>;
  picked: string[];
  error?: string;
}

export interface HistoryDetail extends HistoryItem {
  steps: Step[];
  graph: Graph | null;
  scheduling: SchedulingCycle[] | null;
  logs: unknown[]; // [{digest, name, lines}]
  notes?: string[]; // what the server could not read (a daemon that went away, ...)
}

export interface HistoryPage {
  items: HistoryItem[];
  total: number;
  errors: Record<string, string>;
}

export interface HistoryQuery {
  builder?: string;
  status?: string;
  name?: string;
  offset: number;
  limit: number;
}

export interface HistoryEvent {
  type: 'history';
  builder: string;
  kind: string; // started | completed | deleted
  item: HistoryItem;
}

/** One line saying why a request failed (the server's message when it sent one). */
export class ApiError extends Error {}

const API = 'envd/api';

async function request<T>(path: string, init: RequestInit = {}): Promise<T> {
  const settings = ServerConnection.makeSettings();
  const url = URLExt.join(settings.baseUrl, API, path);
  let response: Response;
  try {
    // 'no-cache' (revalidate) is enough: the server sends no caching headers, so the default 'no-store'
    // would only add a bare timestamp parameter to every request.
    response = await ServerConnection.makeRequest(url, { cache: 'no-cache', ...init }, settings);
  } catch (error) {
    throw new ApiError(`the Jupyter server did not answer: ${(error as Error).message}`);
  }
  const text = await response.text();
  let data: any = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch {
    data = { message: text.slice(0, 200) };
  }
  if (!response.ok) {
    const reason = response.status === 404 && !data.message ? 'the envd server extension is not enabled' : data.message;
    throw new ApiError(`${response.status}: ${reason || response.statusText}`);
  }
  return data as T;
}

export async function builders(): Promise<BuilderInfo[]> {
  return (await request<{ builders: BuilderInfo[] }>('builders')).builders;
}

export async function history(query: HistoryQuery): Promise<HistoryPage> {
  const params = new URLSearchParams({ offset: String(query.offset), limit: String(query.limit) });
  for (const key of ['builder', 'status', 'name'] as const) {
    if (query[key]) params.set(key, query[key] as string);
  }
  return request<HistoryPage>(`history?${params.toString()}`);
}

const itemPath = (builder: string, id: string) => `history/${encodeURIComponent(builder)}/${encodeURIComponent(id)}`;

export async function detail(builder: string, id: string): Promise<HistoryDetail> {
  return (await request<{ item: HistoryDetail }>(itemPath(builder, id))).item;
}

export async function pin(builder: string, id: string, pinned: boolean): Promise<void> {
  await request(`${itemPath(builder, id)}/pin`, { method: 'POST', body: JSON.stringify({ pinned }) });
}

export async function remove(builder: string, id: string): Promise<void> {
  await request(itemPath(builder, id), { method: 'DELETE' });
}

const RECONNECT_MS = [1000, 2000, 5000, 10000, 30000];

/** The server's live event stream; reconnects with growing pauses until disposed. */
export class EventStream {
  private socket: WebSocket | null = null;
  private attempts = 0;
  private timer = 0;
  private disposed = false;

  constructor(
    private readonly onEvent: (event: HistoryEvent) => void,
    private readonly onState: (connected: boolean) => void
  ) {
    this.connect();
  }

  private connect(): void {
    const settings = ServerConnection.makeSettings();
    let url = URLExt.join(settings.wsUrl, API, 'events');
    if (settings.token) url += `?token=${encodeURIComponent(settings.token)}`;
    const socket = new settings.WebSocket(url);
    this.socket = socket;
    socket.onopen = () => {
      this.attempts = 0;
      this.onState(true);
    };
    socket.onmessage = (message: MessageEvent) => {
      try {
        const event = JSON.parse(String(message.data));
        if (event?.type === 'history') this.onEvent(event as HistoryEvent);
      } catch {
        // not JSON: not ours to show
      }
    };
    socket.onclose = () => {
      this.onState(false);
      if (this.disposed) return;
      const pause = RECONNECT_MS[Math.min(this.attempts, RECONNECT_MS.length - 1)];
      this.attempts += 1;
      this.timer = window.setTimeout(() => this.connect(), pause);
    };
  }

  dispose(): void {
    this.disposed = true;
    window.clearTimeout(this.timer);
    this.socket?.close();
  }
}
