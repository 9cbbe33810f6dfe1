"""Child process of :class:`conftest.Sandbox`: runs one case at a time.

Reads JSON lines ``{"fn": "module.func", "args": [...]}`` on stdin, runs the
function (from a module in this directory) and answers one JSON line: the
return value, or the exception's class (module, name, MRO names) and message.
A crash (signal) or hang of this process fails only the case that caused it.
"""

from __future__ import annotations

import importlib
import json
import os
import sys
import traceback

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    out = sys.stdout
    sys.stdout = sys.stderr  # stray prints must not corrupt the protocol
    for line in sys.stdin:
        req = json.loads(line)
        mod_name, fn_name = req["fn"].rsplit(".", 1)
        try:
            fn = getattr(importlib.import_module(mod_name), fn_name)
            value = fn(*req.get("args", []))
            json.dumps(value)
            resp = {"ok": True, "value": value}
        except BaseException as e:  # noqa: BLE001 - reported to the parent
            cls = type(e)
            resp = {
                "ok": False,
                "module": cls.__module__,
                "name": cls.__qualname__,
                "mro": [c.__name__ for c in cls.__mro__],
                "msg": str(e),
                "tb": traceback.format_exc(),
            }
        out.write(json.dumps(resp) + "\n")
        out.flush()


if __name__ == "__main__":
    main()
