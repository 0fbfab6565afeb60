"""A Batchyard job: reads its argument and its JSON payload, reports progress, logs a
warning, and writes a result file (a CSV) that the run keeps.

    batchyard runs submit report --arg 3 --payload '{"city": "Oslo"}' --wait --follow
"""

import json
import os
import sys
import time
from pathlib import Path

days = int(sys.argv[1]) if len(sys.argv) > 1 else 3
raw = Path(os.environ["BATCHYARD_PAYLOAD_PATH"]).read_text()
city = json.loads(raw)["city"] if raw else "nowhere"
if city == "Atlantis":
    sys.exit(f"no weather data for {city}")  # exit code 1, the message on stderr

out = Path(os.environ["BATCHYARD_OUTPUT_DIR"])
rows = ["day,city,rain_mm"]
for day in range(1, days + 1):
    time.sleep(0.2)
    rows.append(f"{day},{city},{day * 3 % 7}")
    print(f"day {day} of {days}: {city}")
    print(f"::progress {day * 100 // days}")  # sets the run's progress (not logged)
if days > 5:
    print("more than 5 days: the forecast gets vague", file=sys.stderr)  # a WARNING line
(out / "forecast.csv").write_text("\n".join(rows) + "\n")
print(f"wrote forecast.csv ({days} days)")
