// Words and numbers for people.

export const STATUSES = ["PENDING", "RUNNING", "SUCCEEDED", "FAILED", "CANCELLED"];

export function status(value) {
  return (value || "").replace("RUN_STATUS_", "") || "UNKNOWN";
}

const REASONS = {
  RECENTLY_SUBMITTED: "recently submitted",
  IN_QUEUE: "waiting in its queue for a free worker slot",
  WAITING_ON_DEPENDENCIES: "waiting on the runs it depends on",
  WAITING_FOR_RETRY: "waiting to be retried",
  NON_ZERO_EXIT_CODE: "the job exited with a non-zero code",
  TIMEOUT: "the attempt ran past its timeout",
  WORKER_LOST: "its worker stopped answering",
  SOURCE_UNAVAILABLE: "the job's source could not be fetched",
  DEPENDENCY_FAILED: "a run it depends on failed",
  CANCELLED_BY_USER: "cancelled by a user",
};

export function reason(value) {
  const key = (value || "").replace("RUN_REASON_", "");
  if (!key || key === "UNSPECIFIED") return "";
  return REASONS[key] || key.toLowerCase().replaceAll("_", " ");
}

export function time(value) {
  if (!value) return "";
  const date = new Date(value);
  return date.toLocaleString(undefined, { hour12: false });
}

export function duration(from, to) {
  if (!from) return "";
  const ms = (to ? new Date(to) : new Date()) - new Date(from);
  const s = Math.max(0, Math.round(ms / 1000));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
}

export function bytes(value) {
  let n = Number(value || 0);
  for (const unit of ["B", "KiB", "MiB", "GiB"]) {
    if (n < 1024 || unit === "GiB") return unit === "B" ? `${n} B` : `${n.toFixed(1)} ${unit}`;
    n /= 1024;
  }
  return `${n}`;
}

export function level(value) {
  return (value || "").replace("LOG_LEVEL_", "").toLowerCase();
}

export function streamName(value) {
  return (value || "").replace("LOG_STREAM_", "").toLowerCase();
}

export function finished(run) {
  return ["SUCCEEDED", "FAILED", "CANCELLED"].includes(status(run.status));
}
