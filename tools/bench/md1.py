#!/usr/bin/env python3
"""The queueing floor behind docs/serve.md's half-load figures: the p50/p95/p99 time in system
of one first-come-first-served server with a fixed service time D = 1 (M/D/1), Poisson arrivals,
at several utilisations; passes of k waiting requests cost k (batching saves nothing on a CPU).

    python3 tools/bench/md1.py [--n 200000] [--seed 1]
"""
import argparse
import random


def sojourn(rho, n, seed):
    rng = random.Random(seed)
    t = free = 0.0
    lat = []
    for _ in range(n):
        t += rng.expovariate(rho)  # arrivals at rate rho per service time
        start = max(free, t)
        free = start + 1.0
        lat.append(free - t)
    lat.sort()
    return [lat[int(p * n)] for p in (0.5, 0.95, 0.99)]


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=200000)
    ap.add_argument("--seed", type=int, default=1)
    a = ap.parse_args()
    print("utilisation  p50   p95   p99   (service times)")
    for rho in (0.3, 0.4, 0.5, 0.6, 0.7):
        p = sojourn(rho, a.n, a.seed)
        print(f"{rho:11.1f}  {p[0]:.2f}  {p[1]:.2f}  {p[2]:.2f}")
