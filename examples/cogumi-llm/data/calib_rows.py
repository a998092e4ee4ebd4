#!/usr/bin/env python3
"""Calibration rows from MAML episodes, the domains interleaved row by row.

usage: calib_rows.py N < episodes.jsonl > calib.jsonl

episodes.jsonl (cogumi's dataset rule) holds one episode per line,
{"task": ..., "support": [rows], "query": [rows]}, the tasks taking turns.
This writes the first N rows taking one row of each task in turn, as
{"text": ..., "domain": ...}, so that any prefix of the output (calibrate
reads the first samples x seq_len tokens) covers every domain evenly.
"""

import json
import sys


def main():
    n = int(sys.argv[1])
    per_task = {}
    for line in sys.stdin:
        ep = json.loads(line)
        per_task.setdefault(ep["task"], []).extend(ep["support"] + ep["query"])
    tasks = sorted(per_task)
    out, i = 0, 0
    while out < n and any(i < len(per_task[t]) for t in tasks):
        for t in tasks:
            if out < n and i < len(per_task[t]):
                row = per_task[t][i]
                sys.stdout.write(json.dumps({"text": row["text"], "domain": t}) + "\n")
                out += 1
        i += 1
    if out < n:
        sys.exit("calib_rows.py: only %d rows in the episodes, %d asked" % (out, n))


if __name__ == "__main__":
    main()
