// The envd side panel plugin: adds the panel to the left area, follows the active notebook and
// offers "insert cell" (a %%envd cell continuing from a state) as a command.
import { ILayoutRestorer, JupyterFrontEnd, JupyterFrontEndPlugin } from '@jupyterlab/application';
import { INotebookTracker, NotebookActions } from '@jupyterlab/notebook';
import { LabIcon } from '@jupyterlab/ui-components';

import { KernelLink } from './kernel';
import { EnvdPanel } from './panel';

const ICON_SVG = `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24" width="16" height="16">
<g class="jp-icon3" fill="#616161"><rect x="3" y="3" width="8" height="5" rx="1"/><rect x="13" y="3" width="8" height="5" rx="1"/>
<rect x="8" y="16" width="8" height="5" rx="1"/><path d="M7 8v3.5h10V8h-1.5v2h-7V8zM11.25 11.5h1.5V16h-1.5z"/></g></svg>`;

export const envdIcon = new LabIcon({ name: 'envd-jupyter:panel', svgstr: ICON_SVG });

export const COMMANDS = { open: 'envd-jupyter:open-panel', insert: 'envd-jupyter:insert-cell' };

const plugin: JupyterFrontEndPlugin<void> = {
  id: 'envd-jupyter:panel',
  description: 'envd side panel: builders, the active notebook\'s states, build history.',
  autoStart: true,
  requires: [INotebookTracker],
  optional: [ILayoutRestorer],
  activate: (app: JupyterFrontEnd, tracker: INotebookTracker, restorer: ILayoutRestorer | null) => {
    const link = new KernelLink(tracker);
    const insert = (code: string) => void app.commands.execute(COMMANDS.insert, { code });
    const panel = new EnvdPanel(link, insert);
    panel.title.icon = envdIcon;
    app.shell.add(panel, 'left', { rank: 600 });
    restorer?.add(panel, panel.id);

    app.commands.addCommand(COMMANDS.open, {
      label: 'Show the envd panel',
      execute: () => app.shell.activateById(panel.id)
    });
    app.commands.addCommand(COMMANDS.insert, {
      label: 'Insert a %%envd cell',
      caption: 'Insert a code cell below the active one with the given code',
      isEnabled: () => tracker.currentWidget !== null,
      execute: (args) => {
        const notebook = tracker.currentWidget;
        if (!notebook) return;
        NotebookActions.insertBelow(notebook.content);
        NotebookActions.changeCellType(notebook.content, 'code');
        notebook.content.activeCell?.model.sharedModel.setSource(String(args.code ?? ''));
        app.shell.activateById(notebook.id);
        notebook.content.activeCell?.editor?.focus();
      }
    });
  }
};

export default plugin;
