// The page registry: each page is one module exporting
//   { name, title, pattern (a RegExp on the hash path), nav ({href, label}) or parent,
//     render(main, params, context) -> cleanup function or nothing }.
// Add a page by importing its module here (queues, workers, schedules ...).

import run from "./run.js";
import runs from "./runs.js";
import definitions from "./definitions.js";
import definition from "./definition.js";

export const PAGES = [runs, run, definitions, definition];
