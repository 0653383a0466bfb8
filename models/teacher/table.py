#!/usr/bin/python3
"""models/teacher/table.py RESULTS_DIR: Spearman x100 per set of the student before distillation,
the distilled model (f32), and the shipped q8 file with int8 and f32 kernels, from the sembed
eval JSONs the recipe's eval stage writes; prints a markdown table and writes RESULTS_DIR/table.md."""
import json
import sys

r = sys.argv[1]


def load(n):
    d = json.load(open(f"{r}/eval-{n}.json"))
    out = {}
    for t in d["tasks"]:
        for s in t["sets"]:
            out[s["name"]] = s["spearman"]
        if len(t["sets"]) > 1:
            out[t["name"] + " all"] = t["all"]["spearman"]
    return out


base, f32, i8, q8f = load("student"), load("distill-f32"), load("shipped-int8"), load("shipped-q8w-f32")
lines = ["| set | student before (its file, default compute) | distilled f32 | distilled q8, int8 kernels | q8, f32 kernels | int8 - f32 |",
         "|---|---|---|---|---|---|"]
for k in base:
    lines.append("| %s | %.2f | %.2f | %.2f | %.2f | %+.2f |" % (k, base[k], f32[k], i8[k], q8f[k], i8[k] - f32[k]))
open(f"{r}/table.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
