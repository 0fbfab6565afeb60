// One definition: its configuration, every version with a diff between two, a submit
// form (args, env, payload file) for roles that may submit, and its recent runs.

import { call } from "../api.js";
import { clear, el, errorBox, field, select, table } from "../dom.js";
import * as f from "../format.js";

function pretty(definition) {
  return JSON.stringify({ description: definition.description || "", config: definition.config }, null, 2).split("\n");
}

// A line diff (longest common subsequence): [kind, text] with kind " ", "-" or "+".
export function diff(a, b) {
  const n = a.length, m = b.length;
  const lcs = Array.from({ length: n + 1 }, () => new Array(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  const out = [];
  let i = 0, j = 0;
  while (i < n && j < m) {
    if (a[i] === b[j]) { out.push([" ", a[i]]); i++; j++; }
    else if (lcs[i + 1][j] >= lcs[i][j + 1]) out.push(["-", a[i++]]);
    else out.push(["+", b[j++]]);
  }
  while (i < n) out.push(["-", a[i++]]);
  while (j < m) out.push(["+", b[j++]]);
  return out;
}

function versionsSection(name, latest) {
  const options = [];
  for (let v = latest; v >= 1; v--) options.push([String(v), `v${v}`]);
  const from = select("from", options, String(Math.max(1, latest - 1)));
  const to = select("to", options, String(latest));
  const out = el("pre", { class: "diff", "aria-label": "difference between the versions" });
  const show = async () => {
    try {
      const [a, b] = await Promise.all([from.value, to.value].map((v) => call("DefinitionService", "GetDefinition", { definition: name, version: v })));
      clear(out).append(...diff(pretty(a.definition), pretty(b.definition)).map(([kind, text]) => el("span", { class: kind === "+" ? "add" : kind === "-" ? "del" : "same", text: `${kind} ${text}\n` })));
    } catch (error) {
      clear(out).append(errorBox(error));
    }
  };
  from.addEventListener("change", show);
  to.addEventListener("change", show);
  show();
  return el("section", { "aria-labelledby": "versions-h" }, el("h2", { id: "versions-h", text: `Versions (${latest})` }), el("div", { class: "filters" }, field("From", from), field("To", to)), out);
}

function submitForm(name, context) {
  const args = el("textarea", { name: "args", rows: 3, placeholder: "one argument per line" });
  const env = el("textarea", { name: "env", rows: 3, placeholder: "KEY=value, one per line" });
  const payload = el("input", { type: "file", name: "payload" });
  const message = el("div", { role: "status" });
  const form = el(
    "form",
    {
      class: "submit",
      onsubmit: async (event) => {
        event.preventDefault();
        const request = { definition: name, overrides: {} };
        const argList = args.value.split("\n").filter((line) => line.length);
        if (argList.length) request.overrides.args = argList;
        const envMap = {};
        for (const line of env.value.split("\n").filter((l) => l.includes("="))) {
          const at = line.indexOf("=");
          envMap[line.slice(0, at).trim()] = line.slice(at + 1);
        }
        if (Object.keys(envMap).length) request.overrides.env = envMap;
        if (payload.files.length) {
          const data = new Uint8Array(await payload.files[0].arrayBuffer());
          let text = "";
          for (const byte of data) text += String.fromCharCode(byte);
          request.payload = btoa(text);
        }
        try {
          const reply = await call("RunService", "SubmitRun", request);
          context.navigate(`#/runs/${reply.run.uuid}`);
        } catch (error) {
          clear(message).append(errorBox(error));
        }
      },
    },
    el("h2", { text: "Submit a run" }),
    field("Arguments", args),
    field("Environment", env),
    field("Payload file", payload),
    el("button", { type: "submit", text: "Submit" }),
    message,
  );
  return form;
}

async function recentRuns(name, box) {
  try {
    const reply = await call("RunService", "ListRuns", { definition: name, pageSize: 10 });
    const rows = (reply.runs || []).map((r) => el("tr", {}, el("td", {}, el("a", { href: `#/runs/${r.uuid}`, text: r.uuid.slice(0, 8) })), el("td", { text: f.status(r.status) }), el("td", { text: `v${r.definitionVersion}` }), el("td", { text: f.time(r.submitTime) })));
    clear(box).append(table(["Run", "Status", "Version", "Submitted"], rows, "Recent runs"));
  } catch (error) {
    clear(box).append(errorBox(error));
  }
}

async function render(main, [name], context) {
  main.append(el("h1", {}, "Definition ", el("span", { text: name })));
  let definition;
  try {
    definition = (await call("DefinitionService", "GetDefinition", { definition: name })).definition;
  } catch (error) {
    main.append(errorBox(error));
    return;
  }
  const latest = Number(definition.version);
  main.append(
    el("p", { class: "muted", text: `${definition.uuid} · version ${latest} · updated ${f.time(definition.updateTime)}` }),
    el("pre", { class: "config", text: pretty(definition).join("\n") }),
  );
  if (context.canWrite) main.append(submitForm(name, context));
  main.append(versionsSection(name, latest));
  const runs = el("div");
  main.append(runs);
  recentRuns(name, runs);
}

export default { name: "definition", title: "Definition", pattern: /^\/definitions\/([^/?]+)$/, parent: "/definitions", render };
