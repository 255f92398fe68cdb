#!/usr/bin/env python3
"""mock_graph — a local stand-in for the Instagram Graph API.

Every test and benchmark of ig_identity talks to this process instead of Meta.
It serves both login flavours' shapes (graph.facebook.com with a Page token,
graph.instagram.com with an Instagram token) from one loopback port: the user
profile node, /me, the conversations edge with opaque cursors, the
conversation node with its messages, and batch requests. It sends the usage
headers Meta sends, counts every call for tests to assert on, and injects
faults on request (errors, HTTP statuses, broken bodies, slow or dead
connections). It never records a token.

The contract with the C++ client is test/mock_graph/CONTRACT.md; the README
next to this file documents the CLI, the admin API and the fault types.
Python 3 standard library only.
"""

import argparse
import base64
import calendar
import collections
import hashlib
import hmac
import itertools
import json
import os
import random
import re
import signal
import socket
import struct
import sys
import threading
import time
from email.utils import formatdate
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, quote, unquote_plus, urlencode, urlsplit

DEFAULT_VERSION = "v21.0"
FB_HOST = "graph.facebook.com"
IG_HOST = "graph.instagram.com"
API_HOSTS = (FB_HOST, IG_HOST)

REQUEST_LOG_SIZE = 20000
MAX_REQUEST_BODY = 16 * 1024 * 1024
MAX_BATCH = 50
MAX_PAGE_LIMIT = 100
MESSAGE_DETAIL_WINDOW = 20  # only the newest 20 messages carry details

DEFAULT_CONFIG = {
    "latency_ms": 0,            # added to every Graph response
    "usage": None,              # {"app":{...},"buc":{...}} merged into usage headers
    "usage_headers": True,      # false: send no usage headers at all
    "budget_per_min": 10000,    # calls per account per 60 s that make 100 % (BUC header)
    "app_budget_per_min": 10000,  # calls app-wide per 60 s that make 100 % (X-App-Usage)
    "enforce_rate_limit": False,  # true: answer code 4 / 80002 once usage reaches 100 %
    "omit_nested_messages": False,  # true: the conversations edge leaves out a nested
                                    # messages field (the client must fetch them itself)
}

ENDPOINTS = ("profile", "me", "conversations", "conversation", "batch", "batch_items",
             "refresh")

# The two login flavours, decided by the account's host (GRAPH_API hosts table).
FB_LOGIN = "facebook_login"    # graph.facebook.com, Page access token
IG_LOGIN = "instagram_login"   # graph.instagram.com, Instagram user token
LOGIN_OF_HOST = {FB_HOST: FB_LOGIN, IG_HOST: IG_LOGIN}
LONG_LIVED_S = 60 * 86400      # an Instagram Login long-lived token lasts 60 days
SHORT_LIVED_S = 3600           # a short-lived one, an hour
REFRESH_MIN_AGE_S = 86400      # refreshable once at least 24 h old

PROFILE_FIELDS = ("id", "name", "username", "profile_pic", "follower_count",
                  "is_user_follow_business", "is_business_follow_user", "is_verified_user")
PROFILE_DEFAULTS = {"follower_count": 0, "is_user_follow_business": False,
                    "is_business_follow_user": False, "is_verified_user": False}
ME_FIELDS = ("id", "user_id", "username", "name", "account_type", "followers_count",
             "media_count", "profile_picture_url")
PAGE_FIELDS = ("id", "name", "instagram_business_account")
CONVERSATION_FIELDS = ("id", "updated_time", "participants", "messages", "message_count",
                       "unread_count", "can_reply")
MESSAGE_FIELDS = ("id", "created_time", "from", "to", "message", "attachments",
                  "reactions", "shares", "story", "is_unsupported")

# Fault types. Modifiers stack; of the others only the first match applies.
MODIFIER_FAULTS = ("latency", "usage", "absent_name", "null_profile_pic", "mismatched_id")
TERMINAL_FAULTS = ("graph_error", "http_status", "malformed_json", "truncated_json",
                   "short_body", "oversized", "slow_drip", "reset", "close", "hang",
                   "empty_object", "batch_null")
# Faults that act on the connection rather than on one response body; inside a
# batch they take the whole batch response with them.
TRANSPORT_FAULTS = ("short_body", "slow_drip", "reset", "close", "hang")
MATCH_KEYS = ("user", "account", "endpoint")
NUMERIC_FAULT_PARAMS = ("ms", "code", "subcode", "http_status", "status", "bytes",
                        "bytes_per_second", "total_bytes", "seconds")

# Default messages for graph_error faults, worded as Meta words them.
ERROR_MESSAGES = {
    1: "An unknown error has occurred.",
    2: "An unexpected error has occurred. Please retry your request later.",
    4: "(#4) Application request limit reached",
    10: "(#10) Application does not have permission for this action",
    17: "(#17) User request limit reached",
    32: "(#32) Page request limit reached",
    100: "(#100) Invalid parameter",
    102: "Session key invalid or no longer valid",
    190: "Error validating access token: Session has expired on Monday, 28-Jul-25 "
         "15:00:00 PDT. The current time is Monday, 28-Jul-25 16:12:41 PDT.",
    200: "(#200) Requires instagram_manage_messages permission to manage the object",
    230: "(#230) User consent is required to access user profile",
    341: "(#341) Application limit reached",
    368: "The action attempted has been deemed abusive or is otherwise disallowed",
    551: "This person isn't available right now.",
    613: "(#613) Calls to this api have exceeded the rate limit.",
    9010: "No matching user found",
    36103: "(#36103) This account is not eligible for this feature",
    80002: "(#80002) There have been too many calls to this Instagram account. "
           "Wait a bit and try again. For more info, please refer to "
           "https://developers.facebook.com/docs/graph-api/overview/rate-limiting.",
}

REASONS = {s.value: s.phrase for s in HTTPStatus}
VERSION_RE = re.compile(r"^/v\d+\.\d+(?=/|$)")


class GraphError(Exception):
    """A Graph API error answer raised while rendering a node."""

    def __init__(self, code, message, subcode=None, http_status=400,
                 type_="OAuthException", is_transient=None):
        super().__init__(message)
        self.code, self.message, self.subcode = code, message, subcode
        self.http_status, self.type, self.is_transient = http_status, type_, is_transient

    # The JSON envelope for this error, with a fresh fbtrace_id.
    def body(self):
        return error_envelope(self.code, self.message, self.type, self.subcode,
                              self.is_transient)


# --------------------------------------------------------------------------
# Small helpers
# --------------------------------------------------------------------------

# Meta's trace ids look like "EJplcsCHuLu"; every error carries a fresh one.
def trace_id():
    return base64.b64encode(os.urandom(9)).decode()[:11].replace("+", "A").replace("/", "B")


# Builds Meta's error envelope; absent optional keys stay absent, as at Meta.
def error_envelope(code, message, type_="OAuthException", subcode=None, is_transient=None,
                   extra=None):
    err = {"message": message, "type": type_, "code": code}
    if subcode is not None:
        err["error_subcode"] = subcode
    if is_transient is not None:
        err["is_transient"] = is_transient
    if extra:
        err.update(extra)
    err["fbtrace_id"] = trace_id()
    return {"error": err}


# The unknown-object error Meta gives for ids it cannot or will not load.
def no_such_object(node_id, method="get"):
    return GraphError(100, "Unsupported %s request. Object with ID '%s' does not exist, "
                      "cannot be loaded due to missing permissions, or does not support "
                      "this operation. Please read the Graph API documentation at "
                      "https://developers.facebook.com/docs/graph-api" % (method, node_id),
                      subcode=33, type_="GraphMethodException")


# Compact UTF-8 JSON, the way Meta sends it.
def dumps(obj):
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


# Graph times are ISO-8601 in UTC with "+0000" (not "Z").
def iso_time(ts):
    return time.strftime("%Y-%m-%dT%H:%M:%S+0000", time.gmtime(ts))


# Seconds since the epoch for a Graph time (UTC, whatever the local zone).
def parse_iso(text):
    return calendar.timegm(time.strptime(text[:19], "%Y-%m-%dT%H:%M:%S"))


# Meta's object ids are base64 of an internal key ("aWdf..." is "ig_...").
def b64id(text):
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


# Removes token values from a path+query before it is recorded anywhere:
# any query parameter whose name mentions "token", and any known token
# (`tokens` holds each token both raw and percent-encoded).
def redact_path(raw, tokens=()):
    path, sep, query = raw.partition("?")
    if sep:
        parts = []
        for part in query.split("&"):
            key = part.split("=", 1)[0]
            if "token" in unquote_plus(key).lower():
                part = key + "=REDACTED"
            parts.append(part)
        raw = path + "?" + "&".join(parts)
    for tok in tokens:
        if tok in raw:
            raw = raw.replace(tok, "REDACTED")
    return raw


# --------------------------------------------------------------------------
# The `fields` parameter: a,b.limit(5){c,d{e}}
# --------------------------------------------------------------------------

class Field:
    """One requested field: its name, modifiers such as limit(20), subfields."""
    __slots__ = ("name", "mods", "sub")

    def __init__(self, name, mods, sub):
        self.name, self.mods, self.sub = name, mods, sub


