// BrowserWidget: a lazy directory tree and a file viewer over a solved stage (Python reads the
// stage through the caller's callbacks when asked: {type: "list"|"open", path}), and a logs tab.
function humanSize(size) {
  const units = ["bytes", "KiB", "MiB", "GiB"];
  let value = size;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit ? `${value.toFixed(1)} ${units[unit]}` : `${value} bytes`;
}

function render({ model, el: host }) {
  host.classList.add("envd-widget", "envd-browser-widget");
  const opened = new Set([model.get("root")]); // directories shown open in the tree
  let wanted = ""; // the file asked for, until `file` answers
  const tree = el("div", { class: "envd-tree envd-panel" });
  const viewer = el("div", { class: "envd-viewer envd-panel" });
  const filesPane = el("div", { class: "envd-browser-body" }, tree, viewer);
  const logsPane = el("div", { hidden: true });
  const tabs = el("div", { class: "envd-tabs" });
  const title = el("div", { style: "font-weight:600" });
  const showTab = (name) => {
    filesPane.hidden = name !== "files";
    logsPane.hidden = name !== "logs";
    for (const tab of tabs.children) tab.classList.toggle("envd-active", tab.dataset.tab === name);
  };
  for (const [name, label] of [["files", "Files"], ["logs", "Step logs"]]) {
    tabs.append(el("span", { class: "envd-tab", "data-tab": name, text: label, onclick: () => showTab(name) }));
  }
  host.append(title, tabs, filesPane, logsPane);
  showTab("files");

  function toggle(path) {
    if (opened.has(path)) opened.delete(path);
    else {
      opened.add(path);
      if (!(path in model.get("listings"))) model.send({ type: "list", path });
    }
    drawTree();
  }

  function branch(path) {
    const listing = model.get("listings")[path];
    if (!listing) return el("ul", {}, el("li", { class: "envd-muted", text: "loading…" }));
    const items = listing.entries.map((entry) => {
      const label = entry.name + (entry.is_dir ? "/" : "") + (entry.is_symlink ? ` → ${entry.linkname}` : "");
      if (entry.is_dir) {
        const open = opened.has(entry.path);
        return el("li", {}, el("span", { text: `${open ? "▾" : "▸"} ${label}`, onclick: () => toggle(entry.path) }),
          open ? branch(entry.path) : null);
      }
      const file = model.get("file");
      return el("li", {}, el("span", {
        text: `  ${label}`, title: humanSize(entry.size),
        class: file && file.path === entry.path ? "envd-open-file" : null,
        onclick: entry.is_symlink ? null : () => openFile(entry.path),
      }));
    });
    if (listing.more) items.push(el("li", { class: "envd-muted", text: `… ${listing.more} more` }));
    if (listing.error) items.push(el("li", { class: "envd-muted", text: listing.error }));
    return el("ul", {}, ...items);
  }

  function drawTree() {
    tree.replaceChildren(el("div", { class: "envd-muted", text: model.get("root") }), branch(model.get("root")));
  }

  function openFile(path) {
    wanted = path;
    viewer.replaceChildren(el("div", { class: "envd-muted", text: `reading ${path}…` }));
    model.send({ type: "open", path });
  }

  function drawFile() {
    const file = model.get("file");
    if (!file || !file.path) {
      viewer.replaceChildren(el("div", { class: "envd-muted", text: "Click a file to view it." }));
      return;
    }
    if (wanted && wanted !== file.path) return; // an older answer
    wanted = "";
    viewer.replaceChildren(el("div", { style: "font-weight:600", text: file.path }),
      el("div", { class: "envd-muted", text: file.about }),
      file.text ? el("pre", { text: file.text }) : null);
    drawTree();
  }

  function drawLogs() {
    const styles = model.get("styles");
    const logs = model.get("logs") || [];
    logsPane.replaceChildren(...(logs.length ? logs.map((vertex) => el("div", { style: "margin:4px 0" },
      el("div", { class: "envd-toolbar" }, chip(stateOf(vertex), styles), el("span", { text: vertex.name || vertex.digest }),
        el("span", { class: "envd-muted", text: durationText(vertex) })),
      logBlock(vertex))) : [el("div", { class: "envd-muted", text: "No step logs." })]));
  }

  const stops = [
    watch(model, ["listings", "root"], drawTree),
    watch(model, ["file"], drawFile),
    watch(model, ["logs"], drawLogs),
    watch(model, ["title"], () => { title.textContent = model.get("title"); }),
  ];
  return () => stops.forEach((stop) => stop());
}

export default { render };
