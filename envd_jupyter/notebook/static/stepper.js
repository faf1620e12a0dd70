// StepperWidget: Next / Continue / Stop over a state being stepped through. Each button sends one
// message ({type: "next" | "continue" | "stop"}); the kernel runs the step on a thread of its own and
// answers through `status`, `position`, `message` and `failure`. The DAG and the result browser
// shown with it are their own widgets, updated by the kernel at each pause.
const ENDED = ["done", "failed", "stopped"];

function render({ model, el: host }) {
  host.classList.add("envd-widget", "envd-stepper-widget");
  host.dataset.stateName = model.get("state_name");
  const buttons = [];
  const send = (type) => () => {
    if (type !== "stop") buttons.slice(0, 2).forEach((b) => { b.disabled = true; }); // until the kernel answers
    model.send({ type });
  };
  const next = button("Next", send("next"), "solve the next step in dependency order");
  const resume = button("Continue", send("continue"), "run on to the next breakpoint or the end");
  const stop = button("Stop", send("stop"), "end the stepped build");
  buttons.push(next, resume, stop);
  next.classList.add("envd-step-next");
  resume.classList.add("envd-step-continue");
  stop.classList.add("envd-step-stop");
  const position = el("span", { class: "envd-stepper-position" });
  const breakpoints = el("span", { class: "envd-muted envd-stepper-breakpoints" });
  const message = el("div", { class: "envd-muted envd-stepper-message" });
  const failure = el("div", { class: "envd-failure", hidden: true });
  host.append(el("div", { class: "envd-toolbar" }, el("b", { text: model.get("state_name") }), next, resume, stop,
    position, breakpoints), message, failure);

  function draw() {
    const status = model.get("status");
    const at = model.get("position") || {};
    host.dataset.status = status;
    next.disabled = resume.disabled = status === "running" || ENDED.includes(status);
    stop.disabled = ENDED.includes(status);
    const where = at.total ? `step ${at.index}/${at.total}: ${at.name}${at.cached ? " (cached)" : ""}` : "";
    position.textContent = {
      running: `running${where ? ` (after ${where})` : ""}`,
      paused: `paused at ${where}`,
      done: `done: ${where}`,
      failed: `failed at ${where}`,
      stopped: "stopped",
    }[status] || status;
    const marks = model.get("breakpoints") || [];
    breakpoints.textContent = marks.length ? `breakpoints: ${marks.join(", ")}` : "no breakpoints";
    message.textContent = model.get("message");
    message.hidden = !model.get("message");
    drawFailure(model.get("failure") || {});
  }

  function drawFailure(info) {
    failure.hidden = !info.step;
    if (!info.step) return;
    const code = info.exit_code === null || info.exit_code === undefined ? "" : ` with exit code ${info.exit_code}`;
    failure.replaceChildren(
      el("h4", { text: `✗ step '${info.step}' failed${code}` }),
      info.location ? el("div", { class: "envd-muted", text: `made by ${info.location}` }) : null,
      info.log_tail && info.log_tail.length ? el("pre", { class: "envd-log", text: info.log_tail.join("\n") }) : null,
      info.note ? el("div", { class: "envd-failure-note", text: info.note }) : null,
    );
  }

  const stops = [watch(model, ["status", "position", "breakpoints", "message", "failure"], draw)];
  return () => stops.forEach((stop) => stop());
}

export default { render };