# Parses Graph field-expansion syntax into {name: Field}; None when absent.
def parse_fields(text):
    if text is None:
        return None
    pos = 0
    n = len(text)

    def fail(what):
        raise GraphError(100, "Syntax error \"%s\" at character %d: %s" % (what, pos, text))

    def skip_ws():
        nonlocal pos
        while pos < n and text[pos] in " \t":
            pos += 1

    def name():
        nonlocal pos
        start = pos
        while pos < n and (text[pos].isalnum() or text[pos] == "_"):
            pos += 1
        return text[start:pos]

    def parse_list(closing):
        nonlocal pos
        out = {}
        while True:
            skip_ws()
            if pos < n and text[pos] in ("," + closing):
                if text[pos] == ",":
                    pos += 1
                    continue
                return out
            if pos >= n:
                if closing:
                    fail("Expected \"}\" instead of end of string")
                return out
            fname = name()
            if not fname:
                fail("Expected field name")
            mods, sub = {}, None
            while pos < n and text[pos] == ".":
                pos += 1
                mname = name()
                if not mname or pos >= n or text[pos] != "(":
                    fail("Expected modifier")
                end = text.find(")", pos)
                if end < 0:
                    fail("Expected \")\"")
                mods[mname] = text[pos + 1:end].strip()
                pos = end + 1
            skip_ws()
            if pos < n and text[pos] == "{":
                pos += 1
                sub = parse_list("}")
                pos += 1  # the closing brace
            out[fname] = Field(fname, mods, sub)
            skip_ws()
            if pos < n and text[pos] not in ("," + closing):
                fail("Expected end of string instead of \"%s\"" % text[pos])

    return parse_list("")


# Rejects a field the node type does not have, as Meta does.
def check_fields(fields, allowed, node_type):
    for fname in fields:
        if fname not in allowed:
            raise GraphError(100, "(#100) Tried accessing nonexisting field (%s) on node "
                             "type (%s)" % (fname, node_type))


# --------------------------------------------------------------------------
# Cursors: base64("AQH" + offset + a keyed signature), so "QVFI..." like Meta's
# --------------------------------------------------------------------------

class Cursors:
    """Opaque, unguessable paging cursors bound to one list (scope)."""

    def __init__(self):
        self.key = os.urandom(16)

    # Keyed signature: a cursor is valid only for the list it came from.
    def _sig(self, index, scope):
        msg = ("%d|%s" % (index, scope)).encode()
        return hmac.new(self.key, msg, hashlib.sha256).hexdigest()[:16]

    # The cursor for item `index` of list `scope`.
    def encode(self, index, scope):
        raw = b"AQH" + ("%d:%s" % (index, self._sig(index, scope))).encode()
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    # Returns the item index, or raises the error Meta gives for a bad cursor.
    def decode(self, cursor, scope):
        try:
            raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
            if not raw.startswith(b"AQH"):
                raise ValueError
            index_s, sig = raw[3:].decode().split(":")
            index = int(index_s)
            if index < 0 or not hmac.compare_digest(sig, self._sig(index, scope)):
                raise ValueError
            return index
        except (ValueError, UnicodeDecodeError):
            raise GraphError(100, "(#100) The parameter after or before is not a valid cursor")


# --------------------------------------------------------------------------
# Data: accounts, users, conversations (immutable snapshots, swapped whole)
# --------------------------------------------------------------------------

# Validates and completes an account record from the CLI fixture or admin API.
def norm_account(a):
    if not isinstance(a, dict) or not a.get("ig_account_id") or not a.get("token"):
        raise ValueError("an account needs ig_account_id and token")
    acct = dict(a)
    acct["ig_account_id"] = str(acct["ig_account_id"])
    acct.setdefault("self_igsid", acct["ig_account_id"])
    acct["self_igsid"] = str(acct["self_igsid"] or acct["ig_account_id"])
    acct.setdefault("page_id", None)
    if acct["page_id"] is not None:
        acct["page_id"] = str(acct["page_id"])
    acct.setdefault("api_host", FB_HOST)
    if acct["api_host"] not in API_HOSTS:
        raise ValueError("api_host must be graph.facebook.com or graph.instagram.com")
    acct.setdefault("username", "account." + acct["ig_account_id"][-4:])
    # One login flavour per account, consistent with its host.
    acct.setdefault("login", LOGIN_OF_HOST[acct["api_host"]])
    if acct["login"] != LOGIN_OF_HOST[acct["api_host"]]:
        raise ValueError("login %s does not go with api_host %s" % (acct["login"],
                                                                    acct["api_host"]))
    if acct["login"] == FB_LOGIN and not acct["page_id"]:
        # a Page token always speaks for a Page: make one up, distinct from the ids
        acct["page_id"] = "10" + acct["ig_account_id"][-14:].rjust(14, "0")
        if acct["page_id"] in (acct["ig_account_id"], acct["self_igsid"]):
            acct["page_id"] = "11" + acct["page_id"][2:]
    if acct["login"] == IG_LOGIN:
        # /me's `id` on graph.instagram.com is app-scoped: never the account id
        acct.setdefault("app_scoped_id", "26" + acct["ig_account_id"][-14:].rjust(14, "0"))
        acct["app_scoped_id"] = str(acct["app_scoped_id"])
        if acct["app_scoped_id"] in (acct["ig_account_id"], acct["self_igsid"]):
            raise ValueError("app_scoped_id must differ from the account ids")
        acct.setdefault("token_kind", "long_lived")
        if acct["token_kind"] not in ("long_lived", "short_lived"):
            raise ValueError("token_kind must be long_lived or short_lived")
        # when the token was issued (epoch seconds); default: 10 days ago
        acct.setdefault("token_issued_at", time.time() - 10 * 86400)
        acct["token_issued_at"] = float(acct["token_issued_at"])
    # older tokens of the account that are still valid (a refresh does not
    # revoke the token it replaces)
    acct["old_tokens"] = [dict(t) for t in acct.get("old_tokens", ())]
    # "Require App Secret": every call needs appsecret_proof when set
    acct.setdefault("app_secret", None)
    return acct


# When an Instagram Login token stops working (epoch seconds); None: never.
def token_expires_at(acct, token):
    if acct.get("login") != IG_LOGIN:
        return None
    if token == acct["token"]:
        kind, issued = acct["token_kind"], acct["token_issued_at"]
    else:
        old = next((t for t in acct["old_tokens"] if t["token"] == token), None)
        if old is None:
            return None
        kind, issued = old["token_kind"], old["token_issued_at"]
    return issued + (LONG_LIVED_S if kind == "long_lived" else SHORT_LIVED_S)


# hex HMAC-SHA256 of the token keyed with the app secret, as Meta computes it.
def appsecret_proof(secret, token):
    return hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()


# Validates and completes a user record; absent keys stay absent on purpose.
def norm_user(u):
    if not isinstance(u, dict) or not u.get("id"):
        raise ValueError("a user needs an id")
    user = dict(u)
    user["id"] = str(user["id"])
    user.setdefault("consent", True)
    user.setdefault("available", True)
    return user


# Accepts an id, {"id":..}, or a list of either; returns a list of ids.
def id_list(v):
    if v is None:
        return []
    if isinstance(v, list):
        return [x for item in v for x in id_list(item)]
    if isinstance(v, dict):
        if "data" in v:
            return id_list(v["data"])
        return [str(v["id"])] if v.get("id") else []
    return [str(v)]


# Validates and completes a conversation; messages end up newest first.
def norm_conversation(c):
    if not isinstance(c, dict) or not c.get("id") or not c.get("account") \
            or not c.get("participant"):
        raise ValueError("a conversation needs id, account and participant")
    conv = dict(c)
    conv["id"], conv["account"] = str(conv["id"]), str(conv["account"])
    conv["participant"] = str(conv["participant"])
    conv.setdefault("updated_time", iso_time(time.time()))
    msgs = []
    for i, m in enumerate(conv.get("messages") or []):
        msg = dict(m)
        msg.setdefault("id", b64id("ig_item:%s:%d" % (conv["id"], i)))
        msg.setdefault("created_time", conv["updated_time"])
        frm = id_list(msg.get("from"))
        msg["from"] = frm[0] if frm else conv["participant"]
        msg["to"] = id_list(msg.get("to"))
        msgs.append(msg)
    msgs.sort(key=lambda m: m["created_time"], reverse=True)
    conv["messages"] = msgs
    return conv


class Data:
    """One consistent snapshot of everything the mock knows, with indexes.

    Requests read the snapshot they started with; the admin API builds a new
    one and swaps the reference, so readers never see a half-applied change.
    """

    def __init__(self, accounts=(), users=(), conversations=()):
        self.accounts = {}
        for a in accounts:
            self.accounts[a["ig_account_id"]] = a
        self.users = {u["id"]: u for u in users}
        self.convs = {c["id"]: c for c in conversations}
        self.by_token = {a["token"]: a for a in self.accounts.values()}
        for a in self.accounts.values():
            for t in a.get("old_tokens", ()):
                self.by_token.setdefault(t["token"], a)
        self.by_page = {a["page_id"]: a for a in self.accounts.values() if a["page_id"]}
        self.by_self = {}
        for a in self.accounts.values():
            self.by_self[a["ig_account_id"]] = a
            self.by_self[a["self_igsid"]] = a
        by_acct = collections.defaultdict(list)
        for c in self.convs.values():
            by_acct[c["account"]].append(c)
        for lst in by_acct.values():
            lst.sort(key=lambda c: c["id"])
            lst.sort(key=lambda c: c["updated_time"], reverse=True)
        self.convs_by_account = dict(by_acct)
        self.tokens = tuple({form for t in self.by_token if t
                             for form in (t, quote(t, safe=""))})

    # Returns a new snapshot with records added or replaced by id.
    def merged(self, accounts=(), users=(), conversations=()):
        accts = dict(self.accounts)
        accts.update((a["ig_account_id"], a) for a in accounts)
        usrs = dict(self.users)
        usrs.update((u["id"], u) for u in users)
        convs = dict(self.convs)
        convs.update((c["id"], c) for c in conversations)
        return Data(accts.values(), usrs.values(), convs.values())


