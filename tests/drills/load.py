"""The steady mixed load: creates, reads of what was created, a small batch
now and then, X-Trace on a share of requests. Poisson arrivals at a fixed
rate (open loop: a slow answer does not slow the arrivals down, as it
does not slow customers down), each on a keep-alive connection from one of
many loopback source addresses (one per customer, for the rate limit).

Records every answer (status and body, or the transport failure) and every
acknowledged id with what was written, so the drills can count what
customers saw and the end can read every acknowledged write back.
"""

import asyncio
import json
import random
import time

from http1 import Connection, TransportError

# Idle client connections are not reused after this long (the ALB closes
# them after 60 s).
IDLE_REUSE_S = 30.0

# A name that exercises the JSON path: quotes, a backslash, non-ASCII.
NAME = 'Zoë O\'Brien "drill" \\ {run}-{n}'


def expected_body(doc_id, name, date_created):
    return (
        '{"_id":"%s","name":%s,"dateCreated":%d}'
        % (doc_id, json.dumps(name, ensure_ascii=False), date_created)
    ).encode()


class Result:
    __slots__ = ("op", "t0", "t1", "kind", "trace")

    def __init__(self, op, t0, t1, kind, trace):
        self.op = op
        self.t0 = t0
        self.t1 = t1
        self.kind = kind  # "" when the answer was the right one
        self.trace = trace


def served_by(resp):
    """(the balancer's name for the host that answered, monotonic time)."""
    headers = getattr(resp, "headers", None) or {}
    return headers.get("x-drill-server"), time.monotonic()


def failure_kind(resp):
    if isinstance(resp, TransportError):
        return resp.kind
    body = resp.text(60)
    if body.startswith("<html>"):
        # HAProxy's own pages: the balancer answered, not cinemo.
        body = "(from the balancer)"
    return f"{resp.status} {body}"


