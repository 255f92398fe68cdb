#!/usr/bin/env python3
"""Self-tests for mock_graph.py, the local Graph API mock.

Each test class starts the mock as a subprocess on an ephemeral port and talks
to it over loopback with http.client, the way the C++ client will. Covered:
endpoint shapes, auth (190), cursor paging, batch, every fault type, counters
and reset, concurrency, prompt SIGTERM, and that no token is ever recorded.

    python3 test/mock_graph/test_mock_graph.py           # the tests
    python3 test/mock_graph/test_mock_graph.py --bench   # throughput figures

The last line printed is "N passed, N failed"; the exit status is non-zero
when anything failed. Python standard library only.
"""

import base64
import http.client
import json
import os
import select
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest
from urllib.parse import parse_qs, urlencode, urlsplit

HERE = os.path.dirname(os.path.abspath(__file__))
MOCK = os.path.join(HERE, "mock_graph.py")

TOKEN_A = "mock-token-A-0123456789"
TOKEN_B = "mock-token-B-0123456789"
ACCT_A = "17841400000000001"
ACCT_B = "17841400000000002"
PAGE_A = "1000000000000001"
JANE, JOHN, STORIES, NO_CONSENT, GONE = ("1000000000000101", "1000000000000102",
                                         "1000000000000103", "1000000000000104",
                                         "1000000000000105")
PROFILE_Q = ("fields=name,username,profile_pic,follower_count,is_user_follow_business,"
             "is_business_follow_user,is_verified_user")
CONV_Q = "platform=instagram&fields=id,updated_time,participants"


class Mock:
    """A running mock_graph subprocess and small clients for it."""

    def __init__(self, *args, stderr_path=None):
        self.stderr_file = open(stderr_path, "wb") if stderr_path else subprocess.DEVNULL
        self.proc = subprocess.Popen([sys.executable, MOCK, "--port", "0"] + list(args),
                                     stdout=subprocess.PIPE, stderr=self.stderr_file)
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        line = self.proc.stdout.readline().decode() if ready else ""
        if not line.startswith("mock_graph listening on 127.0.0.1:"):
            self.proc.kill()
            raise RuntimeError("mock did not start: %r" % line)
        self.startup_line = line
        self.port = int(line.rsplit(":", 1)[1])

    # Raw request: returns (status, headers dict lower-cased, body bytes).
    def request(self, method, path, token=None, body=None, headers=None, timeout=10):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            hdrs = dict(headers or {})
            if token:
                hdrs["Authorization"] = "Bearer " + token
            conn.request(method, path, body=body, headers=hdrs)
            resp = conn.getresponse()
            data = resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}, data
        finally:
            conn.close()

    # A Graph GET with account A's token by default; returns (status, json).
    def get(self, path, token=TOKEN_A, **kw):
        status, _, body = self.request("GET", "/v21.0/" + path.lstrip("/"), token, **kw)
        return status, json.loads(body)

    # POST / with a form-encoded batch; returns (status, json).
    def batch(self, items, token=TOKEN_A):
        body = urlencode({"batch": json.dumps(items)})
        status, _, data = self.request(
            "POST", "/v21.0/", token, body=body,
            headers={"Content-Type": "application/x-www-form-urlencoded"})
        return status, json.loads(data)

    # An /_admin call with a JSON body; returns (status, json).
    def admin(self, method, path, obj=None):
        body = json.dumps(obj) if obj is not None else None
        status, _, data = self.request(method, "/_admin/" + path, body=body)
        return status, json.loads(data)

    # Installs a fault; returns its id.
    def fault(self, fault, match=None, count=None):
        spec = {"match": match or {}, "fault": fault}
        if count is not None:
            spec["count"] = count
        status, obj = self.admin("POST", "faults", spec)
        assert status == 200, obj
        return obj["id"]

    def stats(self):
        return self.admin("GET", "stats")[1]

    # Stops the process; returns (exit code, seconds it took, stdout rest).
    def stop(self, sig=signal.SIGTERM):
        t0 = time.monotonic()
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            rc = self.proc.wait()
        elapsed = time.monotonic() - t0
        rest = self.proc.stdout.read()
        self.proc.stdout.close()
        if self.stderr_file is not subprocess.DEVNULL:
            self.stderr_file.close()
        return rc, elapsed, rest


# (code, subcode) of a Graph error envelope.
def error_of(obj):
    return obj["error"]["code"], obj["error"].get("error_subcode")


class MockCase(unittest.TestCase):
    """Shares one default-data mock per class; resets it before each test."""

    mock_args = ()

    @classmethod
    def setUpClass(cls):
        cls.mock = Mock(*cls.mock_args, "--quiet")

    @classmethod
    def tearDownClass(cls):
        cls.mock.stop()

    def setUp(self):
        self.assertEqual(self.mock.admin("POST", "reset")[0], 200)


