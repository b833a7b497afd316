#!/usr/bin/env python3
"""Prints the tests a Swift Testing event stream (`swift test --event-stream-output-path F`)
shows started but not ended, with how long before the stream's last event each started, and
every issue recorded on them: after a run that timed out, the tests that hung. (Console output
passes through `swift test`, which loses its last lines when it is killed; the stream is written
by the test process itself.) With `--failed` first, it prints instead every test that recorded an
issue, with the issue's messages: scripts/test.sh repeats them at the end of its output, which is
the part a CI log keeps."""
import json
import sys

failed_mode = sys.argv[1] == "--failed"
path = sys.argv[-1]
started = {}   # test ID -> instant it started (seconds)
issues = {}    # test ID -> messages of issues recorded
last = 0.0
with open(path, encoding="utf-8", errors="replace") as stream:
    for line in stream:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a line cut short by the kill
        if record.get("kind") != "event":
            continue
        event = record["payload"]
        instant = event.get("instant", {}).get("absolute", last)
        last = max(last, instant)
        test = event.get("testID")
        kind = event.get("kind")
        if test is None:
            continue
        if kind == "testStarted":
            started[test] = instant
        elif kind == "testEnded":
            started.pop(test, None)
        elif kind == "issueRecorded" and not event.get("issue", {}).get("isKnown", False):
            issues.setdefault(test, []).extend(m.get("text", "") for m in event.get("messages", []))

if failed_mode:
    for test, messages in sorted(issues.items()):
        print(f"  {test}")
        for message in messages:
            print(f"      {message}")
    sys.exit(0)

# A suite is open while any of its tests is: name only the innermost (functions).
open_tests = [t for t in started if not any(o != t and o.startswith(t + "/") for o in started)]
for test in sorted(open_tests, key=started.get):
    print(f"  {test} (started {last - started[test]:.0f} s before the last event)")
    for message in issues.get(test, []):
        print(f"      {message}")
if not open_tests:
    print("  none: every test that started ended")
