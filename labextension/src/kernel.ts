// The active notebook's kernel side of the panel: the comm target `envd-jupyter-panel` that
// `%load_ext envd_jupyter` registers. The panel opens the comm (the kernel closes it at once while
// the target is not registered yet), asks for the states, and hears every `%%envd` after that.
import { INotebookTracker, NotebookActions, NotebookPanel } from '@jupyterlab/notebook';
import { Kernel } from '@jupyterlab/services';
import { Signal, ISignal } from '@lumino/signaling';

import { Graph } from './api';

export const COMM_TARGET = 'envd-jupyter-panel';

export interface KernelState {
  name: string;
  cell_id: string;
  builder: string;
  status: string;
  graph: Graph | null;
}

export interface StepperPosition {
  state: string;
  position: string | null;
}

export interface KernelView {
  notebook: string; // the active notebook's path, "" when none
  connected: boolean; // the comm is open (the kernel loaded envd_jupyter)
  states: KernelState[];
  stepper: StepperPosition | null;
}

/** Follows the active notebook; emits what its kernel reports. */
export class KernelLink {
  private panel: NotebookPanel | null = null;
  private comm: Kernel.IComm | null = null;
  private opening = false;
  private readonly changedSignal = new Signal<this, KernelView>(this);
  view: KernelView = { notebook: '', connected: false, states: [], stepper: null };

  constructor(tracker: INotebookTracker) {
    tracker.currentChanged.connect((_, panel) => this.follow(panel), this);
    NotebookActions.executed.connect((_, { notebook, cell }) => {
      // A cell that loaded the extension may have registered the target: try again, once per such cell.
      if (this.panel?.content === notebook && !this.comm && cell.model.sharedModel.getSource().includes('envd')) {
        void this.open();
      }
    }, this);
    this.follow(tracker.currentWidget);
  }

  get changed(): ISignal<this, KernelView> {
    return this.changedSignal;
  }

  /** Ask the kernel to send its states again (after a restart of the panel, or by the user). */
  refresh(): void {
    if (this.comm) this.comm.send({ type: 'refresh' });
    else void this.open();
  }

  private follow(panel: NotebookPanel | null): void {
    if (panel === this.panel) return;
    this.panel?.sessionContext.kernelChanged.disconnect(this.onKernelChanged, this);
    this.panel = panel;
    this.closeComm();
    this.update({ notebook: panel?.context.path ?? '', connected: false, states: [], stepper: null });
    if (!panel) return;
    panel.sessionContext.kernelChanged.connect(this.onKernelChanged, this);
    void panel.sessionContext.ready.then(() => {
      if (this.panel === panel) void this.open();
    });
  }

  private onKernelChanged(): void {
    this.closeComm();
    this.update({ ...this.view, connected: false, states: [], stepper: null });
    void this.open();
  }

  private async open(): Promise<void> {
    const kernel = this.panel?.sessionContext.session?.kernel;
    if (!kernel || this.comm || this.opening) return;
    this.opening = true;
    const panel = this.panel;
    try {
      const comm = kernel.createComm(COMM_TARGET);
      comm.onMsg = (message) => {
        if (this.comm === comm) this.receive(message.content.data as any);
      };
      comm.onClose = () => {
        if (this.comm !== comm) return;
        this.comm = null;
        this.update({ ...this.view, connected: false });
      };
      this.comm = comm;
      await comm.open({ type: 'refresh' }).done;
      if (this.comm === comm && this.panel === panel) this.update({ ...this.view, connected: true });
    } catch {
      this.comm = null; // the kernel went away while opening: the next kernel change tries again
    } finally {
      this.opening = false;
    }
  }

  private receive(data: { type?: string; states?: KernelState[]; state?: string; position?: string | null }): void {
    if (data.type === 'states' && Array.isArray(data.states)) {
      this.update({ ...this.view, connected: true, states: data.states });
    } else if (data.type === 'stepper' && typeof data.state === 'string') {
      this.update({ ...this.view, stepper: { state: data.state, position: data.position ?? null } });
    }
  }

  private closeComm(): void {
    const comm = this.comm;
    this.comm = null;
    if (comm && !comm.isDisposed) {
      try {
        comm.close();
      } catch {
        // the kernel is already gone
      }
    }
  }

  private update(view: KernelView): void {
    this.view = view;
    this.changedSignal.emit(view);
  }

  dispose(): void {
    this.closeComm();
    Signal.clearData(this);
  }
}
