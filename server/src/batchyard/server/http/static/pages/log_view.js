// A run's log: followed live with TailLogs (a stream, not polling), filtered by level,
// stream and attempt on the server, searched in the browser, rendered windowed (only the
// visible lines are in the DOM, so 100,000 lines scroll smoothly), always as text.

import { call, stream } from "../api.js";
import { clear, el, field, saveBlob, select } from "../dom.js";
import * as f from "../format.js";

const LINE = 18; // px, the fixed height of a line (console.css .log .line)
const STREAMS = ["STDOUT", "STDERR", "SYSTEM"];

function lineText(e) {
  return `${e.time || ""} [${e.attempt}] ${f.streamName(e.stream)} ${f.level(e.level)}: ${e.message || ""}`;
}

export class LogView {
  constructor(runId) {
    this.runId = runId;
    this.entries = [];
    this.shown = [];
    this.controller = null;
    this.ended = false;
    this.level = "";
    this.attempt = 0;
    this.streams = new Set(STREAMS);
    this.search = "";
    this.build();
  }

  build() {
    this.levelSelect = select("level", [["", "all levels"], ["LOG_LEVEL_INFO", "info and up"], ["LOG_LEVEL_WARNING", "warning and up"], ["LOG_LEVEL_ERROR", "errors only"]], "");
    this.levelSelect.addEventListener("change", () => { this.level = this.levelSelect.value; this.restart(); });
    this.attemptSelect = select("attempt", [["0", "all attempts"]], "0");
    this.attemptSelect.addEventListener("change", () => { this.attempt = Number(this.attemptSelect.value); this.restart(); });
    const streamBoxes = STREAMS.map((name) => {
      const box = el("input", { type: "checkbox", name: `stream-${name.toLowerCase()}`, checked: true });
      box.addEventListener("change", () => {
        if (box.checked) this.streams.add(name);
        else this.streams.delete(name);
        this.restart();
      });
      return el("label", { class: "check" }, box, ` ${name.toLowerCase()}`);
    });
    this.searchInput = el("input", { type: "search", name: "search", placeholder: "text in the line" });
    this.searchInput.addEventListener("input", () => { this.search = this.searchInput.value.toLowerCase(); this.refilter(); });
    this.follow = el("input", { type: "checkbox", name: "follow", checked: true });
    this.follow.addEventListener("change", () => this.draw());
    const download = el("button", { type: "button", text: "Download whole log", onclick: () => this.download() });
    this.status = el("span", { class: "muted", role: "status", "aria-live": "polite" });
    this.viewport = el("div", { class: "log", tabindex: 0, role: "log", "aria-label": "Log lines" });
    this.spacer = el("div", { class: "spacer" });
    this.viewport.append(this.spacer);
    this.viewport.addEventListener("scroll", () => {
      const bottom = this.viewport.scrollTop + this.viewport.clientHeight >= this.shown.length * LINE - LINE;
      if (!bottom && this.follow.checked) this.follow.checked = false;
      this.draw(false);
    });
    this.node = el(
      "section",
      { "aria-labelledby": "log-h" },
      el("h2", { id: "log-h", text: "Log" }),
      el("div", { class: "filters" }, field("Level", this.levelSelect), field("Attempt", this.attemptSelect),
        el("fieldset", {}, el("legend", { text: "Streams" }), ...streamBoxes),
        field("Search", this.searchInput), el("label", { class: "check" }, this.follow, " follow"), download),
      this.status,
      this.viewport,
    );
  }

  setAttempts(count) {
    const current = this.attemptSelect.value;
    if (this.attemptSelect.options.length === count + 1) return;
    clear(this.attemptSelect).append(el("option", { value: "0", text: "all attempts" }));
    for (let i = 1; i <= count; i++) this.attemptSelect.append(el("option", { value: String(i), text: `attempt ${i}` }));
    this.attemptSelect.value = current;
  }

  jumpTo(attempt) {
    this.attemptSelect.value = String(attempt);
    this.attempt = attempt;
    this.restart();
    this.viewport.focus();
  }

  request(after) {
    const body = { run: this.runId };
    if (this.level) body.minLevel = this.level;
    if (this.attempt) body.attempt = this.attempt;
    if (this.streams.size < STREAMS.length) body.streams = [...this.streams].map((s) => `LOG_STREAM_${s}`);
    if (after) body.after = after;
    return body;
  }

  start() {
    this.controller = new AbortController();
    const signal = this.controller.signal;
    let after = null;
    const follow = async () => {
      while (!signal.aborted) {
        try {
          this.status.textContent = "following…";
          await stream("LogService", "TailLogs", this.request(after), (message) => {
            if (message.position) after = message.position;
            if (message.entries && message.entries.length) this.add(message.entries);
          }, signal);
          this.ended = true;
          this.status.textContent = `${this.entries.length} lines · end of log`;
          return;
        } catch (error) {
          if (signal.aborted) return;
          this.status.textContent = `${error.message}; reconnecting…`;
          await new Promise((resolve) => setTimeout(resolve, 1000));
        }
      }
    };
    follow();
  }

  restart() {
    this.stop();
    this.entries = [];
    this.shown = [];
    this.ended = false;
    this.draw();
    this.start();
  }

  stop() {
    if (this.controller) this.controller.abort();
  }

  add(entries) {
    for (const entry of entries) {
      this.entries.push(entry);
      if (this.matches(entry)) this.shown.push(entry);
    }
    this.status.textContent = `${this.entries.length} lines${this.ended ? " · end of log" : " · following…"}`;
    this.draw();
  }

  matches(entry) {
    return !this.search || (entry.message || "").toLowerCase().includes(this.search);
  }

  refilter() {
    this.shown = this.entries.filter((e) => this.matches(e));
    this.draw();
  }

  draw(scroll = true) {
    const total = this.shown.length;
    this.spacer.style.height = `${total * LINE}px`;
    if (scroll && this.follow.checked) this.viewport.scrollTop = total * LINE;
    const first = Math.max(0, Math.floor(this.viewport.scrollTop / LINE) - 20);
    const last = Math.min(total, first + Math.ceil(this.viewport.clientHeight / LINE) + 40);
    clear(this.spacer);
    for (let i = first; i < last; i++) {
      const e = this.shown[i];
      const row = el(
        "div",
        { class: `line lvl-${f.level(e.level)} st-${f.streamName(e.stream)}` },
        el("span", { class: "seq", text: `${e.attempt}:${e.seq}` }),
        el("span", { class: "lvl", text: f.level(e.level) }),
        el("span", { class: "msg", text: e.message || "" }),
      );
      row.style.top = `${i * LINE}px`;
      this.spacer.append(row);
    }
  }

  async download() {
    const lines = [];
    let pageToken = "";
    do {
      const page = await call("LogService", "GetLogs", { run: this.runId, pageSize: 1000, pageToken });
      for (const entry of page.entries || []) lines.push(lineText(entry) + "\n");
      pageToken = page.nextPageToken || "";
    } while (pageToken);
    saveBlob(lines, `${this.runId}.log`, "text/plain");
  }
}
