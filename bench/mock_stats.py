#!/usr/bin/env python3
"""bench/mock_stats.py PORT WHAT [ARG] — figures the benchmarks read from the
Graph API mock (standard library only).

  calls_inflight       "<Graph calls since the last reset> <max in flight>"
  rtt TOKEN            median round trip of 50 profile calls, in ms
  rate ACCOUNT         "<calls> <max calls in any 1 s window> <mean calls/s>"
                       for one account, from the mock's own arrival times
  pace                 "<calls> <accounts> <max calls of one account in any
                       1 s window>" over every account (profile calls only)
"""
import http.client
import json
import sys
import time


def stats(port):
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    c.request("GET", "/_admin/stats")
    return json.loads(c.getresponse().read())


def main(argv):
    port, what = int(argv[1]), argv[2]
    if what == "calls_inflight":
        s = stats(port)
        print(s["total"], s["max_in_flight"])
    elif what == "rtt":
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        ts = []
        for _ in range(50):
            t = time.perf_counter()
            c.request("GET", "/v21.0/2000000000000001?fields=name,username,profile_pic",
                      headers={"Authorization": "Bearer " + argv[3]})
            c.getresponse().read()
            ts.append(time.perf_counter() - t)
        ts.sort()
        print("%.2f" % (ts[len(ts) // 2] * 1000))
    elif what == "rate":
        times = sorted(r["t"] for r in stats(port)["requests"] if r.get("account") == argv[3])
        worst = 0
        for i, t in enumerate(times):       # windows [t, t + 1) starting at each call
            k = i
            while k < len(times) and times[k] < t + 1.0:
                k += 1
            worst = max(worst, k - i)
        span = times[-1] - times[0] if len(times) > 1 else 0
        mean = (len(times) - 1) / span if span > 0 else 0
        print(len(times), worst, "%.2f" % mean)
    elif what == "pace":
        reqs = [r for r in stats(port)["requests"] if r.get("endpoint") == "profile" and r.get("account")]
        by = {}
        for r in reqs:
            by.setdefault(r["account"], []).append(r["t"])
        worst = 0
        for times in by.values():
            times.sort()
            k = 0
            for i, t in enumerate(times):
                k = max(k, i)
                while k < len(times) and times[k] < t + 1.0:
                    k += 1
                worst = max(worst, k - i)
        print(len(reqs), len(by), worst)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main(sys.argv)
