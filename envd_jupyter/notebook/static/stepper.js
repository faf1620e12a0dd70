// StepperWidget: Next / Continue / Stop over a state being stepped through. Each button sends one
// message ({type: "next" | "continue" | "stop"}); the kernel runs the step on a thread of its own and
// answers through `status`, `headline`, `message` and `failure`. The DAG and the result browser
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
    host.dataset.status = status;
    next.disabled = resume.disabled = status === "running" || ENDED.includes(status);
    stop.disabled = ENDED.includes(status);
    position.textContent = model.get("headline") || status; // worded by _stepper_view.stepper_headline
    const marks = model.get("breakpoints") || [];
    breakpoints.textContent = marks.length ? `breakpoints: ${marks.join(", ")}` : "no breakpoints";
    message.textContent = model.get("message");
    message.hidden = !model.get("message");
    drawFailure(model.get("failure") || {});
  }

  function drawFailure(info) {
    failure.hidden = !info.step;
    if (!info.step) return;
    failure.dataset.shown = info.shown || "";
    failure.replaceChildren(...failureView(info));
  }

  const stops = [watch(model, ["status", "headline", "breakpoints", "message", "failure"], draw)];
  return () => stops.forEach((stop) => stop());
}

export default { render };
