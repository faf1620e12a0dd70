// FailureWidget: a failed %%envd build's failure view (the step, its exit code, its last log lines, the
// user's line, and which filesystem the browser below it shows), drawn as the stepper draws its own.
function render({ model, el: host }) {
  host.classList.add("envd-widget", "envd-failure-widget");
  const title = el("div", { class: "envd-toolbar" });
  const failure = el("div", { class: "envd-failure" });
  host.append(title, failure);

  function draw() {
    const info = model.get("failure") || {};
    host.dataset.stateName = info.state_name || "";
    failure.dataset.shown = info.shown || "";
    title.replaceChildren(el("b", { text: `${info.state_name}: build failed` }));
    failure.replaceChildren(...failureView(info));
  }

  return watch(model, ["failure"], draw);
}

export default { render };
