#!/bin/sh
# A Batchyard shell job: prints a line a second for as many seconds as its argument
# (default 60): something to watch, follow and cancel.
seconds="${1:-60}"
i=1
while [ "$i" -le "$seconds" ]; do
    echo "tick $i of $seconds"
    echo "::progress $((i * 100 / seconds))"
    sleep 1
    i=$((i + 1))
done
