"""JupyterLab in Debian's chromium shows a kernel's anywidget widget and HTML output."""

from pathlib import Path

import pytest
from labdriver import drive, png_size, write_notebook

# A widget defined inline (ESM as text, as the project's widgets ship theirs): it renders the
# model's state and follows later changes, so its final text proves kernel → browser sync.
PROBE_CELL = '''\
import anywidget
import traitlets
from IPython.display import HTML, display

class Probe(anywidget.AnyWidget):
    _esm = """
    function render({ model, el }) {
      const node = document.createElement("div");
      node.className = "envdj-probe-widget";
      const draw = () => { node.textContent = `hello from ${model.get("name")}, steps ${model.get("steps")}`; };
      draw();
      model.on("change:steps", draw);
      el.appendChild(node);
    }
    export default { render };
    """
    name = traitlets.Unicode("").tag(sync=True)
    steps = traitlets.Int(0).tag(sync=True)

display(HTML('<p class="envdj-probe-html">plain <b>HTML</b> output</p>'))
probe = Probe(name="the kernel")
display(probe)
for step in range(1, 4):
    probe.steps = step
'''
WIDGET_DONE = '.envdj-probe-widget:has-text("steps 3")'
HTML_OUTPUT = ".envdj-probe-html"


@pytest.mark.timeout(600)
def test_anywidget_and_html_render_in_chromium(jupyter_lab):
    notebook = write_notebook(jupyter_lab.root_dir / "probe.ipynb", PROBE_CELL)

    facts = drive(jupyter_lab, notebook, wait_for=[WIDGET_DONE, HTML_OUTPUT], screenshot="lab-anywidget-probe")

    assert facts["prompts"] == ["[1]:"]
    assert facts["stderr"] == [] and facts["pageErrors"] == []
    [widget] = facts["selectors"][WIDGET_DONE]["shown"]
    assert widget["text"] == "hello from the kernel, steps 3"
    assert widget["visible"] and widget["width"] > 0 and widget["height"] > 0
    [html] = facts["selectors"][HTML_OUTPUT]["shown"]
    assert html["text"] == "plain HTML output" and html["visible"]
    screenshot = Path(facts["screenshot"])
    assert png_size(screenshot) == (1400, 900)
    # A blank or half-drawn page compresses to a few kB; Lab with a notebook is far larger.
    assert screenshot.stat().st_size > 30_000