ACCOUNT_A = {"ig_account_id": "17841400000000001", "self_igsid": "17841400000000001",
             "page_id": "1000000000000001", "token": "mock-token-A-0123456789",
             "api_host": FB_HOST, "username": "acme.store", "name": "Acme Store"}
ACCOUNT_B = {"ig_account_id": "17841400000000002", "self_igsid": "17841400000000002",
             "page_id": "1000000000000002", "token": "mock-token-B-0123456789",
             "api_host": IG_HOST, "username": "acme.outlet", "name": "Acme Outlet"}


# A conversation record between an account and one person, with messages
# that alternate inbound/outbound and end (newest) at updated_time.
def make_conversation(acct, person, updated_ts, texts):
    cid = b64id("ig_thread:%s:%s" % (acct["ig_account_id"], person))
    msgs = []
    for k, text in enumerate(texts):
        inbound = (len(texts) - 1 - k) % 2 == 0  # the newest message is inbound
        frm, to = (person, acct["self_igsid"]) if inbound else (acct["self_igsid"], person)
        msgs.append({"id": b64id("ig_item:1:IGMessage:%s:%d" % (cid, k)),
                     "created_time": iso_time(updated_ts - (len(texts) - 1 - k) * 97),
                     "from": frm, "to": [to], "message": text})
    return {"id": cid, "account": acct["ig_account_id"], "participant": person,
            "updated_time": iso_time(updated_ts), "messages": msgs}


# The built-in data set the contract fixes (tests rely on these values).
def default_data():
    users = [
        {"id": "1000000000000101", "username": "jane.doe", "name": "Jane Doe",
         "follower_count": 152, "is_user_follow_business": True},
        {"id": "1000000000000102", "username": "john.smith", "name": None,
         "follower_count": 0},
        {"id": "1000000000000103", "username": "stories.in.store", "name": "Stories Store",
         "follower_count": 1},
        {"id": "1000000000000104", "username": "no.consent", "name": "No Consent",
         "consent": False},
        {"id": "1000000000000105", "username": "gone.user", "name": "Gone User",
         "available": False},
    ]
    base = parse_iso("2025-07-28T22:44:49+0000")
    texts = ["hi", "Hello! How can we help?", "Do you ship to Lisbon?"]
    convs = [make_conversation(ACCOUNT_A, "1000000000000101", base, texts),
             make_conversation(ACCOUNT_A, "1000000000000102", base - 86400, texts),
             make_conversation(ACCOUNT_A, "1000000000000103", base - 3 * 86400, texts),
             make_conversation(ACCOUNT_B, "1000000000000101", base - 2 * 86400, texts)]
    return [dict(ACCOUNT_A), dict(ACCOUNT_B)], users, convs


# Deterministic synthetic users and conversations for paging tests and
# benchmarks: user i is "2000000000000000"+i ("user.<i>"), conversation i is
# with user i and alternates between accounts A and B, newest first.
def generated_data(n_users, n_convs, seed):
    rng = random.Random(seed)
    first = ["Ana", "Ben", "Chloe", "Dev", "Eva", "Femi", "Gus", "Hana", "Ivo", "Jun"]
    last = ["Silva", "Okafor", "Nguyen", "Muller", "Rossi", "Kim", "Haddad", "Novak"]
    users = []
    for i in range(max(n_users, n_convs)):
        users.append({"id": str(2000000000000000 + i), "username": "user.%d" % i,
                      "name": ("%s %s" % (rng.choice(first), rng.choice(last)))
                      if rng.random() < 0.5 else None,
                      "follower_count": rng.randint(0, 5000),
                      "is_verified_user": rng.random() < 0.05,
                      "is_user_follow_business": rng.random() < 0.5,
                      "is_business_follow_user": rng.random() < 0.2})
    convs = []
    ts = parse_iso("2025-07-28T22:44:49+0000")
    phrases = ["hi", "is this still available?", "thanks!", "Sure, sending details now.",
               "what sizes do you have?", "We open at 9."]
    for i in range(n_convs):
        acct = ACCOUNT_A if i % 2 == 0 else ACCOUNT_B
        texts = [rng.choice(phrases) for _ in range(rng.randint(1, 4))]
        convs.append(make_conversation(acct, users[i]["id"], ts, texts))
        ts -= rng.randint(60, 3600)
    return users, convs


# Builds the starting snapshot from the command line (see CONTRACT.md).
def initial_data(args):
    generating = args.generate_users > 0 or args.generate_conversations > 0
    if args.fixture:
        with open(args.fixture, encoding="utf-8") as fh:
            fx = json.load(fh)
        accounts = fx.get("accounts", [])
        users, convs = fx.get("users", []), fx.get("conversations", [])
    elif generating:
        accounts, users, convs = [dict(ACCOUNT_A), dict(ACCOUNT_B)], [], []
    else:
        accounts, users, convs = default_data()
    if generating:
        have = {str(a.get("ig_account_id")) for a in accounts}
        accounts += [dict(a) for a in (ACCOUNT_A, ACCOUNT_B) if a["ig_account_id"] not in have]
        gu, gc = generated_data(args.generate_users, args.generate_conversations, args.seed)
        users, convs = users + gu, convs + gc
    return Data([norm_account(a) for a in accounts], [norm_user(u) for u in users],
                [norm_conversation(c) for c in convs])


# --------------------------------------------------------------------------
# Faults
# --------------------------------------------------------------------------

# Checks a fault definition from the admin API; returns it normalised.
def validate_fault(spec):
    if not isinstance(spec, dict):
        raise ValueError("body must be an object")
    match = spec.get("match") or {}
    if not isinstance(match, dict) or any(k not in MATCH_KEYS for k in match):
        raise ValueError("match keys are: " + ", ".join(MATCH_KEYS))
    match = {k: str(v) for k, v in match.items()}
    count = spec.get("count")
    if count is not None and (not isinstance(count, int) or count < 1):
        raise ValueError("count must be a positive integer")
    rate = spec.get("rate")
    if rate is not None and (isinstance(rate, bool) or not isinstance(rate, (int, float))
                             or not 0 < rate <= 1):
        raise ValueError("rate must be a number in (0, 1]")
    fault = spec.get("fault")
    if not isinstance(fault, dict) or fault.get("type") not in MODIFIER_FAULTS + TERMINAL_FAULTS:
        raise ValueError("fault.type must be one of: " +
                         ", ".join(MODIFIER_FAULTS + TERMINAL_FAULTS))
    t = fault["type"]
    if t == "usage":
        check_usage(fault)
    need = {"latency": "ms", "graph_error": "code", "http_status": "status"}.get(t)
    if need and need not in fault:
        raise ValueError("fault type %s needs %r" % (t, need))
    for key in NUMERIC_FAULT_PARAMS:
        if key in fault and fault[key] is not None and (
                isinstance(fault[key], bool) or not isinstance(fault[key], (int, float))):
            raise ValueError("fault parameter %r must be a number" % key)
    out = {"match": match, "count": count, "fault": dict(fault)}
    if rate is not None:
        out["rate"] = float(rate)
    return out


# Checks a usage override: {"app": {...} or null, "buc": {...} or null}.
def check_usage(ov):
    if not isinstance(ov, dict):
        raise ValueError("usage must be an object")
    for key in ("app", "buc"):
        if key in ov and ov[key] is not None and not isinstance(ov[key], dict):
            raise ValueError("usage.%s must be an object or null" % key)


class Plan:
    """What the faults decided for one call: added delay, header overrides,
    body modifiers, at most one terminal fault, and the types applied."""
    __slots__ = ("delay_ms", "usage", "mods", "terminal", "applied")

    def __init__(self):
        self.delay_ms, self.usage, self.mods = 0.0, [], set()
        self.terminal, self.applied = None, []