class Load:
    def __init__(self, port, rate, trace_share=0.1, batch_every=1.0, batch_items=10,
                 sources=64, seed=1, timeout=30.0, max_in_flight=2000):
        self.port = port
        self.rate = rate
        self.trace_share = trace_share
        self.batch_every = batch_every
        self.batch_items = batch_items
        self.sources = [f"127.0.1.{i}" for i in range(1, sources + 1)]
        self.rng = random.Random(seed)
        self.run_id = f"{self.rng.getrandbits(32):08x}"
        self.timeout = timeout
        self.max_in_flight = max_in_flight
        self.idle = {s: [] for s in self.sources}
        self.results = []
        self.in_flight = {}  # task -> start time
        self.acked = {}  # id -> [name, wall ms before, wall ms after, dateCreated or None]
        self.acked_order = []
        self.creates = []  # (name, id or None, kind): every create sent
        self.batches = []  # dict per batch sent
        self.traced = {}  # token -> (op, id or None, ok)
        self.bad_reads = []  # acknowledged id read with the wrong answer
        self.seq = 0
        self.t_origin = time.monotonic()
        self.stop_event = asyncio.Event()
        self.tasks = set()

    def now(self):
        return time.monotonic() - self.t_origin

    # ---- connections ---------------------------------------------------------

    async def exchange(self, source, method, path, headers=(), body=b""):
        """The answer, or the TransportError that took its place."""
        pool = self.idle[source]
        conn = None
        while pool and conn is None:
            conn, since = pool.pop()
            # Like any well-behaved client, never reuse a connection near
            # the ALB's idle timeout (60 s): the balancer may be closing it
            # just as the request goes out, which is the client's race,
            # not a failure of the service.
            if time.monotonic() - since > IDLE_REUSE_S or conn.reader.at_eof():
                conn.close()
                conn = None
        try:
            if conn is None:
                conn = await Connection.open("127.0.0.1", self.port, source)
            resp = await conn.request(method, path, headers, body, timeout=self.timeout)
        except TransportError as e:
            return e
        if conn.reusable:
            pool.append((conn, time.monotonic()))
        return resp

    # ---- operations ----------------------------------------------------------

    def next_trace(self):
        if self.rng.random() < self.trace_share:
            return f"drill-{self.run_id}-{self.seq}"
        return None

    async def create(self, source, trace):
        self.seq += 1
        name = NAME.format(run=self.run_id, n=self.seq)
        body = json.dumps({"name": name}, ensure_ascii=False).encode()
        headers = [("Content-Type", "application/json")]
        if trace:
            headers.append(("X-Trace", trace))
        before = int(time.time() * 1000)
        resp = await self.exchange(source, "POST", "/api/customers", headers, body)
        after = int(time.time() * 1000)
        doc_id = None
        if getattr(resp, "status", None) == 200:
            try:
                doc_id = json.loads(resp.body)["customerId"]
            except (ValueError, KeyError, TypeError):
                doc_id = None
        if doc_id:
            self.acked[doc_id] = [name, before, after, None]
            self.acked_order.append(doc_id)
            kind = ""
        else:
            kind = "200 without a customerId" if getattr(resp, "status", None) == 200 else failure_kind(resp)
        self.creates.append((name, doc_id, kind))
        if trace:
            self.traced[trace] = ("create", doc_id, not kind, served_by(resp))
        return kind

    async def read(self, source, trace):
        # Mostly recent customers, as a customer reads back what they just
        # made; sometimes any earlier one.
        n = len(self.acked_order)
        i = n - 1 - min(int(self.rng.expovariate(1 / 200)), n - 1) if self.rng.random() < 0.8 else self.rng.randrange(n)
        doc_id = self.acked_order[i]
        headers = [("X-Trace", trace)] if trace else []
        resp = await self.exchange(source, "GET", f"/api/customers/{doc_id}", headers)
        status = getattr(resp, "status", None)
        kind = self.check_document(doc_id, resp.body) if status == 200 else failure_kind(resp)
        if kind and status in (200, 404):
            self.bad_reads.append((self.now(), doc_id, status, resp.body[:200]))
        if trace:
            self.traced[trace] = ("read", doc_id, not kind, served_by(resp))
        return kind

    def check_document(self, doc_id, body):
        """"" when `body` is exactly what was written under `doc_id`."""
        entry = self.acked[doc_id]
        name, before, after, date_created = entry
        if date_created is None:
            try:
                date_created = json.loads(body)["dateCreated"]
            except (ValueError, KeyError, TypeError):
                return "200 unreadable document"
            if not (before - 5 <= date_created <= after + 5):
                return "200 dateCreated outside the create's time"
        if body != expected_body(doc_id, name, date_created):
            return "200 document differs from what was written"
        entry[3] = date_created
        return ""

    async def batch(self, source, trace):
        self.seq += 1
        token = f"{self.run_id}-b{self.seq}"
        names = [f"batch {token} {i} Zoë" for i in range(self.batch_items)]
        body = json.dumps([{"name": n} for n in names], ensure_ascii=False).encode()
        headers = [("Content-Type", "application/json")]
        key = None
        if self.seq % 2:
            key = f"drill-{token}"
            headers.append(("Idempotency-Key", key))
        if trace:
            headers.append(("X-Trace", trace))
        before = int(time.time() * 1000)
        resp = await self.exchange(source, "POST", "/api/customers/batch", headers, body)
        after = int(time.time() * 1000)
        ids = None
        kind = ""
        if getattr(resp, "status", None) == 200:
            try:
                ids = json.loads(resp.body)["customerIds"]
            except (ValueError, KeyError, TypeError):
                ids = None
            if not ids or len(ids) != len(names):
                kind, ids = "200 without the batch's ids", None
        else:
            kind = failure_kind(resp)
        self.batches.append({"token": token, "names": names, "ids": ids, "kind": kind, "key": key})
        if ids:
            for doc_id, name in zip(ids, names):
                self.acked[doc_id] = [name, before, after, None]
                self.acked_order.append(doc_id)
        if trace:
            self.traced[trace] = ("batch", None, not kind, served_by(resp))
        return kind

    # ---- the load ------------------------------------------------------------

    async def one(self, op):
        t0 = self.now()
        trace = self.next_trace()
        source = self.rng.choice(self.sources)
        try:
            kind = await getattr(self, op)(source, trace)
        except Exception as e:  # a bug in the drill itself must show
            kind = f"drill error {type(e).__name__}: {e}"
        self.results.append(Result(op, t0, self.now(), kind, trace))

    def spawn(self, op):
        if len(self.tasks) >= self.max_in_flight:
            t = self.now()
            self.results.append(Result(op, t, t, "not sent: too many requests in flight", None))
            return
        task = asyncio.create_task(self.one(op))
        self.in_flight[task] = self.now()
        self.tasks.add(task)

        def done(t):
            self.tasks.discard(t)
            self.in_flight.pop(t, None)

        task.add_done_callback(done)

    async def arrivals(self):
        next_t = self.now()
        while not self.stop_event.is_set():
            next_t += self.rng.expovariate(self.rate)
            delay = next_t - self.now()
            if delay > 0:
                await asyncio.sleep(delay)
            elif delay < -1:
                next_t = self.now()  # the loop fell behind: do not burst
            if not self.acked_order or self.rng.random() < 0.4:
                self.spawn("create")
            else:
                self.spawn("read")

    async def batches_loop(self):
        while not self.stop_event.is_set():
            await asyncio.sleep(self.rng.expovariate(1 / self.batch_every))
            if not self.stop_event.is_set():
                self.spawn("batch")

    def start(self):
        self.runners = [asyncio.create_task(self.arrivals()), asyncio.create_task(self.batches_loop())]

    async def stop(self):
        self.stop_event.set()
        for r in self.runners:
            r.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks), timeout=self.timeout + 5)
        for pool in self.idle.values():
            for conn, _ in pool:
                conn.close()
            pool.clear()

    def bad_reads_in(self, t0, t1):
        """Acknowledged writes read as missing or different in a window."""
        return sum(1 for t, *_ in self.bad_reads if t0 <= t < t1)

    def in_flight_at(self, t):
        """Requests started before `t` that had not finished by then."""
        return sum(1 for r in self.results if r.t0 <= t < r.t1) + sum(
            1 for start in self.in_flight.values() if start <= t
        )


def summarize(results, t_fault=None):
    """Counts of one window of results."""
    failures = {}
    lat = []
    last_failure = None
    for r in results:
        lat.append(r.t1 - r.t0)
        if r.kind:
            failures[r.kind] = failures.get(r.kind, 0) + 1
            if last_failure is None or r.t1 > last_failure:
                last_failure = r.t1
    lat.sort()

    def pct(q):
        return lat[min(len(lat) - 1, int(q * len(lat)))] * 1000 if lat else 0.0

    return {
        "requests": len(results),
        "failed": sum(failures.values()),
        "failures": failures,
        "p50_ms": pct(0.50),
        "p99_ms": pct(0.99),
        "max_ms": lat[-1] * 1000 if lat else 0.0,
        "last_failure_s": (last_failure - t_fault) if (last_failure is not None and t_fault is not None) else None,
    }
