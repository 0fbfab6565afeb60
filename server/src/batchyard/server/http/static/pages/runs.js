// Runs: the newest first, filtered, paged by token (fast at any depth), refreshed live.

import { call } from "../api.js";
import { clear, el, errorBox, field, select, table } from "../dom.js";
import * as f from "../format.js";

const REFRESH_MS = 2000;

function filtersFrom(query) {
  return {
    status: query.get("status") || "",
    definition: query.get("definition") || "",
    queue: query.get("queue") || "",
    from: query.get("from") || "",
    to: query.get("to") || "",
  };
}

function request(filters, pageToken) {
  const body = { pageSize: 50, pageToken };
  if (filters.status) body.statuses = [`RUN_STATUS_${filters.status}`];
  if (filters.definition) body.definition = filters.definition;
  if (filters.queue) body.queue = filters.queue;
  if (filters.from) body.submitTimeFrom = new Date(filters.from).toISOString();
  if (filters.to) body.submitTimeTo = new Date(filters.to).toISOString();
  return body;
}

function row(run) {
  const status = f.status(run.status);
  const attempts = (run.attempts || []).length;
  return el(
    "tr",
    { dataset: { run: run.uuid } },
    el("td", {}, el("a", { href: `#/runs/${run.uuid}`, text: run.uuid.slice(0, 8) })),
    el("td", {}, el("span", { class: `status ${status.toLowerCase()}`, text: status })),
    el("td", { text: run.definitionName ? `${run.definitionName} v${run.definitionVersion}` : "(inline)" }),
    el("td", { text: (run.config && run.config.queue) || "default" }),
    el("td", { text: attempts }),
    el("td", {}, el("progress", { max: 100, value: run.progress || 0, "aria-label": "progress" }), ` ${run.progress || 0}%`),
    el("td", { text: f.time(run.submitTime) }),
    el("td", { text: f.time(run.startTime) }),
    el("td", { text: f.time(run.endTime) }),
    el("td", { text: f.duration(run.startTime, run.endTime) }),
  );
}

function filterForm(filters, navigate) {
  const status = select("status", [["", "any"], ...f.STATUSES.map((s) => [s, s.toLowerCase()])], filters.status);
  const definition = el("input", { name: "definition", value: filters.definition, placeholder: "name or uuid" });
  const queue = el("input", { name: "queue", value: filters.queue, placeholder: "default" });
  const from = el("input", { name: "from", type: "datetime-local", value: filters.from });
  const to = el("input", { name: "to", type: "datetime-local", value: filters.to });
  return el(
    "form",
    {
      class: "filters",
      role: "search",
      onsubmit: (event) => {
        event.preventDefault();
        const query = new URLSearchParams();
        for (const [key, node] of Object.entries({ status, definition, queue, from, to })) {
          if (node.value) query.set(key, node.value);
        }
        navigate(`#/runs?${query}`);
      },
    },
    field("Status", status),
    field("Definition", definition),
    field("Queue", queue),
    field("Submitted from", from),
    field("Submitted before", to),
    el("button", { type: "submit", text: "Filter" }),
  );
}

async function render(main, _params, context) {
  const filters = filtersFrom(context.query);
  const tokens = [""];
  let page = 0;
  const body = el("tbody");
  const status = el("p", { class: "muted", role: "status" });
  const prev = el("button", { type: "button", text: "← Newer", disabled: true });
  const next = el("button", { type: "button", text: "Older →", disabled: true });
  const problems = el("div");
  main.append(
    el("h1", { text: "Runs" }),
    filterForm(filters, context.navigate),
    problems,
    table(["Run", "Status", "Definition", "Queue", "Attempts", "Progress", "Submitted", "Started", "Ended", "Duration"], [], ""),
    el("div", { class: "pager" }, prev, next, status),
  );
  main.querySelector("table").replaceChild(body, main.querySelector("tbody"));
  let stopped = false;
  async function load() {
    try {
      const reply = await call("RunService", "ListRuns", request(filters, tokens[page]));
      clear(problems);
      clear(body).append(...(reply.runs || []).map(row));
      if (!(reply.runs || []).length) body.append(el("tr", {}, el("td", { colspan: 10, text: "No runs match." })));
      tokens[page + 1] = reply.nextPageToken || "";
      next.disabled = !reply.nextPageToken;
      prev.disabled = page === 0;
      status.textContent = `page ${page + 1} · updated ${new Date().toLocaleTimeString(undefined, { hour12: false })}`;
    } catch (error) {
      clear(problems).append(errorBox(error));
    }
  }
  next.addEventListener("click", () => { page += 1; load(); });
  prev.addEventListener("click", () => { page = Math.max(0, page - 1); load(); });
  await load();
  const timer = setInterval(() => { if (!stopped && !document.hidden) load(); }, REFRESH_MS);
  return () => { stopped = true; clearInterval(timer); };
}

export default {
  name: "runs",
  title: "Runs",
  pattern: /^\/runs$/,
  nav: { href: "/runs", label: "Runs" },
  render,
};
