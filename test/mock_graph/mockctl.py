#!/usr/bin/env python3
"""mockctl.py — drive the running Graph API mock from tests (psql's \\!).

The mock's port comes from $IGID_MOCK_PORT (set by scripts/test.sh).

  mockctl.py reset                      zero counters, clear faults and config
  mockctl.py fault '<json>'             add a fault: {"match":{...},"count":N,"fault":{...}}
  mockctl.py config '<json>'            set config (e.g. {"latency_ms":50})
  mockctl.py count [KEY]                print a counter: total (default),
                                        profile|conversations|conversation|batch|me,
                                        user:<igsid>, account:<ig_account_id>
  mockctl.py paths                      print "<METHOD> <path without query> <status>[ proof]"
                                        per request, in order ("proof": it carried
                                        appsecret_proof, in the query or a POST body)
  mockctl.py users                      print "<igsid> <requests>" per user, sorted
  mockctl.py user IGSID USERNAME NAME    add (or replace) one consenting user
  mockctl.py conversations ACCOUNT N [FIRST]
                                        add N conversations (one message each) with
                                        new users 3000000000000000+i, i = FIRST (default
                                        0) ... FIRST+N-1, for ACCOUNT
Prints only what is asked, so expected outputs stay deterministic.
"""
import json
import os
import sys
import urllib.request


def call(method, path, body=None):
    port = os.environ["IGID_MOCK_PORT"]
    data = None if body is None else body.encode()
    req = urllib.request.Request("http://127.0.0.1:%s/_admin/%s" % (port, path), data=data,
                                 method=method, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=10) as resp:
        return json.loads(resp.read() or b"null")


def main(argv):
    cmd = argv[1] if len(argv) > 1 else ""
    if cmd == "reset":
        call("POST", "reset", "{}")
    elif cmd == "data":
        call("POST", "data", argv[2])
    elif cmd in ("fault", "config"):
        call("POST", cmd + "s" if cmd == "fault" else cmd, argv[2])
    elif cmd == "count":
        stats = call("GET", "stats")
        key = argv[2] if len(argv) > 2 else "total"
        if key == "total":
            print(stats["total"])
        elif key.startswith("user:"):
            print(stats["by_user"].get(key[5:], 0))
        elif key.startswith("account:"):
            print(stats["by_account"].get(key[8:], 0))
        else:
            print(stats["by_endpoint"].get(key, 0))
    elif cmd == "paths":
        for r in call("GET", "stats")["requests"]:
            path, _, query = r["path"].partition("?")
            print(r["method"], path, r["status"], *(["proof"] if r.get("proof") else []))
    elif cmd == "users":
        for igsid, n in sorted(call("GET", "stats")["by_user"].items()):
            print(igsid, n)
    elif cmd == "user":
        call("POST", "data", json.dumps({"users": [{"id": argv[2], "username": argv[3], "name": argv[4]}]}))
    elif cmd == "conversations":
        account, n = argv[2], int(argv[3])
        first = int(argv[4]) if len(argv) > 4 else 0
        users, convs = [], []
        for i in range(first, first + n):
            uid = "%d" % (3000000000000000 + i)
            users.append({"id": uid, "username": "gen.user.%d" % i, "name": None})
            convs.append({"id": "aWdfZ2VuX%06d" % i, "account": account, "participant": uid,
                          "updated_time": "2025-07-%02dT10:00:00+0000" % (1 + i % 28),
                          "messages": [{"id": "mid.gen.%d" % i, "created_time": "2025-07-01T10:00:00+0000",
                                        "from": uid, "to": account, "message": "hello %d" % i}]})
        call("POST", "data", json.dumps({"users": users, "conversations": convs}))
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
