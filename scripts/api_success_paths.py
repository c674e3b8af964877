#!/usr/bin/env python3
"""Which documented operations of a running `ecny serve` answered a success (2xx), by the server's
own count (`ecny_http_requests_total` by method, route and status in /metrics).

  api_success_paths.py snapshot URL FILE        saves the counts now (before a fuzzing run)
  api_success_paths.py check URL OPENAPI FILE   compares with them: prints each operation's
                                                successes and failures since, and exits 1
                                                listing every documented operation with none
"""
import json
import re
import sys
import urllib.request

SAMPLE = re.compile(
    r'^ecny_http_requests_total\{method="([A-Z]+)",route="([^"]*)",status="([0-9]{3})"\} ([0-9]+)$'
)


def counts(url):
    with urllib.request.urlopen(url.rstrip("/") + "/metrics", timeout=30) as response:
        text = response.read().decode()
    found = {}
    for line in text.splitlines():
        match = SAMPLE.match(line)
        if match:
            method, route, status, count = match.groups()
            found[f"{method} {route} {status}"] = int(count)
    return found


def main(argv):
    if len(argv) == 4 and argv[1] == "snapshot":
        with open(argv[3], "w") as out:
            json.dump(counts(argv[2]), out)
        return 0
    if len(argv) != 5 or argv[1] != "check":
        print(__doc__, file=sys.stderr)
        return 2
    url, document, baseline = argv[2], argv[3], argv[4]
    with open(baseline) as before_file:
        before = json.load(before_file)
    after = counts(url)
    with open(document) as document_file:
        paths = json.load(document_file)["paths"]
    operations = [
        f"{method.upper()} {path}"
        for path, items in paths.items()
        for method in items
        if method in ("get", "put", "post", "delete", "patch")
    ]
    missing = []
    for operation in operations:
        since = {
            key.rsplit(" ", 1)[1]: count - before.get(key, 0)
            for key, count in after.items()
            if key.rsplit(" ", 1)[0] == operation and count > before.get(key, 0)
        }
        ok = sum(count for status, count in since.items() if status.startswith("2"))
        refused = sum(count for status, count in since.items() if not status.startswith("2"))
        print(f"{ok:6} 2xx {refused:6} other  {operation}")
        if ok == 0:
            missing.append(operation)
    print(f"{len(operations) - len(missing)} of {len(operations)} documented operations answered 2xx")
    if missing:
        print("never answered 2xx:\n  " + "\n  ".join(missing))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
