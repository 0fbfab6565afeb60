"""The face-neutral core of the SDK: what the synchronous face (`batchyard.client.sync`) and
the asyncio face (`batchyard.client.aio`) share, with no I/O of its own.

* `requests`: every request message, built from the SDK's arguments (submit, list
  filters, paging, payload limits, names of statuses, levels, streams, roles).
* `paging`: how many items a listing still wants and the page size to ask for.
* `retry`: the retry policy and the per-call decision to retry or give up.
* `streams`: when a broken server stream is reopened, and what it resumes from.
* `results`: safe result names, the listing, and the checks a download passes.
* `views`: the read-only view of a run that `Run` and `AsyncRun` share, and what a
  wait prints and raises.
"""
