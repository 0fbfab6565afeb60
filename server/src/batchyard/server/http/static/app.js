// The console's shell: sign-in, navigation and the page registry (pages/index.js: one
// module per page). Routes live in the URL's hash: #/runs, #/runs/<uuid>, ...

import { session, signIn, signOut } from "./api.js";
import { clear, el, field } from "./dom.js";
import { PAGES } from "./pages/index.js";

const main = document.getElementById("main");
let cleanup = null;
let who = null;

function route() {
  const path = (location.hash || "#/runs").slice(1);
  const [bare, query = ""] = path.split("?");
  for (const page of PAGES) {
    const match = page.pattern.exec(bare);
    if (match) return { page, params: match.slice(1).map(decodeURIComponent), query: new URLSearchParams(query) };
  }
  return { page: PAGES[0], params: [], query: new URLSearchParams() };
}

function renderNav(current) {
  const nav = clear(document.getElementById("nav"));
  for (const page of PAGES.filter((p) => p.nav)) {
    nav.append(el("a", { href: `#${page.nav.href}`, "aria-current": page.nav.href === current ? "page" : null, text: page.nav.label }));
  }
  const whoBox = clear(document.getElementById("who"));
  if (who) {
    whoBox.append(`${who.tokenName} · ${who.role.toLowerCase()} · ${who.workspace} `);
    whoBox.append(el("button", { type: "button", class: "link", text: "Sign out", onclick: async () => { await signOut(); who = null; show(); } }));
  }
}

function signInPage() {
  clear(main);
  const input = el("input", { type: "password", name: "token", autocomplete: "off", required: true, placeholder: "byt_…" });
  const message = el("p", { role: "status" });
  const form = el(
    "form",
    {
      class: "signin",
      onsubmit: async (event) => {
        event.preventDefault();
        who = await signIn(input.value.trim());
        if (who) show();
        else message.textContent = "That token is not valid (or may not read this workspace).";
      },
    },
    el("h1", { text: "Sign in" }),
    el("p", { text: "Paste an API token (batchyard tokens create …), or open the link `batchyard dev` prints." }),
    field("Token", input),
    el("button", { type: "submit", text: "Sign in" }),
    message,
  );
  main.append(form);
  input.focus();
}

async function show() {
  document.body.dataset.ready = "";
  if (cleanup) {
    cleanup();
    cleanup = null;
  }
  if (!who) who = await session();
  if (!who) {
    renderNav("");
    signInPage();
    return;
  }
  const { page, params, query } = route();
  renderNav(page.nav ? page.nav.href : page.parent || "");
  document.title = `${page.title} · Batchyard`;
  clear(main);
  const context = {
    who,
    canWrite: who.role === "ADMIN" || who.role === "MEMBER",
    navigate: (hash) => { location.hash = hash; },
    query,
  };
  cleanup = (await page.render(main, params, context)) || null;
  document.body.dataset.route = location.hash;
  document.body.dataset.ready = page.name;
}

window.addEventListener("hashchange", show);
show();
