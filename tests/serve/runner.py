"""The loop both tests/serve scripts end with: run each test function, print
ok/FAIL with its time (and the traceback of a failure), then exit 1 if any
failed. `only`: run only tests whose name contains it (the scripts' -k)."""

import sys
import time
import traceback


def run_tests(tests, only=None):
    failed = []
    t_all = time.time()
    for t in tests:
        if only and only not in t.__name__:
            continue
        t0 = time.time()
        try:
            t()
            print(f"ok   {t.__name__} ({time.time() - t0:.2f} s)", flush=True)
        except Exception:
            failed.append(t.__name__)
            print(f"FAIL {t.__name__} ({time.time() - t0:.2f} s)", flush=True)
            traceback.print_exc()
    print(f"{len(failed)} failed, {time.time() - t_all:.1f} s in all: {failed}")
    sys.exit(1 if failed else 0)
