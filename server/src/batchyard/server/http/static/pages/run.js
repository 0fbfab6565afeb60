// One run: status and why, attempts, progress, the live log, results, payload, and the
// actions (Cancel, Run again) for roles that may change things.

import { call, stream } from "../api.js";
import { clear, el, errorBox, saveBlob, table } from "../dom.js";
import * as f from "../format.js";
import { LogView } from "./log_view.js";

function b64bytes(text) {
  const raw = atob(text || "");
  const out = new Uint8Array(raw.length);
  for (let i = 0; i < raw.length; i++) out[i] = raw.charCodeAt(i);
  return out;
}

async function downloadResult(runId, result) {
  const parts = [];
  await stream("RunService", "DownloadRunResult", { run: runId, name: result.name }, (m) => {
    if (m.data) parts.push(b64bytes(m.data));
  });
  saveBlob(parts, result.name.split("/").pop(), result.mediaType || "application/octet-stream");
}

function summary(run) {
  const status = f.status(run.status);
  const why = f.reason(run.reason);
  const items = [
    ["Status", el("span", { class: `status ${status.toLowerCase()}`, text: status + (run.cancelRequested && status === "RUNNING" ? " (cancel requested)" : "") })],
    ["Why", [why, run.message].filter(Boolean).join(" — ") || "—"],
    ["Definition", run.definitionName ? el("a", { href: `#/definitions/${encodeURIComponent(run.definitionName)}`, text: `${run.definitionName} v${run.definitionVersion}` }) : "(inline configuration)"],
    ["Queue", (run.config && run.config.queue) || "default"],
    ["Progress", el("span", {}, el("progress", { max: 100, value: run.progress || 0, "aria-label": "progress" }), ` ${run.progress || 0}%`)],
    ["Submitted", f.time(run.submitTime)],
    ["Started", f.time(run.startTime) || "—"],
    ["Ended", f.time(run.endTime) || "—"],
    ["Duration", f.duration(run.startTime, run.endTime) || "—"],
    ["Payload", run.payloadSize && run.payloadSize !== "0" ? f.bytes(run.payloadSize) : "none"],
  ];
  return el("dl", { class: "summary" }, items.flatMap(([k, v]) => [el("dt", { text: k }), el("dd", {}, v)]));
}

function attemptsTable(run, logs) {
  const rows = (run.attempts || []).map((a) =>
    el(
      "tr",
      {},
      el("td", { text: a.number }),
      el("td", { text: a.workerId || "" }),
      el("td", { text: f.status(a.status) }),
      el("td", { text: a.exitCode ?? "" }),
      el("td", { text: [f.reason(a.reason), a.message].filter(Boolean).join(" — ") }),
      el("td", { text: f.time(a.startTime) }),
      el("td", { text: f.time(a.endTime) }),
      el("td", {}, el("button", { type: "button", class: "link", text: "log", "aria-label": `log of attempt ${a.number}`, onclick: () => logs.jumpTo(a.number) })),
    ),
  );
  return table(["#", "Worker", "Status", "Exit code", "Reason", "Started", "Ended", ""], rows, "Attempts");
}

async function resultsSection(runId, box) {
  try {
    const reply = await call("RunService", "ListRunResults", { run: runId });
    const rows = (reply.results || []).map((r) =>
      el(
        "tr",
        {},
        el("td", { text: r.name }),
        el("td", { text: f.bytes(r.sizeBytes) }),
        el("td", { class: "mono", text: r.sha256 || "" }),
        el("td", { text: r.mediaType || "" }),
        el("td", {}, el("button", { type: "button", text: "Download", "aria-label": `download ${r.name}`, onclick: () => downloadResult(runId, r) })),
      ),
    );
    clear(box).append(rows.length ? table(["Name", "Size", "SHA-256", "Type", ""], rows, "Results") : el("p", { class: "muted", text: "No results (files the job writes to $BATCHYARD_OUTPUT_DIR)." }));
  } catch (error) {
    clear(box).append(errorBox(error));
  }
}

async function render(main, [runId], context) {
  const head = el("div");
  const actions = el("div", { class: "actions" });
  const problems = el("div");
  const attempts = el("div");
  const results = el("div");
  const logs = new LogView(runId);
  main.append(el("h1", {}, "Run ", el("span", { class: "mono", text: runId })), actions, problems, head, attempts, el("h2", { text: "Results" }), results, logs.node);
  let current = null;
  const draw = (run) => {
    current = run;
    clear(head).append(summary(run));
    clear(attempts).append(attemptsTable(run, logs));
    logs.setAttempts((run.attempts || []).length);
    clear(actions);
    if (!context.canWrite) return;
    if (!f.finished(run) && !run.cancelRequested) {
      actions.append(el("button", { type: "button", class: "danger", text: "Cancel", onclick: async () => {
        try {
          draw((await call("RunService", "CancelRun", { run: runId, reason: "cancelled from the console" })).run);
        } catch (error) { clear(problems).append(errorBox(error)); }
      } }));
    }
    actions.append(el("button", { type: "button", text: "Run again", onclick: async () => {
      try {
        const reply = await call("RunService", "SubmitRun", { rerunOf: runId });
        context.navigate(`#/runs/${reply.run.uuid}`);
      } catch (error) { clear(problems).append(errorBox(error)); }
    } }));
  };
  try {
    draw((await call("RunService", "GetRun", { run: runId })).run);
  } catch (error) {
    main.append(errorBox(error));
    return null;
  }
  resultsSection(runId, results);
  logs.start();
  const watch = new AbortController();
  (async () => {
    let revision = current.revision;
    while (!watch.signal.aborted && !f.finished(current)) {
      try {
        await stream("RunService", "WatchRun", { run: runId, afterRevision: revision }, (m) => {
          if (m.run) { revision = m.run.revision; draw(m.run); }
        }, watch.signal);
      } catch (error) {
        if (watch.signal.aborted) return;
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
    if (!watch.signal.aborted) resultsSection(runId, results);
  })();
  return () => { watch.abort(); logs.stop(); };
}

export default { name: "run", title: "Run", pattern: /^\/runs\/([^/?]+)$/, parent: "/runs", render };
