"""``python -m flows.services up|down|status``: the older name of ``python -m stack`` (kept so that
scripts written against it keep working; the operations code lives in :mod:`stack`)."""

if __name__ == "__main__":
    import sys

    from stack.local import main

    sys.exit(main())