class Faults:
    """The ordered, thread-safe list of active faults."""

    def __init__(self):
        self.lock = threading.Lock()
        self.items = []  # [id, spec, remaining]
        self.next_id = itertools.count(1)
        self.rng = random.Random()  # for faults with a "rate"; used under the lock

    def add(self, spec):
        with self.lock:
            fid = next(self.next_id)
            self.items.append([fid, spec, spec["count"]])
            return fid

    # Removes one fault by id, or all of them; returns how many went.
    def clear(self, fid=None):
        with self.lock:
            before = len(self.items)
            self.items = [f for f in self.items if fid is not None and f[0] != fid]
            return before - len(self.items)

    # Active faults with their remaining counts, for GET /_admin/faults.
    def listing(self):
        with self.lock:
            return [dict(id=f[0], remaining=f[2], **f[1]) for f in self.items]

    # Applies the matching faults, in the order they were added, to one call.
    # Modifiers all apply; only the first terminal fault does, and only the
    # faults that applied are consumed.  A fault with a "rate" applies to a
    # matching call with that probability (drawn per call).
    def take(self, endpoint, account, user):
        plan = Plan()
        if not self.items:
            return plan
        with self.lock:
            keep = []
            for item in self.items:
                fid, spec, remaining = item
                m = spec["match"]
                hit = ((m.get("endpoint") is None or m["endpoint"] == endpoint) and
                       (m.get("account") is None or m["account"] == account) and
                       (m.get("user") is None or m["user"] == user))
                f = spec["fault"]
                if hit and f["type"] in TERMINAL_FAULTS and plan.terminal is not None:
                    hit = False
                if hit and "rate" in spec and self.rng.random() >= spec["rate"]:
                    hit = False
                if hit:
                    t = f["type"]
                    plan.applied.append(t)
                    if t == "latency":
                        plan.delay_ms += float(f["ms"])
                    elif t == "usage":
                        plan.usage.append(f)
                    elif t in MODIFIER_FAULTS:
                        plan.mods.add(t)
                    else:
                        plan.terminal = f
                    if remaining is not None:
                        item[2] = remaining = remaining - 1
                if remaining is None or remaining > 0:
                    keep.append(item)
            self.items = keep
        return plan


# --------------------------------------------------------------------------
# Counters, request log, usage window
# --------------------------------------------------------------------------

class Stats:
    """Thread-safe counters and the bounded request log (never a token)."""

    def __init__(self):
        self.lock = threading.Lock()
        self.in_flight = 0
        self.reset()

    # Zeroes counters and the log; in_flight stays live (requests may be running).
    def reset(self):
        with self.lock:
            self.total = 0
            self.unauthorized = 0
            self.by_endpoint = dict.fromkeys(ENDPOINTS, 0)
            self.by_account = collections.Counter()
            self.by_user = collections.Counter()
            self.max_in_flight = self.in_flight
            self.requests = collections.deque(maxlen=REQUEST_LOG_SIZE)

    # A Graph request arrived (counted even when it fails auth).
    def begin(self, endpoint):
        with self.lock:
            self.total += 1
            self.by_endpoint[endpoint] = self.by_endpoint.get(endpoint, 0) + 1
            self.in_flight += 1
            if self.in_flight > self.max_in_flight:
                self.max_in_flight = self.in_flight

    # A Graph request finished (or was abandoned): log it.
    def end(self, entry):
        with self.lock:
            self.in_flight -= 1
            self.requests.append(entry)

    # Counts one Graph call (a request or a batch item) against an account.
    def charge(self, account, user):
        with self.lock:
            self.by_account[account] += 1
            if user is not None:
                self.by_user[user] += 1

    def count_batch_item(self):
        with self.lock:
            self.by_endpoint["batch_items"] += 1

    def count_unauthorized(self):
        with self.lock:
            self.unauthorized += 1

    # The /_admin/stats document; `n_requests` keeps only the newest entries.
    def snapshot(self, n_requests=None):
        with self.lock:
            reqs = list(self.requests)
            if n_requests is not None:
                reqs = reqs[-n_requests:] if n_requests > 0 else []
            return {"total": self.total, "by_endpoint": dict(self.by_endpoint),
                    "by_account": dict(self.by_account), "by_user": dict(self.by_user),
                    "in_flight": self.in_flight, "max_in_flight": self.max_in_flight,
                    "unauthorized": self.unauthorized, "requests": reqs}


class UsageMeter:
    """Calls in the last 60 s, app-wide and per account, for usage headers."""

    def __init__(self):
        self.lock = threading.Lock()
        self.reset()

    def reset(self):
        with self.lock:
            self.app = collections.deque()
            self.accounts = collections.defaultdict(collections.deque)

    @staticmethod
    def _prune(dq, now):
        while dq and dq[0] < now - 60.0:
            dq.popleft()

    # Records one call; prunes here too so the windows stay bounded even
    # when no usage header is computed.
    def charge(self, account):
        now = time.monotonic()
        with self.lock:
            self.app.append(now)
            dq = self.accounts[account]
            dq.append(now)
            self._prune(self.app, now)
            self._prune(dq, now)

    # Returns (app calls, account calls) within the last 60 s.
    def counts(self, account):
        now = time.monotonic()
        with self.lock:
            self._prune(self.app, now)
            n_acct = 0
            if account is not None:
                dq = self.accounts[account]
                self._prune(dq, now)
                n_acct = len(dq)
            return len(self.app), n_acct


# --------------------------------------------------------------------------
# The Graph API itself
# --------------------------------------------------------------------------

class Route:
    """Which endpoint a path names, the node id, and an error for bad paths."""
    __slots__ = ("endpoint", "node", "error")

    def __init__(self, endpoint, node=None, error=None):
        self.endpoint, self.node, self.error = endpoint, node, error


class Call:
    """The result of one Graph call before it is put on the wire."""
    __slots__ = ("status", "obj", "plan", "account")

    def __init__(self, status, obj, plan, account):
        self.status, self.obj, self.plan, self.account = status, obj, plan, account


class Outcome:
    """What the HTTP handler sends: status, headers, body, and how."""
    __slots__ = ("status", "headers", "body", "transport", "params", "delay", "account",
                 "endpoint", "faults")

    def __init__(self, status, body, headers=None, endpoint="unknown"):
        self.status, self.body, self.headers = status, body, headers or []
        self.transport, self.params, self.delay = None, {}, 0.0
        self.account, self.endpoint, self.faults = None, endpoint, []


