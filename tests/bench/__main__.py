"""Run every benchmark module and print one table (figures beside their goals)."""
from __future__ import annotations

import importlib
import pkgutil
import sys
import traceback

import tests.bench as bench_pkg


def main(argv: list[str]) -> int:
    only = argv[1:]
    rows = []
    for mod in sorted(m.name for m in pkgutil.iter_modules(bench_pkg.__path__)):
        if not mod.startswith("bench_") or (only and not any(o in mod for o in only)):
            continue
        print(f"running {mod} ...", file=sys.stderr, flush=True)
        try:
            rows.extend(importlib.import_module(f"tests.bench.{mod}").figures())
        except Exception:  # a broken benchmark is reported, the others still run
            traceback.print_exc()
            rows.append(bench_pkg.Figure(f"{mod}: FAILED", float("nan"), "", ""))
    width = max([len(r.name) for r in rows] + [10])
    print(f"\n{'figure':<{width}}  {'value':>12}  {'unit':<14} {'goal':<10} met")
    print("-" * (width + 46))
    for r in rows:
        met = {None: "", True: "yes", False: "NO"}[r.meets_goal()]
        print(f"{r.name:<{width}}  {r.value:>12.3f}  {r.unit:<14} {r.goal:<10} {met}"
              + (f"  ({r.note})" if r.note else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
