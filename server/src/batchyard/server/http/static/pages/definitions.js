// Definitions: every job definition of the workspace, paged.

import { call } from "../api.js";
import { el, errorBox, table } from "../dom.js";
import * as f from "../format.js";

async function render(main) {
  main.append(el("h1", { text: "Definitions" }));
  try {
    const reply = await call("DefinitionService", "ListDefinitions", { pageSize: 200 });
    const rows = (reply.definitions || []).map((d) =>
      el(
        "tr",
        {},
        el("td", {}, el("a", { href: `#/definitions/${encodeURIComponent(d.name)}`, text: d.name })),
        el("td", { text: (d.config.type || "").replace("JOB_TYPE_", "").toLowerCase() }),
        el("td", { text: d.version }),
        el("td", { text: d.config.queue || "default" }),
        el("td", { text: d.description || "" }),
        el("td", { text: f.time(d.updateTime) }),
      ),
    );
    main.append(rows.length ? table(["Name", "Type", "Version", "Queue", "Description", "Updated"], rows) : el("p", { text: "No definitions yet: batchyard definitions create -f job.yaml" }));
  } catch (error) {
    main.append(errorBox(error));
  }
}

export default { name: "definitions", title: "Definitions", pattern: /^\/definitions$/, nav: { href: "/definitions", label: "Definitions" }, render };