class MockGraph:
    """Everything behind the HTTP layer: data, faults, counters, config."""

    def __init__(self, data, log_requests=False, quiet=False):
        self.data = data
        self.data_lock = threading.Lock()
        self.faults = Faults()
        self.stats = Stats()
        self.usage = UsageMeter()
        self.cursors = Cursors()
        self.config = dict(DEFAULT_CONFIG)
        self.config_lock = threading.Lock()
        self.pic_counter = itertools.count(1)  # next() is atomic in CPython
        self.stop = threading.Event()
        self.log_requests = log_requests
        self.quiet = quiet

    # ---------------------------------------------------------------- admin

    # Serves /_admin/*: health, stats, reset, config, faults, data.
    def admin(self, method, path, query, body):
        try:
            payload = json.loads(body) if body.strip() else {}
        except ValueError:
            return 400, {"error": "body is not JSON"}
        params = dict(parse_qsl(query))
        route = (method, path.rstrip("/"))
        try:
            if route == ("GET", "/_admin/health"):
                return 200, {"ok": True}
            if route == ("GET", "/_admin/stats"):
                n = params.get("requests")
                return 200, self.stats.snapshot(int(n) if n is not None else None)
            if route == ("POST", "/_admin/reset"):
                self.stats.reset()
                self.usage.reset()
                self.faults.clear()
                with self.config_lock:
                    self.config = dict(DEFAULT_CONFIG)
                return 200, {"ok": True}
            if path.rstrip("/") == "/_admin/config":
                if method == "POST":
                    self.update_config(payload)
                elif method != "GET":
                    return 405, {"error": "use GET or POST"}
                return 200, self.config
            if route == ("POST", "/_admin/faults"):
                return 200, {"id": self.faults.add(validate_fault(payload))}
            if route == ("GET", "/_admin/faults"):
                return 200, {"faults": self.faults.listing()}
            if route == ("DELETE", "/_admin/faults"):
                return 200, {"cleared": self.faults.clear()}
            m = re.match(r"^/_admin/faults/(\d+)$", path)
            if m and method == "DELETE":
                return 200, {"cleared": self.faults.clear(int(m.group(1)))}
            if route == ("POST", "/_admin/data"):
                return 200, self.add_data(payload)
        except (ValueError, TypeError, KeyError) as exc:
            return 400, {"error": str(exc)}
        return 404, {"error": "unknown admin endpoint %s %s" % (method, path)}

    # Merges known keys into the config (copy-on-write, so readers need no lock).
    def update_config(self, payload):
        if not isinstance(payload, dict):
            raise ValueError("config must be an object")
        unknown = [k for k in payload if k not in DEFAULT_CONFIG]
        if unknown:
            raise ValueError("unknown config keys: %s (known: %s)"
                             % (", ".join(unknown), ", ".join(DEFAULT_CONFIG)))
        if payload.get("usage") is not None:
            check_usage(payload["usage"])
        for key in ("budget_per_min", "app_budget_per_min"):
            if key in payload and not (isinstance(payload[key], (int, float))
                                       and not isinstance(payload[key], bool)
                                       and payload[key] > 0):
                raise ValueError("%s must be a positive number" % key)
        with self.config_lock:
            cfg = dict(self.config)
            cfg.update(payload)
            self.config = cfg

    # Adds or replaces accounts, users and conversations by id.
    def add_data(self, payload):
        if not isinstance(payload, dict):
            raise ValueError("data must be an object")
        accounts = [norm_account(a) for a in payload.get("accounts", [])]
        users = [norm_user(u) for u in payload.get("users", [])]
        convs = [norm_conversation(c) for c in payload.get("conversations", [])]
        with self.data_lock:
            self.data = self.data.merged(accounts, users, convs)
            d = self.data
        return {"accounts": len(d.accounts), "users": len(d.users),
                "conversations": len(d.convs)}

    # ---------------------------------------------------------------- graph

    # Maps a path (version prefix removed) to an endpoint, without auth, so
    # that every request is counted under the endpoint it asked for.
    @staticmethod
    def route(data, method, segs):
        if method == "POST" and not segs:
            return Route("batch")
        if method != "GET":
            return Route("unknown", error=GraphError(
                100, "Unsupported %s request." % method.lower(), subcode=33,
                type_="GraphMethodException"))
        if not segs:
            return Route("unknown", error=GraphError(100, "Unsupported get request.",
                                                     type_="GraphMethodException"))
        node = segs[0]
        if segs == ["refresh_access_token"]:
            return Route("refresh")
        if len(segs) == 1:
            if node == "me":
                return Route("me", node)
            if node in data.convs:
                return Route("conversation", node)
            if node in data.by_self:
                return Route("me", node)
            if node in data.by_page:
                return Route("page", node)
            return Route("profile", node)
        if len(segs) == 2 and segs[1] == "conversations":
            return Route("conversations", node)
        if len(segs) == 2 and segs[1] == "messages" and node in data.convs:
            return Route("messages", node)
        return Route("unknown", node, GraphError(
            2500, "Unknown path components: /" + "/".join(segs[1:])))

    # Finds the account a request speaks for, or the 190 error to answer.
    def authenticate(self, data, headers, params, form_token=False):
        if any("token" in k.lower() for k in params) or form_token:
            return None, GraphError(190, "Invalid OAuth access token - this mock refuses "
                                    "access tokens in the URL or form; send them in the "
                                    "Authorization header")
        auth = headers.get("Authorization")
        if not auth:
            return None, GraphError(190, "An access token is required to request this "
                                    "resource.", http_status=401)
        scheme, _, token = auth.strip().partition(" ")
        acct = data.by_token.get(token.strip()) if scheme.lower() in ("bearer", "oauth") \
            else None
        host = (headers.get("Host") or "").split(":")[0].lower()
        if acct is not None and host in API_HOSTS and host != acct["api_host"]:
            acct = None  # an Instagram token on graph.facebook.com, or the reverse
        if acct is None:
            return None, GraphError(190, "Invalid OAuth access token - Cannot parse access "
                                    "token")
        expires = token_expires_at(acct, token.strip())
        if expires is not None and expires <= time.time():
            return None, GraphError(190, "Error validating access token: Session has "
                                    "expired", subcode=463)
        err = self.check_proof(acct, token.strip(), params.get("appsecret_proof"))
        if err is not None:
            return None, err
        return acct, None

    # An app with "Require App Secret" refuses calls without the right proof
    # (code 100, GraphMethodException, as Meta answers).
    @staticmethod
    def check_proof(acct, token, proof):
        if not acct.get("app_secret"):
            return None
        if not proof:
            return GraphError(100, "API calls from the server require an appsecret_proof "
                              "argument", type_="GraphMethodException")
        if not hmac.compare_digest(proof.lower(), appsecret_proof(acct["app_secret"], token)):
            return GraphError(100, "Invalid appsecret_proof provided in the API argument",
                              type_="GraphMethodException")
        return None

    # GET /refresh_access_token?grant_type=ig_refresh_token&access_token=...:
    # the one request documented with the token in the query string. Only a
    # long-lived Instagram Login token, at least 24 h old and not expired,
    # is refreshed; the answer is a new 60-day token.
    def refresh(self, headers, params, version):
        def refuse(err):
            self.stats.count_unauthorized()
            return self.encode(Call(err.http_status, err.body(), Plan(), None), version), None
        host = (headers.get("Host") or "").split(":")[0].lower()
        if host == FB_HOST:
            return refuse(GraphError(100, "Unsupported get request.",
                                     type_="GraphMethodException"))
        if params.get("grant_type") != "ig_refresh_token":
            return refuse(GraphError(100, "Invalid grant_type; expected ig_refresh_token",
                                     type_="OAuthException"))
        token = params.get("access_token") or ""
        with self.data_lock:
            data = self.data
            acct = data.by_token.get(token)
            if acct is None or acct.get("login") != IG_LOGIN:
                return refuse(GraphError(190, "Invalid OAuth access token - Cannot parse "
                                         "access token"))
            expires = token_expires_at(acct, token)
            if expires is not None and expires <= time.time():
                return refuse(GraphError(190, "Error validating access token: Session has "
                                         "expired", subcode=463))
            kind = acct["token_kind"] if token == acct["token"] else next(
                t["token_kind"] for t in acct["old_tokens"] if t["token"] == token)
            issued = acct["token_issued_at"] if token == acct["token"] else next(
                t["token_issued_at"] for t in acct["old_tokens"] if t["token"] == token)
            if kind != "long_lived":
                return refuse(GraphError(100, "A short-lived token cannot be refreshed; "
                                         "exchange it for a long-lived token first",
                                         type_="OAuthException"))
            if time.time() - issued < REFRESH_MIN_AGE_S:
                return refuse(GraphError(100, "The access token is less than 24 hours old "
                                         "and cannot be refreshed yet",
                                         type_="OAuthException"))
            err = self.check_proof(acct, token, params.get("appsecret_proof"))
            if err is not None:
                return refuse(err)
            new_token = "mock-refreshed-%s-%s" % (acct["ig_account_id"][-4:],
                                                  base64.urlsafe_b64encode(os.urandom(12))
                                                  .decode().rstrip("="))
            updated = dict(acct)
            updated["old_tokens"] = acct["old_tokens"] + [
                {"token": acct["token"], "token_kind": acct["token_kind"],
                 "token_issued_at": acct["token_issued_at"]}]
            updated.update(token=new_token, token_kind="long_lived",
                           token_issued_at=time.time())
            self.data = data.merged(accounts=[updated])
        obj = {"access_token": new_token, "token_type": "bearer", "expires_in": LONG_LIVED_S}
        return self.encode(Call(200, obj, Plan(), acct["ig_account_id"]), version), acct

    # Entry point for every non-admin request; returns what to send.
    def graph(self, method, raw_path, headers, body, base_url):
        split = urlsplit(raw_path)
        m = VERSION_RE.match(split.path)
        version = m.group(0)[1:] if m else DEFAULT_VERSION
        rest = split.path[m.end():] if m else split.path
        segs = [s for s in rest.split("/") if s]
        params_list = parse_qsl(split.query, keep_blank_values=True)
        params = dict(params_list)
        data = self.data
        route = self.route(data, method, segs)
        self.stats.begin(route.endpoint)
        try:
            out = self.answer(data, method, route, params, params_list, headers, body,
                              "%s/%s" % (base_url, version), version)
        except Exception as exc:  # a mock bug must still answer, and be counted once
            if not self.quiet:
                tb = exc.__traceback__
                while tb.tb_next:
                    tb = tb.tb_next
                sys.stderr.write("mock_graph: internal error %s at line %d\n"
                                 % (type(exc).__name__, tb.tb_lineno))
            out = Outcome(500, dumps(error_envelope(
                2, "An unexpected error has occurred (mock internal error).",
                is_transient=True)), [("Content-Type", "application/json; charset=UTF-8")])
        out.endpoint = route.endpoint
        out.delay += self.config["latency_ms"] / 1000.0
        return out

    # Authenticates and answers one routed request.
    def answer(self, data, method, route, params, params_list, headers, body, link_base,
               version):
        if route.endpoint == "refresh":
            out, acct = self.refresh(headers, params, version)
            out.account = acct["ig_account_id"] if acct else None
            return out
        form = {}
        if route.endpoint == "batch":
            form = self.parse_form(headers, body)
            if "appsecret_proof" in form and "appsecret_proof" not in params:
                params = dict(params, appsecret_proof=form["appsecret_proof"])
        acct, err = self.authenticate(data, headers, params,
                                      form_token=any("token" in k.lower() for k in form))
        if err is not None:
            self.stats.count_unauthorized()
            out = self.encode(Call(err.http_status, err.body(), Plan(), None), version)
            out.headers.append(("WWW-Authenticate", 'OAuth "Facebook Platform" '
                                '"invalid_token" "%s"' % err.message.replace('"', "'")))
        elif route.endpoint == "batch":
            out = self.batch(data, acct, form, link_base, version)
        else:
            call = self.call(data, acct, route, params_list, link_base)
            out = self.encode(call, version)
        out.account = acct["ig_account_id"] if acct else None
        return out

    @staticmethod
    # The batch POST body, form-encoded or JSON, as a flat dict.
    def parse_form(headers, body):
        ctype = (headers.get("Content-Type") or "").lower()
        text = body.decode("utf-8", "replace")
        if "json" in ctype:
            try:
                obj = json.loads(text)
            except ValueError:
                return {}
            if isinstance(obj, dict):
                return {k: (v if isinstance(v, str) else json.dumps(v))
                        for k, v in obj.items()}
            return {}
        return dict(parse_qsl(text, keep_blank_values=True))

    # One Graph call for an authenticated account: counting, usage, faults,
    # rendering, throttling and body modifiers. Shared by requests and batch items.
    def call(self, data, acct, route, params_list, link_base):
        acct_id = acct["ig_account_id"]
        user = route.node if route.endpoint == "profile" else None
        # A token pasted where an id belongs must not end up in by_user.
        self.stats.charge(acct_id, "REDACTED" if user in data.by_token else user)
        self.usage.charge(acct_id)
        plan = self.faults.take(route.endpoint, acct_id, user)
        try:
            if route.error is not None:
                raise route.error
            status, obj = 200, self.render(data, acct, route, dict(params_list),
                                           params_list, link_base)
        except GraphError as exc:
            status, obj = exc.http_status, exc.body()
        cfg = self.config
        if plan.terminal is None and cfg["enforce_rate_limit"]:
            # Calls beyond the budget are refused, app-wide first, as at Meta.
            n_app, n_acct = self.usage.counts(acct_id)
            if n_app > cfg["app_budget_per_min"]:
                status, obj = 403, error_envelope(4, ERROR_MESSAGES[4], is_transient=True)
            elif n_acct > cfg["budget_per_min"]:
                status, obj = 400, error_envelope(80002, ERROR_MESSAGES[80002])
        if status == 200 and isinstance(obj, dict):
            if "absent_name" in plan.mods:
                obj.pop("name", None)
            if "null_profile_pic" in plan.mods and "profile_pic" in obj:
                obj["profile_pic"] = None
            if "mismatched_id" in plan.mods and isinstance(obj.get("id"), str):
                obj["id"] = ("8" if obj["id"].startswith("9") else "9") + obj["id"][1:]
        return Call(status, obj, plan, acct_id)

    # ---------------------------------------------------------------- nodes

    # Renders the node or edge a route names, for the account the token selected;
    # anything not that account's own answers 100/33, as at Meta.
    def render(self, data, acct, route, params, params_list, link_base):
        fields = parse_fields(params.get("fields"))
        ep, node = route.endpoint, route.node
        if ep == "profile":
            return self.render_profile(data, node, fields)
        if ep == "me":
            if node not in ("me", acct["ig_account_id"], acct["self_igsid"]):
                raise no_such_object(node)
            if node == "me" and acct["login"] == FB_LOGIN:
                # with a Page token, `me` is the Page
                ep, node = "page", acct["page_id"]
            else:
                return self.render_me(acct, fields, node == "me")
        if ep == "page":
            if node != acct["page_id"]:
                raise no_such_object(node)
            fields = fields or {"id": None, "name": None}
            check_fields(fields, PAGE_FIELDS, "Page")
            page = {"id": node, "name": acct.get("name") or acct["username"],
                    "instagram_business_account": {"id": acct["ig_account_id"]}}
            return {k: page[k] for k in fields}
        if ep == "conversations":
            return self.render_conversations(data, acct, node, fields, params, params_list,
                                             link_base)
        conv = data.convs.get(node)
        if conv is None or conv["account"] != acct["ig_account_id"]:
            raise no_such_object(node)
        if ep == "conversation":
            return self.render_conversation(data, acct, conv, fields or
                                            {"id": None, "updated_time": None}, link_base)
        # ep == "messages": the conversation's messages edge, paged
        fields = fields or {"id": None, "created_time": None}
        return self.render_messages(data, acct, conv, fields, params, params_list, link_base)

    # The User Profile API: consent (230) and availability (9010) first, then
    # only the requested fields; a key absent from the record stays absent.
    def render_profile(self, data, node, fields):
        fields = fields or {"id": None}
        check_fields(fields, PROFILE_FIELDS, "User")
        user = data.users.get(node)
        if user is None:
            raise no_such_object(node)
        if not user.get("available", True):
            raise GraphError(9010, ERROR_MESSAGES[9010], type_="IGApiException")
        if not user.get("consent", True):
            raise GraphError(230, ERROR_MESSAGES[230])
        out = {}
        for f in fields:
            if f == "id":
                continue
            if f == "profile_pic":
                pic = user.get("profile_pic", "auto")
                out[f] = self.profile_pic(node) if pic == "auto" else pic
            elif f in user:
                out[f] = user[f]
            elif f in PROFILE_DEFAULTS:
                out[f] = PROFILE_DEFAULTS[f]
        out["id"] = node
        return out

    # A signed-CDN-looking picture URL (~400 chars) that changes on every
    # fetch: `oe` is a hex expiry 4 days ahead, `_nc_rid` a fetch counter.
    def profile_pic(self, uid):
        n = next(self.pic_counter)
        h = hashlib.sha256(("%s:%d" % (uid, n)).encode()).digest()
        enc = lambda b: base64.urlsafe_b64encode(b).decode().rstrip("=")  # noqa: E731
        stable = int(hashlib.sha256(uid.encode()).hexdigest()[:15], 16)
        oc = enc(hashlib.sha512(h).digest())[:72]
        return ("https://scontent-iad3-2.cdninstagram.com/v/t51.2885-19/%d_%s_%d_n.jpg"
                "?stp=dst-jpg_s206x206_tt6&_nc_cat=10%d&ccb=1-7&_nc_sid=bf7eb4"
                "&_nc_ohc=%s&_nc_oc=%s&_nc_zt=24&_nc_ht=scontent-iad3-2.cdninstagram.com"
                "&edm=AL-3X8kEAAAA&_nc_gid=%s&_nc_rid=%d&oh=00_%s&oe=%X"
                % (stable, uid[-8:], 1000 + stable % 9000, n % 10, enc(h[:12]), oc,
                   enc(h[12:28]), n, enc(hashlib.sha256(h).digest()),
                   int(time.time()) + 4 * 86400))

    # /{own id} (both flavours) and /me (Instagram Login): the business
    # account itself. Instagram Login's /me gives an app-scoped `id`; the
    # professional account id is `user_id`.
    def render_me(self, acct, fields, is_me=False):
        fields = fields or {"id": None}
        check_fields(fields, ME_FIELDS, "IGUser" if acct["api_host"] == IG_HOST else "User")
        own_id = acct["app_scoped_id"] if is_me and acct["login"] == IG_LOGIN \
            else acct["ig_account_id"]
        values = {"id": own_id, "user_id": acct["ig_account_id"],
                  "username": acct["username"], "name": acct.get("name"),
                  "account_type": acct.get("account_type", "BUSINESS"),
                  "followers_count": acct.get("followers_count", 1000),
                  "media_count": acct.get("media_count", 12)}
        out = {}
        for f in fields:
            if f == "profile_picture_url":
                out[f] = self.profile_pic(acct["ig_account_id"])
            elif values.get(f) is not None:
                out[f] = values[f]
        out["id"] = own_id
        return out

    # The {username,id} object Meta gives for a participant, from, or to.
    @staticmethod
    def person(data, acct, pid, sub=None):
        if pid in (acct["self_igsid"], acct["ig_account_id"]):
            username = acct["username"]
        else:
            username = (data.users.get(pid) or {}).get("username")
        out = {}
        if username is not None and (sub is None or "username" in sub):
            out["username"] = username
        out["id"] = pid
        return out

    # One conversation; participants are [self, the other person].
    def render_conversation(self, data, acct, conv, fields, link_base):
        check_fields(fields, CONVERSATION_FIELDS, "Conversation")
        out = {}
        for f, spec in fields.items():
            if f == "participants":
                sub = spec.sub if spec and spec.sub else None
                out[f] = {"data": [self.person(data, acct, acct["self_igsid"], sub),
                                   self.person(data, acct, conv["participant"], sub)]}
            elif f == "messages":
                sub = spec.sub if spec and spec.sub else {"id": None, "created_time": None}
                params = {"limit": spec.mods.get("limit", "25")} if spec else {}
                out[f] = self.render_messages(
                    data, acct, conv, sub, params, [("fields", unparse_fields(sub))],
                    link_base)
            elif f == "message_count":
                out[f] = len(conv["messages"])
            elif f == "unread_count":
                out[f] = 0
            elif f == "can_reply":
                out[f] = True
            elif f == "updated_time":
                out[f] = conv["updated_time"]
        out["id"] = conv["id"]
        return out

    # A conversation's messages, newest first, paged; beyond the newest 20 only
    # the id is readable, as at Meta.
    def render_messages(self, data, acct, conv, fields, params, params_list, link_base):
        check_fields(fields, MESSAGE_FIELDS, "Message")
        msgs = conv["messages"]
        start, end, paging = self.page(len(msgs), params, params_list, "m:" + conv["id"],
                                       "%s/%s/messages" % (link_base, conv["id"]))
        rows = []
        for i in range(start, end):
            m = msgs[i]
            if i >= MESSAGE_DETAIL_WINDOW:
                rows.append({"id": m["id"]})
                continue
            row = {}
            for f in fields:
                if f == "from":
                    row[f] = self.person(data, acct, m["from"])
                elif f == "to":
                    row[f] = {"data": [self.person(data, acct, t) for t in m["to"]]}
                elif f in m:
                    row[f] = m[f]
            row["id"] = m["id"]
            rows.append(row)
        out = {"data": rows}
        if paging:
            out["paging"] = paging
        return out

    # The conversations edge of the account's page or IG account, newest first.
    def render_conversations(self, data, acct, node, fields, params, params_list,
                             link_base):
        if acct["login"] == FB_LOGIN and node in (acct["ig_account_id"], acct["self_igsid"]):
            # a Page token lists conversations under the Page, not the IG user
            raise GraphError(100, "(#100) Tried accessing nonexisting field (conversations) "
                             "on node type (IGUser)", type_="OAuthException")
        owners = ("me", acct["page_id"]) if acct["login"] == FB_LOGIN \
            else ("me", acct["ig_account_id"], acct["self_igsid"])
        if node not in owners:
            raise no_such_object(node)
        platform = params.get("platform")
        if platform not in (None, "instagram", "messenger"):
            raise GraphError(100, "(#100) param platform must be one of {MESSENGER, "
                             "INSTAGRAM}")
        if platform == "messenger" or (platform is None and acct["api_host"] == FB_HOST):
            # Without platform=instagram a Page lists its Messenger inbox,
            # which this mock holds none of.
            return {"data": []}
        fields = fields or {"id": None, "updated_time": None}
        check_fields(fields, CONVERSATION_FIELDS, "Conversation")
        convs = data.convs_by_account.get(acct["ig_account_id"], [])
        if params.get("user_id"):
            convs = [c for c in convs if c["participant"] == params["user_id"]]
        start, end, paging = self.page(len(convs), params, params_list,
                                       "c:" + acct["ig_account_id"],
                                       "%s/%s/conversations" % (link_base, node))
        if self.config["omit_nested_messages"]:
            fields = {f: spec for f, spec in fields.items() if f != "messages"}
        out = {"data": [self.render_conversation(data, acct, c, fields, link_base)
                        for c in convs[start:end]]}
        if paging:
            out["paging"] = paging
        return out

    # Cursor paging over a list of `total` items: returns the slice and the
    # `paging` object (cursors always on a non-empty page, next/previous only
    # when there is more that way; links never carry a token).
    def page(self, total, params, params_list, scope, link):
        try:
            limit = int(params.get("limit", 25))
        except ValueError:
            raise GraphError(100, "(#100) param limit must be a number")
        if limit < 1:
            raise GraphError(100, "(#100) param limit must be a positive number")
        limit = min(limit, MAX_PAGE_LIMIT)
        if params.get("after"):
            start = self.cursors.decode(params["after"], scope) + 1
            end = min(total, start + limit)
        elif params.get("before"):
            end = min(total, self.cursors.decode(params["before"], scope))
            start = max(0, end - limit)
        else:
            start, end = 0, min(total, limit)
        start = min(start, total)
        if end <= start:
            return start, start, None
        keep = [(k, v) for k, v in params_list
                if k not in ("after", "before", "limit") and "token" not in k.lower()]
        keep.append(("limit", str(limit)))
        before, after = self.cursors.encode(start, scope), self.cursors.encode(end - 1, scope)
        paging = {"cursors": {"before": before, "after": after}}
        q = lambda extra: urlencode(keep + [extra], safe=",{}().")  # noqa: E731
        if end < total:
            paging["next"] = "%s?%s" % (link, q(("after", after)))
        if start > 0:
            paging["previous"] = "%s?%s" % (link, q(("before", before)))
        return start, end, paging

    # ---------------------------------------------------------------- batch

    # POST / with batch=[...]: faults matching endpoint "batch" act on the whole
    # response; each item is then a call of its own with its own faults.
    def batch(self, data, acct, form, link_base, version):
        envelope = self.faults.take("batch", acct["ig_account_id"], None)
        early = envelope.terminal and envelope.terminal["type"] in (
            "graph_error", "http_status", "empty_object", "reset", "close", "hang",
            "batch_null")
        if early:
            return self.encode(Call(200, [], envelope, acct["ig_account_id"]), version)
        try:
            if acct["api_host"] != FB_HOST:
                raise GraphError(100, "(#100) Batch requests are not supported on "
                                 "graph.instagram.com", type_="IGApiException")
            if not form.get("batch"):
                raise GraphError(100, "(#100) The parameter batch is required")
            try:
                items = json.loads(form["batch"])
            except ValueError:
                items = None
            if not isinstance(items, list) or not items:
                raise GraphError(100, "(#100) param batch must be a non-empty JSON array")
            if len(items) > MAX_BATCH:
                raise GraphError(100, "(#100) Too many requests in batch message. Maximum "
                                 "batch size is %d" % MAX_BATCH)
        except GraphError as exc:
            return self.encode(Call(exc.http_status, exc.body(), envelope,
                                    acct["ig_account_id"]), version)
        include_headers = form.get("include_headers", "true").lower() != "false"
        results, item_delay, transport = [], 0.0, None
        for item in items:
            self.stats.count_batch_item()
            call = self.batch_call(data, acct, item, link_base)
            item_delay = max(item_delay, call.plan.delay_ms)
            envelope.usage.extend(call.plan.usage)
            envelope.applied.extend(call.plan.applied)
            t = call.plan.terminal
            if t is not None and t["type"] in TRANSPORT_FAULTS:
                transport = transport or t
                call.plan.terminal = None
            if t is not None and t["type"] == "batch_null":
                results.append(None)
                continue
            status, body, ctype = self.materialize(call)
            entry = {"code": status}
            if include_headers:
                entry["headers"] = [{"name": "Content-Type", "value": ctype},
                                    {"name": "Cache-Control",
                                     "value": "private, no-cache, no-store, must-revalidate"},
                                    {"name": "facebook-api-version", "value": version}]
            entry["body"] = body.decode("utf-8", "replace")
            results.append(entry)
        if transport is not None and envelope.terminal is None:
            envelope.terminal = transport
        envelope.delay_ms += item_delay
        return self.encode(Call(200, results, envelope, acct["ig_account_id"]), version)

    # One batch item: route its relative_url and make the call.
    def batch_call(self, data, acct, item, link_base):
        if not isinstance(item, dict) or not isinstance(item.get("relative_url"), str):
            err = GraphError(100, "(#100) Each batch item needs a relative_url")
            return Call(400, err.body(), Plan(), acct["ig_account_id"])
        method = str(item.get("method", "GET")).upper()
        split = urlsplit("/" + item["relative_url"].lstrip("/"))
        rest = VERSION_RE.sub("", split.path)
        segs = [s for s in rest.split("/") if s]
        params_list = parse_qsl(split.query, keep_blank_values=True)
        if any("token" in k.lower() for k, _ in params_list):
            err = GraphError(190, "Invalid OAuth access token - this mock refuses access "
                             "tokens in the URL; send them in the Authorization header")
            return Call(400, err.body(), Plan(), acct["ig_account_id"])
        route = self.route(data, method, segs)
        if route.endpoint == "batch":
            route = Route("unknown", error=GraphError(100, "(#100) Nested batch requests "
                                                      "are not supported"))
        return self.call(data, acct, route, params_list, link_base)

    # ---------------------------------------------------------------- encoding

    # Applies a call's terminal fault to its body: returns (status, bytes,
    # content type). Transport faults are left for the HTTP layer.
    def materialize(self, call):
        t = call.plan.terminal
        ctype = "application/json; charset=UTF-8"
        body = dumps(call.obj)
        if t is None:
            return call.status, body, ctype
        kind = t["type"]
        if kind == "graph_error":
            code = int(t["code"])
            extra = {k: t[k] for k in ("error_user_title", "error_user_msg", "error_data")
                     if k in t}
            env = error_envelope(code, t.get("message") or ERROR_MESSAGES.get(
                code, "(#%d) An error occurred" % code), t.get("error_type", "OAuthException"),
                t.get("subcode"), t.get("is_transient"), extra)
            return int(t.get("http_status", 400)), dumps(env), ctype
        if kind == "http_status":
            status = int(t["status"])
            b = t.get("body")
            if b is None:
                b = ("<!DOCTYPE html><html><head><title>%d %s</title></head><body>"
                     "<h1>Sorry, something went wrong.</h1><p>We're working on getting this "
                     "fixed as soon as we can.</p></body></html>"
                     % (status, REASONS.get(status, "Error")))
                return status, b.encode(), t.get("content_type", "text/html; charset=utf-8")
            if isinstance(b, str):
                return status, b.encode(), t.get("content_type", "text/html; charset=utf-8")
            return status, dumps(b), t.get("content_type", ctype)
        if kind == "empty_object":
            return 200, b"{}", ctype
        if kind == "batch_null":
            return 200, b"null", ctype
        if kind == "malformed_json":
            return call.status, body[:-1] + b",\"username\":jane.doe,}", ctype
        if kind == "truncated_json":
            return call.status, body[:max(1, len(body) // 2)], ctype
        if kind == "oversized":
            size = int(t.get("bytes", 8 * 1024 * 1024))
            obj = call.obj if isinstance(call.obj, dict) else {"data": call.obj}
            head = dumps(dict(obj, padding=""))
            pad = max(0, size - len(head))
            return call.status, head[:-2] + b"x" * pad + b"\"}", ctype
        return call.status, body, ctype

    # Turns a call into an HTTP outcome with Meta's headers and usage headers.
    def encode(self, call, version):
        status, body, ctype = self.materialize(call)
        trace = trace_id()
        headers = [("Content-Type", ctype),
                   ("facebook-api-version", version),
                   ("x-fb-request-id", trace),
                   ("x-fb-trace-id", trace),
                   ("Cache-Control", "private, no-cache, no-store, must-revalidate")]
        headers += self.usage_headers(call.account, call.plan.usage)
        t = call.plan.terminal
        if t is not None:
            headers += [(str(k), str(v)) for k, v in (t.get("headers") or {}).items()]
        out = Outcome(status, body, headers)
        out.delay = call.plan.delay_ms / 1000.0
        out.faults = call.plan.applied
        if t is not None and t["type"] in TRANSPORT_FAULTS:
            out.transport, out.params = t["type"], t
        return out

    # X-App-Usage and X-Business-Use-Case-Usage: percentages of the budget
    # used in the last 60 s, then config and fault overrides on top.
    def usage_headers(self, account, overrides):
        cfg = self.config
        if not cfg["usage_headers"]:
            return []
        n_app, n_acct = self.usage.counts(account)
        budget = float(cfg["budget_per_min"])
        p_app = int(round(n_app * 100 / float(cfg["app_budget_per_min"])))
        p_acct = int(round(n_acct * 100 / budget))
        app = {"call_count": p_app, "total_cputime": p_app, "total_time": p_app}
        buc = {"type": "instagram", "call_count": p_acct, "total_cputime": p_acct,
               "total_time": p_acct, "estimated_time_to_regain_access": 0}
        if cfg["enforce_rate_limit"] and n_acct > budget:
            buc["estimated_time_to_regain_access"] = 1
        parts = {"app": app, "buc": buc}
        for ov in ([cfg["usage"]] if cfg["usage"] else []) + list(overrides):
            for key in ("app", "buc"):
                if key in ov:  # null removes the header, an object is merged in
                    parts[key] = None if ov[key] is None else dict(parts[key] or {}, **ov[key])
        app, buc = parts["app"], parts["buc"]
        out = []
        if app is not None:
            out.append(("X-App-Usage", json.dumps(app, separators=(",", ":"))))
        if buc is not None and account is not None:
            out.append(("X-Business-Use-Case-Usage",
                        json.dumps({account: [buc]}, separators=(",", ":"))))
        return out


# Writes a parsed field tree back to Graph syntax, for nested `next` links.
def unparse_fields(fields):
    parts = []
    for name, spec in fields.items():
        s = name
        if spec is not None:
            s += "".join(".%s(%s)" % kv for kv in spec.mods.items())
            if spec.sub:
                s += "{%s}" % unparse_fields(spec.sub)
        parts.append(s)
    return ",".join(parts)


# --------------------------------------------------------------------------
# HTTP layer
# --------------------------------------------------------------------------

_date_cache = [0, ""]


# The Date header, formatted at most once a second.
def http_date():
    now = int(time.time())
    if _date_cache[0] != now:
        _date_cache[1] = formatdate(now, usegmt=True)
        _date_cache[0] = now
    return _date_cache[1]


class Handler(BaseHTTPRequestHandler):
    """One thread per connection, keep-alive, one write per response."""

    protocol_version = "HTTP/1.1"
    server_version = "mock_graph"
    sys_version = ""
    disable_nagle_algorithm = True

    # The stdlib log line quotes the request line, which may hold a token:
    # never write it.
    def log_message(self, fmt, *args):
        pass

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_DELETE(self):
        self.dispatch("DELETE")

    def do_PUT(self):
        self.dispatch("PUT")

    # Reads a request body sent with Content-Length or chunked encoding.
    def read_body(self):
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        n = int(self.headers.get("Content-Length") or 0)
        if n > MAX_REQUEST_BODY:
            raise ValueError("request body too large")
        return self.rfile.read(n) if n > 0 else b""

    # Routes admin vs. Graph requests and logs each Graph request once it ends.
    def dispatch(self, method):
        app = self.server.app
        start = time.time()
        try:
            body = self.read_body()
        except ValueError:
            self.close_connection = True
            self.write_response(413, [("Content-Type", "application/json")],
                                dumps({"error": "request body too large"}))
            return
        path = self.path
        if path.startswith("/_admin"):
            split = urlsplit(path)
            status, obj = app.admin(method, split.path, split.query, body)
            self.write_response(status, [("Content-Type", "application/json")], dumps(obj))
            return
        host = self.headers.get("Host") or "%s:%d" % self.server.server_address[:2]
        out = app.graph(method, path, self.headers, body, "http://" + host)
        status = 0
        try:
            status = self.deliver(out)
        finally:
            end = time.time()
            entry = {"t": start, "end": end, "method": method,
                     "path": redact_path(path, app.data.tokens),
                     "account": out.account, "endpoint": out.endpoint, "status": status}
            if out.faults:
                entry["faults"] = out.faults
            # whether the call carried appsecret_proof (query or form body),
            # for tests that assert every call does
            if "appsecret_proof=" in path or b"appsecret_proof=" in (body or b""):
                entry["proof"] = True
            app.stats.end(entry)
        if app.log_requests:
            sys.stderr.write("mock_graph: %s %s -> %s in %.0f ms account=%s\n" % (
                method, entry["path"], status, (end - start) * 1000, entry["account"]))
            sys.stderr.flush()

    # Sends an outcome, honouring delays and transport faults; returns the
    # status recorded in the log (0 when no response was sent).
    def deliver(self, out):
        stop = self.server.app.stop
        if out.delay > 0 and stop.wait(out.delay):
            self.close_connection = True
            return 0
        kind = out.transport
        try:
            if kind is None:
                self.write_response(out.status, out.headers, out.body)
                return out.status
            self.close_connection = True
            if kind == "reset":
                # SO_LINGER 0 makes close() send RST instead of FIN.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                                           struct.pack("ii", 1, 0))
                os.close(self.connection.detach())
                return 0
            if kind == "close":
                return 0
            if kind == "hang":
                stop.wait(float(out.params.get("seconds", 120)))
                return 0
            if kind == "short_body":
                # Declares the whole body, sends half, then closes.
                head = self.head_bytes(out.status, out.headers, len(out.body))
                self.wfile.write(head + out.body[:len(out.body) // 2])
                return out.status
            if kind == "slow_drip":
                self.drip(out, stop)
                return out.status
        except OSError:
            self.close_connection = True
            return 0
        return out.status

    # Sends the head, then the body a few bytes at a time so that a client
    # total-timeout trips; stops early when the client or the server goes.
    def drip(self, out, stop):
        body = out.body
        total = out.params.get("total_bytes")
        if total is not None:
            total = int(total)
            body = body[:total] + b" " * max(0, total - len(body))
        bps = max(1.0, float(out.params.get("bytes_per_second", 10)))
        chunk = max(1, int(bps / 10))
        interval = chunk / bps
        self.wfile.write(self.head_bytes(out.status, out.headers, len(body)))
        for i in range(0, len(body), chunk):
            if stop.wait(interval):
                return
            self.wfile.write(body[i:i + chunk])

    # The status line and headers; Content-Length always, so keep-alive works.
    def head_bytes(self, status, headers, length):
        lines = ["HTTP/1.1 %d %s\r\n" % (status, REASONS.get(status, "Unknown")),
                 "Date: %s\r\n" % http_date(), "Server: mock_graph\r\n"]
        lines += ["%s: %s\r\n" % kv for kv in headers]
        lines.append("Content-Length: %d\r\n" % length)
        if self.close_connection:
            lines.append("Connection: close\r\n")
        lines.append("\r\n")
        return "".join(lines).encode("latin-1", "replace")

    # Head and body in one write: no Nagle/delayed-ACK stall on keep-alive.
    def write_response(self, status, headers, body):
        self.wfile.write(self.head_bytes(status, headers, len(body)) + body)


class Server(ThreadingHTTPServer):
    """Threaded HTTP/1.1 server: daemon threads, large backlog, no DNS."""

    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, addr, app):
        self.app = app
        super().__init__(addr, Handler)

    # HTTPServer.server_bind calls getfqdn(), a DNS lookup; skip it.
    def server_bind(self):
        import socketserver
        socketserver.TCPServer.server_bind(self)
        self.server_name, self.server_port = self.server_address[:2]

    # Client disconnects are normal here (faults cause many); stay quiet, and
    # never print request data.
    def handle_error(self, request, client_address):
        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, TimeoutError, OSError)) or self.app.quiet:
            return
        sys.stderr.write("mock_graph: error on a connection: %s\n" % type(exc).__name__)


# The command line from CONTRACT.md, plus --log-requests.
def parse_args(argv):
    p = argparse.ArgumentParser(description="Local Instagram Graph API mock for ig_identity.")
    p.add_argument("--port", type=int, default=0, help="TCP port (0 = ephemeral)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--fixture", help="JSON file with accounts, users, conversations")
    p.add_argument("--generate-users", type=int, default=0, metavar="U")
    p.add_argument("--generate-conversations", type=int, default=0, metavar="C")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--quiet", action="store_true", help="nothing on stderr")
    p.add_argument("--log-requests", action="store_true",
                   help="one token-free line per request on stderr")
    return p.parse_args(argv)


# Serves until SIGTERM/SIGINT, then exits 0 at once, even mid-hang.
def main(argv=None):
    args = parse_args(argv)
    app = MockGraph(initial_data(args), log_requests=args.log_requests and not args.quiet,
                    quiet=args.quiet)
    server = Server((args.host, args.port), app)

    def on_signal(signum, frame):
        app.stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.25},
                     daemon=True, name="accept").start()
    host, port = server.server_address[:2]
    sys.stdout.write("mock_graph listening on %s:%d\n" % (host, port))
    sys.stdout.flush()
    while not app.stop.wait(0.2):
        pass
    # Hanging and dripping handlers wake on app.stop; daemon threads and open
    # sockets go with the process.
    sys.stderr.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