class ShapeTests(MockCase):
    """The endpoints answer with Meta's shapes and the contract's data."""

    def test_health(self):
        self.assertEqual(self.mock.admin("GET", "health"), (200, {"ok": True}))

    def test_profile_shape(self):
        status, obj = self.mock.get(JANE + "?" + PROFILE_Q)
        self.assertEqual(status, 200)
        self.assertEqual(obj["id"], JANE)
        self.assertEqual(obj["username"], "jane.doe")
        self.assertEqual(obj["name"], "Jane Doe")
        self.assertIs(obj["is_verified_user"], False)
        self.assertIsInstance(obj["follower_count"], int)
        for key in ("is_user_follow_business", "is_business_follow_user"):
            self.assertIsInstance(obj[key], bool)
        pic = obj["profile_pic"]
        self.assertTrue(pic.startswith("https://scontent"), pic)
        self.assertTrue(350 <= len(pic) <= 600, len(pic))
        oe = parse_qs(urlsplit(pic).query)["oe"][0]
        self.assertGreater(int(oe, 16), time.time())
        _, again = self.mock.get(JANE + "?fields=profile_pic")
        self.assertNotEqual(again["profile_pic"], pic)
        self.assertEqual(set(again), {"profile_pic", "id"})

    def test_profile_only_requested_fields(self):
        status, obj = self.mock.get(JOHN + "?fields=username")
        self.assertEqual((status, obj), (200, {"username": "john.smith", "id": JOHN}))
        _, obj = self.mock.get(JOHN + "?fields=name,username")
        self.assertIsNone(obj.get("name"))
        _, obj = self.mock.get(STORIES + "?fields=name,username")
        self.assertEqual(obj["name"], "Stories Store")

    def test_profile_errors(self):
        status, obj = self.mock.get(NO_CONSENT + "?fields=username")
        self.assertEqual((status, error_of(obj)), (400, (230, None)))
        status, obj = self.mock.get(GONE + "?fields=username")
        self.assertEqual((status, error_of(obj)[0]), (400, 9010))
        status, obj = self.mock.get("1000000000000999?fields=username")
        self.assertEqual((status, error_of(obj)), (400, (100, 33)))
        for key in ("message", "type", "code", "fbtrace_id"):
            self.assertIn(key, obj["error"])
        status, obj = self.mock.get(JANE + "?fields=username,shoe_size")
        self.assertEqual((status, error_of(obj)[0]), (400, 100))

    def test_me(self):
        # Facebook Login: `me` is the Page the token belongs to.
        self.assertEqual(self.mock.get("me?fields=id,name,instagram_business_account"),
                         (200, {"id": PAGE_A, "name": "Acme Store",
                                "instagram_business_account": {"id": ACCT_A}}))
        status, obj = self.mock.get("me?fields=id,username")
        self.assertEqual((status, error_of(obj)[0]), (400, 100))
        # the IG user node itself still answers with its own id
        self.assertEqual(self.mock.get(ACCT_A + "?fields=id,username"),
                         (200, {"id": ACCT_A, "username": "acme.store"}))
        # Instagram Login: user_id is the account; id is app-scoped.
        status, obj = self.mock.get("me?fields=user_id,username", token=TOKEN_B)
        self.assertEqual((status, obj["user_id"], obj["username"]),
                         (200, ACCT_B, "acme.outlet"))
        self.assertNotIn(obj["id"], (ACCT_B, ACCT_A))

    def test_conversations_default_data(self):
        for node in (PAGE_A, "me"):
            status, obj = self.mock.get("%s/conversations?%s&limit=25" % (node, CONV_Q))
            self.assertEqual(status, 200)
            self.assertEqual(len(obj["data"]), 3)
            self.assertNotIn("next", obj["paging"])
            self.assertEqual(set(obj["paging"]["cursors"]), {"before", "after"})
        times = [c["updated_time"] for c in obj["data"]]
        self.assertEqual(times, sorted(times, reverse=True))
        self.assertRegex(times[0], r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+0000$")
        others = []
        for conv in obj["data"]:
            parts = conv["participants"]["data"]
            self.assertEqual(parts[0], {"username": "acme.store", "id": ACCT_A})
            self.assertEqual(set(parts[1]), {"username", "id"})
            others.append(parts[1]["id"])
        self.assertEqual(others, [JANE, JOHN, STORIES])
        status, obj = self.mock.get("%s/conversations?%s" % (ACCT_B, CONV_Q), token=TOKEN_B)
        self.assertEqual([c["participants"]["data"][1]["id"] for c in obj["data"]], [JANE])

    def test_conversations_platform_and_ownership(self):
        # Without platform=instagram a Page token lists Messenger: nothing here.
        self.assertEqual(self.mock.get(PAGE_A + "/conversations?fields=id"),
                         (200, {"data": []}))
        status, obj = self.mock.get("me/conversations?fields=id", token=TOKEN_B)
        self.assertEqual(len(obj["data"]), 1)
        status, obj = self.mock.get(ACCT_A + "/conversations?" + CONV_Q, token=TOKEN_B)
        self.assertEqual((status, error_of(obj)), (400, (100, 33)))

    def test_conversation_messages(self):
        _, lst = self.mock.get("me/conversations?platform=instagram&fields=id")
        cid = lst["data"][0]["id"]
        status, obj = self.mock.get(
            cid + "?fields=participants,messages.limit(20){id,created_time,from,to,message}")
        self.assertEqual(status, 200)
        self.assertEqual(obj["id"], cid)
        self.assertEqual(len(obj["participants"]["data"]), 2)
        msgs = obj["messages"]["data"]
        self.assertEqual(len(msgs), 3)
        created = [m["created_time"] for m in msgs]
        self.assertEqual(created, sorted(created, reverse=True))
        directions = set()
        for m in msgs:
            self.assertEqual(set(m["from"]), {"username", "id"})
            self.assertEqual(set(m["to"]["data"][0]), {"username", "id"})
            directions.add(m["from"]["id"] == ACCT_A)
            self.assertIsInstance(m["message"], str)
        self.assertEqual(directions, {True, False})
        status, obj = self.mock.get(cid + "?fields=id", token=TOKEN_B)
        self.assertEqual(error_of(obj), (100, 33))

    def test_usage_headers(self):
        status, headers, _ = self.mock.request("GET", "/v21.0/me?fields=id", TOKEN_A)
        app = json.loads(headers["x-app-usage"])
        self.assertEqual(set(app), {"call_count", "total_cputime", "total_time"})
        buc = json.loads(headers["x-business-use-case-usage"])
        entry = buc[ACCT_A][0]
        self.assertEqual(entry["type"], "instagram")
        self.assertEqual(entry["estimated_time_to_regain_access"], 0)

class StrictTests(MockCase):
    """Where Meta is strict the mock is strict: login flavours, the owner of
    a conversation list, appsecret_proof, token expiry and refresh."""

    def add_ig_account(self, **kw):
        acct = {"ig_account_id": "17841400000000077", "token": "mock-token-S-%d" % len(kw),
                "api_host": "graph.instagram.com", "username": "strict.shop"}
        acct.update(kw)
        status, obj = self.mock.admin("POST", "data", {"accounts": [acct]})
        self.assertEqual(status, 200, obj)
        return acct

    def test_facebook_login_refuses_the_ig_account_as_owner(self):
        status, obj = self.mock.get("%s/conversations?%s" % (ACCT_A, CONV_Q))
        self.assertEqual((status, error_of(obj)), (400, (100, None)))
        self.assertIn("IGUser", obj["error"]["message"])
        # the Page's own listing is there, under its id or `me`
        for node in (PAGE_A, "me"):
            status, obj = self.mock.get("%s/conversations?%s" % (node, CONV_Q))
            self.assertEqual((status, len(obj["data"])), (200, 3))

    def test_instagram_login_lists_under_the_account(self):
        for node in (ACCT_B, "me"):
            status, obj = self.mock.get("%s/conversations?%s" % (node, CONV_Q), token=TOKEN_B)
            self.assertEqual((status, len(obj["data"])), (200, 1))
        status, obj = self.mock.get("%s/conversations?%s" % ("1000000000000002", CONV_Q),
                                    token=TOKEN_B)
        self.assertEqual((status, error_of(obj)), (400, (100, 33)))

    def test_login_flavour_must_match_host(self):
        status, obj = self.mock.admin("POST", "data", {"accounts": [
            {"ig_account_id": "5", "token": "mock-token-flavour-5", "api_host": "graph.instagram.com",
             "login": "facebook_login"}]})
        self.assertEqual(status, 400, obj)

    def test_appsecret_proof(self):
        import hashlib
        import hmac
        acct = self.add_ig_account(app_secret="s3cr3t-app")
        tok = acct["token"]
        status, obj = self.mock.get("me?fields=user_id", token=tok)
        self.assertEqual((status, error_of(obj)[0]), (400, 100))
        self.assertIn("require an appsecret_proof", obj["error"]["message"])
        status, obj = self.mock.get("me?fields=user_id&appsecret_proof=" + "0" * 64, token=tok)
        self.assertIn("Invalid appsecret_proof", obj["error"]["message"])
        # a proof made with another token is wrong too
        other = hmac.new(b"s3cr3t-app", TOKEN_B.encode(), hashlib.sha256).hexdigest()
        status, obj = self.mock.get("me?fields=user_id&appsecret_proof=" + other, token=tok)
        self.assertEqual(status, 400)
        proof = hmac.new(b"s3cr3t-app", tok.encode(), hashlib.sha256).hexdigest()
        status, obj = self.mock.get("me?fields=user_id&appsecret_proof=" + proof, token=tok)
        self.assertEqual((status, obj["user_id"]), (200, acct["ig_account_id"]))
        # accounts without a secret take calls without a proof
        self.assertEqual(self.mock.get("me?fields=user_id", token=TOKEN_B)[0], 200)

    def refresh(self, token, grant="ig_refresh_token", host="graph.instagram.com"):
        status, _, body = self.mock.request(
            "GET", "/refresh_access_token?grant_type=%s&access_token=%s" % (grant, token),
            headers={"Host": host})
        return status, json.loads(body)

    def test_refresh_access_token(self):
        acct = self.add_ig_account(token_issued_at=time.time() - 30 * 86400)
        status, obj = self.refresh(acct["token"])
        self.assertEqual(status, 200, obj)
        self.assertEqual(obj["token_type"], "bearer")
        self.assertEqual(obj["expires_in"], 60 * 86400)
        new = obj["access_token"]
        self.assertNotEqual(new, acct["token"])
        self.assertEqual(self.mock.get("me?fields=user_id", token=new)[1]["user_id"],
                         acct["ig_account_id"])
        # the new token is fresh: refreshing it again at once is refused
        status, obj = self.refresh(new)
        self.assertEqual((status, error_of(obj)[0]), (400, 100))
        # the new token never shows in the request log
        self.assertNotIn(new, json.dumps(self.mock.stats()))
        self.assertNotIn(acct["token"], json.dumps(self.mock.stats()))

    def test_refresh_refusals(self):
        young = self.add_ig_account(token="mock-young", token_issued_at=time.time() - 3600)
        self.assertEqual(error_of(self.refresh(young["token"])[1])[0], 100)
        short = self.add_ig_account(ig_account_id="17841400000000078", token="mock-short",
                                    token_kind="short_lived",
                                    token_issued_at=time.time() - 1800)
        self.assertEqual(error_of(self.refresh(short["token"])[1])[0], 100)
        old = self.add_ig_account(ig_account_id="17841400000000079", token="mock-expired",
                                  token_issued_at=time.time() - 61 * 86400)
        self.assertEqual(error_of(self.refresh(old["token"])[1]), (190, 463))
        # an expired token answers 190/463 on every call
        status, obj = self.mock.get("me?fields=user_id", token=old["token"])
        self.assertEqual((status, error_of(obj)), (400, (190, 463)))
        # a Page token is never refreshed; nor is anything on graph.facebook.com
        self.assertEqual(error_of(self.refresh(TOKEN_A)[1])[0], 190)
        self.assertEqual(error_of(self.refresh(TOKEN_B, host="graph.facebook.com")[1])[0], 100)
        self.assertEqual(error_of(self.refresh(TOKEN_B, grant="fb_exchange_token")[1])[0], 100)


class AdminDataTests(MockCase):
    """POST /_admin/data adds or replaces records (data survives reset)."""

    def test_admin_data(self):
        status, _ = self.mock.admin("POST", "data", {
            "users": [{"id": "3000000000000001", "username": "new.person"}],
            "conversations": [{"id": "aWdfbmV3", "account": ACCT_A,
                               "participant": "3000000000000001",
                               "updated_time": "2030-01-01T00:00:00+0000",
                               "messages": [{"from": "3000000000000001", "to": ACCT_A,
                                             "message": "hello"}]}]})
        self.assertEqual(status, 200)
        _, obj = self.mock.get("3000000000000001?fields=name,username")
        self.assertEqual(obj, {"username": "new.person", "id": "3000000000000001"})
        _, obj = self.mock.get("me/conversations?" + CONV_Q)
        self.assertEqual(obj["data"][0]["id"], "aWdfbmV3")
        self.assertEqual(self.mock.admin("POST", "data", {"users": [{}]})[0], 400)


class AuthTests(MockCase):
    """A missing, wrong or misplaced token answers 190 and is counted."""

    def test_missing_wrong_and_query_token(self):
        status, _, body = self.mock.request("GET", "/v21.0/me?fields=id")
        self.assertIn(status, (400, 401))
        self.assertEqual(error_of(json.loads(body))[0], 190)
        status, obj = self.mock.get("me?fields=id", token="not-a-token")
        self.assertEqual((status, error_of(obj)[0]), (400, 190))
        status, obj = self.mock.get("me?fields=id&access_token=" + TOKEN_A)
        self.assertEqual(error_of(obj)[0], 190)
        status, obj = self.mock.get("me?fields=id&access_token=" + TOKEN_A, token=None)
        self.assertEqual(error_of(obj)[0], 190)
        self.assertEqual(self.mock.stats()["unauthorized"], 4)

    def test_host_token_mismatch(self):
        status, _, body = self.mock.request("GET", "/v21.0/me?fields=id", TOKEN_B,
                                            headers={"Host": "graph.facebook.com"})
        self.assertEqual(error_of(json.loads(body))[0], 190)
        status, _, body = self.mock.request("GET", "/v21.0/me?fields=id", TOKEN_B,
                                            headers={"Host": "graph.instagram.com"})
        self.assertEqual(status, 200)


class BatchTests(MockCase):
    """POST / batch: item shape, limits, host, per-item faults."""

    def test_batch_items(self):
        items = [{"method": "GET", "relative_url": "%s?fields=name,username" % u}
                 for u in (JANE, NO_CONSENT, "v21.0/" + JOHN)]
        status, arr = self.mock.batch(items)
        self.assertEqual(status, 200)
        self.assertEqual([i["code"] for i in arr], [200, 400, 200])
        self.assertIsInstance(arr[0]["headers"], list)
        self.assertEqual(json.loads(arr[0]["body"])["username"], "jane.doe")
        self.assertEqual(error_of(json.loads(arr[1]["body"]))[0], 230)
        st = self.mock.stats()
        self.assertEqual(st["by_endpoint"]["batch"], 1)
        self.assertEqual(st["by_endpoint"]["batch_items"], 3)
        self.assertEqual(st["by_user"][JANE], 1)

    def test_batch_limits(self):
        items = [{"method": "GET", "relative_url": JANE + "?fields=username"}] * 50
        status, arr = self.mock.batch(items)
        self.assertEqual((status, len(arr)), (200, 50))
        status, obj = self.mock.batch(items + items[:1])
        self.assertEqual((status, error_of(obj)[0]), (400, 100))
        status, obj = self.mock.batch(items[:2], token=TOKEN_B)
        self.assertEqual((status, error_of(obj)[0]), (400, 100))

    def test_batch_item_faults(self):
        self.mock.fault({"type": "graph_error", "code": 2018218}, match={"user": JOHN})
        self.mock.fault({"type": "batch_null"}, match={"user": STORIES})
        items = [{"method": "GET", "relative_url": "%s?fields=username" % u}
                 for u in (JANE, JOHN, STORIES)]
        status, arr = self.mock.batch(items)
        self.assertEqual(arr[0]["code"], 200)
        self.assertEqual(error_of(json.loads(arr[1]["body"]))[0], 2018218)
        self.assertIsNone(arr[2])

    def test_batch_item_transport_fault_takes_the_batch(self):
        self.mock.fault({"type": "reset"}, match={"user": JOHN}, count=1)
        items = [{"method": "GET", "relative_url": "%s?fields=username" % u}
                 for u in (JANE, JOHN)]
        with self.assertRaises(ConnectionResetError):
            self.mock.batch(items)


class FaultTests(MockCase):
    """Every fault type, matching, counting and ordering."""

    def profile(self, user=JANE, timeout=10):
        return self.mock.request("GET", "/v21.0/%s?fields=name,username,profile_pic" % user,
                                 TOKEN_A, timeout=timeout)

    def test_latency(self):
        # Margins are wide so a loaded 2-core CI machine cannot flake this.
        self.mock.fault({"type": "latency", "ms": 1500}, count=1)
        t0 = time.monotonic()
        self.assertEqual(self.profile()[0], 200)
        self.assertGreaterEqual(time.monotonic() - t0, 1.49)
        t0 = time.monotonic()
        self.profile()  # the fault was consumed
        self.assertLess(time.monotonic() - t0, 1.2)

    def test_graph_error(self):
        self.mock.fault({"type": "graph_error", "code": 190, "subcode": 463}, count=2)
        for _ in range(2):
            status, _, body = self.profile()
            err = json.loads(body)["error"]
            self.assertEqual((status, err["code"], err["error_subcode"]), (400, 190, 463))
            self.assertEqual(err["type"], "OAuthException")
        self.assertEqual(self.profile()[0], 200)
        self.mock.fault({"type": "graph_error", "code": 2, "is_transient": True,
                         "http_status": 503, "error_type": "FacebookApiException",
                         "message": "Service temporarily unavailable"}, count=1)
        status, _, body = self.profile()
        err = json.loads(body)["error"]
        self.assertEqual((status, err["code"], err["is_transient"], err["type"]),
                         (503, 2, True, "FacebookApiException"))
        self.assertNotIn("error_subcode", err)

    def test_http_status(self):
        self.mock.fault({"type": "http_status", "status": 502}, count=1)
        status, headers, body = self.profile()
        self.assertEqual(status, 502)
        self.assertIn(b"<html", body)
        self.mock.fault({"type": "http_status", "status": 429, "body": "",
                         "headers": {"Retry-After": "7"}}, count=1)
        status, headers, body = self.profile()
        self.assertEqual((status, body, headers["retry-after"]), (429, b"", "7"))

    def test_malformed_and_truncated_json(self):
        for kind in ("malformed_json", "truncated_json"):
            self.mock.fault({"type": kind}, count=1)
            status, headers, body = self.profile()
            self.assertEqual(status, 200)
            self.assertEqual(int(headers["content-length"]), len(body))
            with self.assertRaises(ValueError, msg=kind):
                json.loads(body)

    def test_short_body(self):
        self.mock.fault({"type": "short_body"}, count=1)
        with self.assertRaises(http.client.IncompleteRead):
            self.profile()

    def test_oversized(self):
        self.mock.fault({"type": "oversized", "bytes": 2 * 1024 * 1024}, count=1)
        status, headers, body = self.profile()
        self.assertEqual((status, len(body)), (200, 2 * 1024 * 1024))
        self.assertEqual(json.loads(body)["id"], JANE)

    def test_slow_drip(self):
        self.mock.fault({"type": "slow_drip", "bytes_per_second": 100, "total_bytes": 120},
                        count=1)
        conn = http.client.HTTPConnection("127.0.0.1", self.mock.port, timeout=2)
        t0 = time.monotonic()
        conn.request("GET", "/v21.0/%s?fields=username" % JANE,
                     headers={"Authorization": "Bearer " + TOKEN_A})
        resp = conn.getresponse()
        first = time.monotonic() - t0
        body = resp.read()  # each byte arrives well within the per-read timeout
        total = time.monotonic() - t0
        conn.close()
        self.assertLess(first, 1.0)
        self.assertGreaterEqual(total, 1.0)  # ...but a 1 s total deadline trips
        self.assertEqual(len(body), 120)
        self.assertEqual(json.loads(body)["username"], "jane.doe")

    def test_reset_close_and_hang(self):
        self.mock.fault({"type": "reset"}, count=1)
        with self.assertRaises(ConnectionResetError):
            self.profile()
        self.mock.fault({"type": "close"}, count=1)
        with self.assertRaises(http.client.RemoteDisconnected):
            self.profile()
        self.mock.fault({"type": "hang", "seconds": 1.0}, count=1)
        with self.assertRaises(socket.timeout):
            self.profile(timeout=0.4)
        self.assertEqual(self.mock.stats()["in_flight"], 1)
        deadline = time.monotonic() + 5  # the hang ends by itself after 1 s
        while self.mock.stats()["in_flight"] and time.monotonic() < deadline:
            time.sleep(0.05)
        self.assertEqual(self.mock.stats()["in_flight"], 0)
        self.assertEqual(self.mock.stats()["requests"][-1]["status"], 0)
        self.assertEqual(self.profile()[0], 200)

    def test_body_modifiers(self):
        self.mock.fault({"type": "empty_object"}, count=1)
        self.assertEqual(self.profile()[2], b"{}")
        self.mock.fault({"type": "absent_name"}, count=1)
        self.mock.fault({"type": "null_profile_pic"}, count=1)
        obj = json.loads(self.profile()[2])
        self.assertNotIn("name", obj)
        self.assertIn("profile_pic", obj)
        self.assertIsNone(obj["profile_pic"])
        self.mock.fault({"type": "mismatched_id"}, count=1)
        obj = json.loads(self.profile()[2])
        self.assertNotEqual(obj["id"], JANE)
        self.assertEqual(len(obj["id"]), len(JANE))

    def test_usage_fault(self):
        self.mock.fault({"type": "usage", "app": {"call_count": 95},
                         "buc": {"call_count": 101, "estimated_time_to_regain_access": 5}},
                        count=1)
        _, headers, _ = self.profile()
        self.assertEqual(json.loads(headers["x-app-usage"])["call_count"], 95)
        buc = json.loads(headers["x-business-use-case-usage"])[ACCT_A][0]
        self.assertEqual((buc["call_count"], buc["estimated_time_to_regain_access"]), (101, 5))
        self.mock.fault({"type": "usage", "app": None}, count=1)
        _, headers, _ = self.profile()
        self.assertNotIn("x-app-usage", headers)
        self.assertIn("x-business-use-case-usage", headers)

    def test_matching(self):
        self.mock.fault({"type": "graph_error", "code": 551}, match={"user": JOHN})
        self.mock.fault({"type": "graph_error", "code": 613}, match={"account": ACCT_B})
        self.mock.fault({"type": "graph_error", "code": 10}, match={"endpoint": "me"})
        self.assertEqual(self.profile(JANE)[0], 200)
        self.assertEqual(error_of(json.loads(self.profile(JOHN)[2]))[0], 551)
        self.assertEqual(error_of(self.mock.get(JANE + "?fields=id", token=TOKEN_B)[1])[0],
                         613)
        self.assertEqual(error_of(self.mock.get("me?fields=id")[1])[0], 10)
        self.assertEqual(len(self.mock.admin("GET", "faults")[1]["faults"]), 3)
        self.mock.admin("DELETE", "faults")
        self.assertEqual(self.profile(JOHN)[0], 200)

    def test_order_and_consumption(self):
        self.mock.fault({"type": "graph_error", "code": 17}, count=1)
        self.mock.fault({"type": "graph_error", "code": 32}, count=1)
        codes = [error_of(json.loads(self.profile()[2]))[0] for _ in range(2)]
        self.assertEqual(codes, [17, 32])
        self.assertEqual(self.profile()[0], 200)

    def test_rate(self):
        # A fault with a rate hits about that share of its matching calls; the
        # bounds are more than 6 standard deviations wide, so this cannot flake.
        status, obj = self.mock.admin("POST", "faults", {
            "match": {"endpoint": "profile"}, "rate": 0.25,
            "fault": {"type": "http_status", "status": 503}})
        self.assertEqual(status, 200, obj)
        self.assertEqual(self.mock.admin("GET", "faults")[1]["faults"][0]["rate"], 0.25)
        conn = http.client.HTTPConnection("127.0.0.1", self.mock.port, timeout=10)
        statuses = []
        try:
            for _ in range(800):
                conn.request("GET", "/v21.0/%s?fields=username" % JANE,
                             headers={"Authorization": "Bearer " + TOKEN_A})
                resp = conn.getresponse()
                resp.read()
                statuses.append(resp.status)
        finally:
            conn.close()
        failed = statuses.count(503)
        self.assertEqual(failed + statuses.count(200), 800)
        self.assertTrue(120 <= failed <= 280, "%d of 800 calls failed at rate 0.25" % failed)
        self.assertEqual(self.mock.get("me?fields=id")[0], 200)  # match still applies
        # With a count too, only the calls it hit consume it.
        self.mock.admin("DELETE", "faults")
        status, obj = self.mock.admin("POST", "faults", {
            "rate": 0.5, "count": 3, "fault": {"type": "graph_error", "code": 2}})
        self.assertEqual(status, 200, obj)
        errors = sum(1 for _ in range(100) if self.profile()[0] != 200)
        self.assertEqual(errors, 3)
        self.assertEqual(self.mock.admin("GET", "faults")[1]["faults"], [])
        for rate in (0, -0.1, 1.5, "0.5", True):
            spec = {"rate": rate, "fault": {"type": "reset"}}
            self.assertEqual(self.mock.admin("POST", "faults", spec)[0], 400, spec)

    def test_bad_fault_definitions(self):
        for spec in ({"fault": {"type": "nope"}}, {"fault": {"type": "latency"}},
                     {"match": {"colour": "red"}, "fault": {"type": "reset"}},
                     {"count": 0, "fault": {"type": "reset"}}):
            self.assertEqual(self.mock.admin("POST", "faults", spec)[0], 400, spec)


class CounterTests(MockCase):
    """Counters, the request log, config and reset."""

    def test_counters_and_reset(self):
        self.mock.get(JANE + "?fields=username")
        self.mock.get(JANE + "?fields=username")
        self.mock.get("me?fields=id", token=TOKEN_B)
        self.mock.get("me/conversations?" + CONV_Q)
        # a request is logged and leaves in_flight just after its answer
        # is sent: give the last one a moment to settle
        deadline = time.monotonic() + 2
        st = self.mock.stats()
        while (st["in_flight"] or len(st["requests"]) < 4) and time.monotonic() < deadline:
            time.sleep(0.02)
            st = self.mock.stats()
        self.assertEqual(st["total"], 4)
        self.assertEqual(st["by_endpoint"]["profile"], 2)
        self.assertEqual(st["by_endpoint"]["me"], 1)
        self.assertEqual(st["by_endpoint"]["conversations"], 1)
        self.assertEqual(st["by_account"], {ACCT_A: 3, ACCT_B: 1})
        self.assertEqual(st["by_user"], {JANE: 2})
        self.assertEqual(st["in_flight"], 0)
        req = st["requests"][0]
        self.assertEqual(set(req) - {"faults"},
                         {"t", "end", "method", "path", "account", "endpoint", "status"})
        self.assertEqual((req["method"], req["account"], req["endpoint"], req["status"]),
                         ("GET", ACCT_A, "profile", 200))
        self.assertEqual(req["path"], "/v21.0/%s?fields=username" % JANE)
        self.assertLessEqual(req["t"], req["end"])
        self.mock.fault({"type": "reset"})
        self.mock.admin("POST", "config", {"latency_ms": 5})
        self.mock.admin("POST", "reset")
        st = self.mock.stats()
        self.assertEqual((st["total"], st["requests"], st["by_user"]), (0, [], {}))
        self.assertEqual(self.mock.admin("GET", "faults")[1]["faults"], [])
        self.assertEqual(self.mock.admin("GET", "config")[1]["latency_ms"], 0)

    def test_config(self):
        self.mock.admin("POST", "config", {"latency_ms": 200})
        t0 = time.monotonic()
        self.mock.get("me?fields=id")
        self.assertGreaterEqual(time.monotonic() - t0, 0.19)
        self.mock.admin("POST", "config", {"latency_ms": 0, "usage": {
            "app": {"call_count": 85}, "buc": {"call_count": 90,
                                               "estimated_time_to_regain_access": 3}}})
        _, headers, _ = self.mock.request("GET", "/v21.0/me?fields=id", TOKEN_A)
        self.assertEqual(json.loads(headers["x-app-usage"])["call_count"], 85)
        buc = json.loads(headers["x-business-use-case-usage"])[ACCT_A][0]
        self.assertEqual(buc["estimated_time_to_regain_access"], 3)
        self.mock.admin("POST", "config", {"usage_headers": False})
        _, headers, _ = self.mock.request("GET", "/v21.0/me?fields=id", TOKEN_A)
        self.assertNotIn("x-app-usage", headers)
        self.assertNotIn("x-business-use-case-usage", headers)
        self.assertEqual(self.mock.admin("POST", "config", {"no_such": 1})[0], 400)

    def test_computed_usage_and_enforcement(self):
        self.mock.admin("POST", "config", {"budget_per_min": 4, "enforce_rate_limit": True})
        pcts = []
        for _ in range(4):
            _, headers, _ = self.mock.request("GET", "/v21.0/me?fields=id", TOKEN_A)
            pcts.append(json.loads(headers["x-business-use-case-usage"])[ACCT_A][0]
                        ["call_count"])
        self.assertEqual(pcts, [25, 50, 75, 100])
        status, obj = self.mock.get("me?fields=id")
        self.assertEqual((status, error_of(obj)[0]), (400, 80002))
        self.assertEqual(self.mock.get("me?fields=id", token=TOKEN_B)[0], 200)
        self.mock.admin("POST", "config", {"app_budget_per_min": 5})
        self.assertEqual(error_of(self.mock.get("me?fields=id", token=TOKEN_B)[1])[0], 4)

    def test_concurrency(self):
        self.mock.admin("POST", "config", {"latency_ms": 300})
        results = []

        def one():
            results.append(self.mock.get(JANE + "?fields=username")[0])

        threads = [threading.Thread(target=one) for _ in range(16)]
        t0 = time.monotonic()
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.monotonic() - t0
        self.assertEqual(results, [200] * 16)
        self.assertGreaterEqual(self.mock.stats()["max_in_flight"], 16)
        self.assertLess(elapsed, 3.0)  # one after another would take 4.8 s


class PagingTests(MockCase):
    """Cursor paging over --generate-conversations 120 (60 per account)."""

    mock_args = ("--generate-conversations", "120", "--seed", "7")

    # Pages through an account's conversations by `after` cursor; returns
    # (all ids in order, every page).
    def walk(self, token, node, limit):
        ids, pages, after = [], [], None
        while True:
            path = "%s/conversations?%s&limit=%d" % (node, CONV_Q, limit)
            if after:
                path += "&after=" + after
            status, obj = self.mock.get(path, token=token)
            self.assertEqual(status, 200, obj)
            pages.append(obj)
            ids += [c["id"] for c in obj["data"]]
            if "next" not in obj.get("paging", {}):
                return ids, pages
            after = obj["paging"]["cursors"]["after"]

    def test_union_of_pages(self):
        ids, pages = self.walk(TOKEN_A, PAGE_A, 7)
        self.assertEqual(len(pages), 9)
        self.assertEqual(len(ids), 60)
        self.assertEqual(len(set(ids)), 60)
        for page in pages:
            self.assertTrue(page["data"])
            self.assertEqual(set(page["paging"]["cursors"]), {"before", "after"})
        self.assertNotIn("next", pages[-1]["paging"])
        _, whole = self.mock.get("%s/conversations?%s&limit=100" % (PAGE_A, CONV_Q))
        self.assertEqual([c["id"] for c in whole["data"]], ids)
        ids_b, _ = self.walk(TOKEN_B, "me", 25)
        self.assertEqual(len(set(ids_b)), 60)
        self.assertFalse(set(ids) & set(ids_b))

    def test_cursors_are_opaque_and_next_is_clean(self):
        _, obj = self.mock.get("me/conversations?%s&limit=5" % CONV_Q)
        after = obj["paging"]["cursors"]["after"]
        self.assertFalse(after.isdigit())
        self.assertTrue(after.startswith("QVFI"))
        nxt = obj["paging"]["next"]
        self.assertNotIn("token", nxt)
        self.assertNotIn(TOKEN_A, nxt)
        split = urlsplit(nxt)
        self.assertEqual(split.port, self.mock.port)
        status, _, body = self.mock.request("GET", split.path + "?" + split.query, TOKEN_A)
        second = json.loads(body)
        self.assertEqual(status, 200)
        self.assertEqual(len(second["data"]), 5)
        self.assertNotEqual(second["data"][0]["id"], obj["data"][0]["id"])
        # A cursor forged from an int, or tampered with, or from another
        # account's list, is refused.
        forged = base64.urlsafe_b64encode(b"AQH10:0000000000000000").decode().rstrip("=")
        for bad in ("10", forged, after[:-2] + "xx"):
            status, obj = self.mock.get("me/conversations?%s&after=%s" % (CONV_Q, bad))
            self.assertEqual((status, error_of(obj)[0]), (400, 100), bad)
        status, obj = self.mock.get("me/conversations?%s&after=%s" % (CONV_Q, after),
                                    token=TOKEN_B)
        self.assertEqual(error_of(obj)[0], 100)

    def test_generated_users(self):
        _, obj = self.mock.get("2000000000000000?fields=username")
        self.assertEqual(obj["username"], "user.0")
        _, obj = self.mock.get("2000000000000119?fields=username")
        self.assertEqual(obj["username"], "user.119")
        status, obj = self.mock.get(JANE + "?fields=username")
        self.assertEqual(error_of(obj), (100, 33))  # no built-in users with --generate-*


class ProcessTests(unittest.TestCase):
    """Process behaviour: signals, fixtures, determinism, no token recorded."""

    def test_sigterm_during_hang_and_drip(self):
        for fault in ({"type": "hang"}, {"type": "slow_drip", "bytes_per_second": 1}):
            mock = Mock("--quiet")
            mock.fault(fault)
            threading.Thread(target=lambda: self._swallow(mock), daemon=True).start()
            deadline = time.monotonic() + 5
            while mock.stats()["in_flight"] < 1 and time.monotonic() < deadline:
                time.sleep(0.02)
            self.assertEqual(mock.stats()["in_flight"], 1)
            rc, elapsed, rest = mock.stop()
            self.assertEqual(rc, 0, fault)
            self.assertLess(elapsed, 1.0, fault)
            self.assertEqual(rest, b"")

    @staticmethod
    def _swallow(mock):
        try:
            mock.request("GET", "/v21.0/%s?fields=username" % JANE, TOKEN_A, timeout=30)
        except Exception:
            pass

    def test_sigint_exits_zero(self):
        mock = Mock("--quiet")
        rc, elapsed, _ = mock.stop(signal.SIGINT)
        self.assertEqual(rc, 0)
        self.assertLess(elapsed, 1.0)

    def test_fixture(self):
        fixture = {
            "accounts": [{"ig_account_id": "555", "self_igsid": "556", "page_id": "557",
                          "token": "fixture-token", "api_host": "graph.instagram.com",
                          "username": "fixture.shop"}],
            "users": [{"id": "777", "username": "fixture.user", "profile_pic": None}],
            "conversations": [{"id": "aWdfZml4", "account": "555", "participant": "777",
                               "updated_time": "2025-07-28T22:44:49+0000",
                               "messages": [{"id": "m1", "created_time":
                                             "2025-07-28T22:44:49+0000", "from": "777",
                                             "to": "556", "message": "yo"}]}]}
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as fh:
            json.dump(fixture, fh)
        try:
            mock = Mock("--quiet", "--fixture", fh.name)
            try:
                status, obj = mock.get("777?fields=name,username,profile_pic",
                                       token="fixture-token")
                self.assertEqual(obj, {"username": "fixture.user", "profile_pic": None,
                                       "id": "777"})
                _, obj = mock.get("me/conversations?fields=participants,messages{from}",
                                  token="fixture-token")
                conv = obj["data"][0]
                self.assertEqual(conv["participants"]["data"][0],
                                 {"username": "fixture.shop", "id": "556"})
                self.assertEqual(conv["messages"]["data"][0]["from"]["id"], "777")
                self.assertEqual(mock.get("me?fields=id", token=TOKEN_A)[0], 400)
            finally:
                mock.stop()
        finally:
            os.unlink(fh.name)

    def test_generation_is_deterministic(self):
        seen = []
        for seed in ("3", "3", "4"):
            mock = Mock("--quiet", "--generate-users", "50", "--seed", seed)
            try:
                seen.append([mock.get("%d?fields=name,follower_count" % (2000000000000000 + i))
                             [1] for i in range(0, 50, 7)])
            finally:
                mock.stop()
        self.assertEqual(seen[0], seen[1])
        self.assertNotEqual(seen[0], seen[2])

    def test_tokens_never_recorded(self):
        secret = "ZZsecretTOKEN31337qq"
        with tempfile.TemporaryDirectory() as tmp:
            errpath = os.path.join(tmp, "stderr")
            mock = Mock("--log-requests", stderr_path=errpath)
            mock.admin("POST", "data", {"accounts": [{"ig_account_id": "999", "token": secret}],
                                        "users": [{"id": "888", "username": "x"}]})
            mock.fault({"type": "graph_error", "code": 190}, match={"user": "888"}, count=1)
            paths = ["/v21.0/888?fields=username", "/v21.0/888?fields=username",
                     "/v21.0/me?access_token=%s&fields=id" % secret,
                     "/v21.0/me?fields=id&input_token=%s" % secret,
                     "/v21.0/%s?fields=id" % secret,
                     "/v21.0/me/conversations?platform=instagram&after=" + secret]
            for path in paths:
                mock.request("GET", path, secret)
                mock.request("GET", path, secret + "-wrong")
            mock.request("POST", "/v21.0/", secret, body="access_token=%s&batch=[]" % secret,
                         headers={"Content-Type": "application/x-www-form-urlencoded"})
            mock.batch([{"method": "GET", "relative_url": "888?access_token=" + secret}],
                       token=secret)
            # A request line the stdlib parser rejects (it would log it).
            with socket.create_connection(("127.0.0.1", mock.port), timeout=5) as s:
                s.sendall(("GET /v21.0/me?access_token=%s HTTP/1.1 extra\r\n\r\n"
                           % secret).encode())
                s.recv(65536)
            stats = json.dumps(mock.stats())
            faults = json.dumps(mock.admin("GET", "faults"))
            config = json.dumps(mock.admin("GET", "config"))
            rc, _, rest = mock.stop()
            with open(errpath, "rb") as fh:
                err = fh.read()
        self.assertEqual(rc, 0)
        self.assertGreaterEqual(json.loads(stats)["total"], 14)
        self.assertIn(b"/v21.0/888?fields=username", err)  # the log does run
        for where, text in (("stats", stats), ("faults", faults), ("config", config),
                            ("stdout", (mock.startup_line + rest.decode())),
                            ("stderr", err.decode("utf-8", "replace"))):
            self.assertNotIn(secret, text, where)


# --------------------------------------------------------------------------
# Throughput figures (python3 test_mock_graph.py --bench)
# --------------------------------------------------------------------------

# One keep-alive client on a raw socket (lighter than http.client, so the
# figures measure the mock): counts complete responses until the deadline.
def _bench_client(port, request, deadline, counts, idx):
    s = socket.create_connection(("127.0.0.1", port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    buf, n = b"", 0
    while time.monotonic() < deadline:
        s.sendall(request)
        while b"\r\n\r\n" not in buf:
            buf += s.recv(65536)
        head, _, buf = buf.partition(b"\r\n\r\n")
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        while len(buf) < length:
            buf += s.recv(65536)
        buf = buf[length:]
        n += 1
    s.close()
    counts[idx] = n


# Prints requests/second for keep-alive clients at latency 0 and 50 ms,
# then how long a simultaneous burst of delayed requests takes.
def bench(seconds=3.0):
    mock = Mock("--quiet", "--generate-users", "1000")
    request = ("GET /v21.0/2000000000000042?fields=name,username,profile_pic HTTP/1.1\r\n"
               "Host: 127.0.0.1\r\nAuthorization: Bearer %s\r\n\r\n" % TOKEN_A).encode()
    try:
        for latency in (0, 50):
            mock.admin("POST", "config", {"latency_ms": latency})
            for clients in (16, 64, 128):
                mock.admin("POST", "reset")
                mock.admin("POST", "config", {"latency_ms": latency})
                counts = [0] * clients
                deadline = time.monotonic() + seconds
                threads = [threading.Thread(target=_bench_client,
                                            args=(mock.port, request, deadline, counts, i))
                           for i in range(clients)]
                t0 = time.monotonic()
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()
                elapsed = time.monotonic() - t0
                st = mock.stats()
                print("latency %3d ms, %3d keep-alive clients: %6.0f req/s "
                      "(max_in_flight %d)" % (latency, clients, sum(counts) / elapsed,
                                              st["max_in_flight"]), flush=True)
        # A burst: N open keep-alive connections each send one request at the
        # same moment; with 50 ms latency all should be done in ~50 ms.
        mock.admin("POST", "config", {"latency_ms": 50})
        for clients in (64, 128):
            socks = [socket.create_connection(("127.0.0.1", mock.port))
                     for _ in range(clients)]
            t0 = time.monotonic()
            for s in socks:
                s.sendall(request)
            for s in socks:
                buf = b""
                while b"\r\n\r\n" not in buf:
                    buf += s.recv(65536)
            elapsed = time.monotonic() - t0
            for s in socks:
                s.close()
            print("burst of %d concurrent requests delayed 50 ms each: all answered in "
                  "%.0f ms" % (clients, elapsed * 1000), flush=True)
    finally:
        mock.stop()


# Runs the suite and ends with the one line scripts/test.sh parses.
def main():
    if "--bench" in sys.argv[1:]:
        bench()
        return 0
    suite = unittest.defaultTestLoader.loadTestsFromModule(sys.modules[__name__])
    result = unittest.TextTestRunner(stream=sys.stderr, verbosity=2).run(suite)
    failed = len(result.failures) + len(result.errors) + len(result.unexpectedSuccesses)
    passed = result.testsRun - len(result.failures) - len(result.errors) \
        - len(result.unexpectedSuccesses) - len(result.skipped)
    passed = max(0, passed)
    sys.stderr.flush()
    print("%d passed, %d failed" % (passed, failed), flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
