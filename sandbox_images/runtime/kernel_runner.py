"""Runs one artifact entrypoint inside the sandbox. Executed by the kernel, never by users.

Reads the call from /kernel/in (read-only), imports the package from /kernel/pkg
(read-only), calls the entrypoint with the JSON input, and writes
{"ok": true, "value": ...} or {"ok": false, "error": ..., "traceback": ...} to
/kernel/out/result.json. Anything the artifact prints goes to the captured stdout and
stderr; the kernel reads only the result file for the value.
"""

import importlib
import json
import os
import sys
import traceback

KERNEL_DIR = "/opt/kernel"  # kernel_client lives here; -I leaves the script's folder off sys.path
IN_DIR = "/kernel/in"
PKG_DIR = "/kernel/pkg"
OUT_PATH = "/kernel/out/result.json"


def _write_result(payload):
    tmp = OUT_PATH + ".tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(payload)
    os.replace(tmp, OUT_PATH)


def _failure(exc):
    return json.dumps(
        {
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}"[:2000],
            "traceback": "".join(traceback.format_exception(exc))[-8000:],
        }
    )


def main():
    with open(os.path.join(IN_DIR, "call.json"), encoding="utf-8") as fh:
        call = json.load(fh)
    with open(os.path.join(IN_DIR, "input.json"), encoding="utf-8") as fh:
        value = json.load(fh)
    module_name, _, func_name = call["entrypoint"].partition(":")
    for root in (KERNEL_DIR, os.path.join(PKG_DIR, "src"), PKG_DIR):
        if os.path.isdir(root):
            sys.path.insert(0, root)
    try:
        func = getattr(importlib.import_module(module_name), func_name)
        result = func(value)
        payload = json.dumps({"ok": True, "value": result}, allow_nan=False)
    except BaseException as exc:  # the artifact's failure is data, not the runner's
        payload = _failure(exc)
    _write_result(payload)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
