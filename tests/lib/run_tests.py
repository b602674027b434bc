#!/usr/bin/python3
"""Runs one unittest module for ctest: exit 0 when it passed, 77 (ctest's SKIP_RETURN_CODE)
when every test in it was skipped (the reasons are printed), 1 on any failure."""
import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main():
    if len(sys.argv) != 2:
        print("usage: run_tests.py MODULE.py", file=sys.stderr)
        return 2
    path = os.path.abspath(sys.argv[1])
    sys.path.insert(0, os.path.dirname(path))
    name = os.path.splitext(os.path.basename(path))[0]
    suite = unittest.defaultTestLoader.loadTestsFromName(name)
    result = unittest.TextTestRunner(verbosity=2, stream=sys.stdout).run(suite)
    if not result.wasSuccessful():
        return 1
    # A class skipped in setUpClass adds a skip without adding to testsRun.
    if result.skipped and len(result.skipped) >= result.testsRun:
        print(f"SKIPPED: every test of {name} was skipped:")
        for test, why in result.skipped:
            print(f"  {test.id()}: {why}")
        return 77
    return 0


if __name__ == "__main__":
    sys.exit(main())
