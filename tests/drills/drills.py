"""Fault drills: the production shape on loopback, a steady mixed load, and
the events of a bad day, each counted as a customer sees it.

    python3 tests/drills/drills.py --profile full|short --binary PATH

Run through tests/drills/run.sh, which installs what is needed. The full
profile keeps production's timings (health checks, deregistration delay,
shutdown deadline, connection age) and prints the table that
docs/reliability.md quotes; the short profile scales them down for CI and
exits 1 when a goal is missed.
"""

import argparse
import asyncio
import json
import os
import shutil
import signal
import ssl
import sys
import tempfile
import time
from dataclasses import dataclass, field

from load import Load, expected_body, summarize
from http1 import Connection, TransportError
from topology import ABORT, Topology, read_stream, wait_until


@dataclass
class Profile:
    name: str
    rate: float  # requests per second offered
    # Health checks as the target groups run them (ansible/roles/load_balancers).
    alb_interval: float
    alb_unhealthy: int
    alb_healthy: int
    nlb_interval: float
    nlb_unhealthy: int
    nlb_healthy: int
    check_timeout: float
    deregistration_delay: float
    shutdown_secs: int
    max_age_secs: int
    db_outage: float
    kinesis_outage: float
    idle_connections: int
    slow_clients: int
    slow_window: float
    settle: float  # quiet load between drills
    time_limit: int  # the whole run, seconds
    extra_env: dict = field(default_factory=dict)


PROFILES = {
    # Production's own numbers: target group health checks (interval 10 s,
    # 3 or 2 failures), deregistration delay 120 s (longest_batch_import_secs),
    # the host role's shutdown deadline (30 s), public.internal_connection_max_age_secs.
    "full": Profile("full", rate=200, alb_interval=10, alb_unhealthy=3, alb_healthy=2,
                    nlb_interval=10, nlb_unhealthy=2, nlb_healthy=2, check_timeout=5,
                    deregistration_delay=120, shutdown_secs=30, max_age_secs=20,
                    db_outage=20, kinesis_outage=30, idle_connections=3000, slow_clients=20,
                    slow_window=30, settle=10, time_limit=1800),
    # The same shape scaled down about tenfold for CI: health checks every
    # 0.5 s, deregistration delay 6 s, shutdown deadline 5 s, connections
    # replaced every 2 s; outages of 3 s.
    "short": Profile("short", rate=150, alb_interval=0.5, alb_unhealthy=2, alb_healthy=2,
                     nlb_interval=0.5, nlb_unhealthy=2, nlb_healthy=2, check_timeout=1,
                     deregistration_delay=6, shutdown_secs=5, max_age_secs=2,
                     db_outage=3, kinesis_outage=3, idle_connections=1000, slow_clients=10,
                     slow_window=8, settle=1.5, time_limit=600),
}

# The internal tier's answer time limit (public.internal_timeout_ms): no
# answer may take longer, whatever fails behind it.
ANSWER_DEADLINE_S = 5.0


class Drill:
    def __init__(self, number, title, goal):
        self.number = number
        self.title = title
        self.goal = goal
        self.t0 = None
        self.t1 = None
        self.t_fault = None
        self.notes = []
        self.met = None
        self.why = ""
        self.stats = None

    def note(self, text):
        self.notes.append(text)
        print(f"    {text}", flush=True)


class Probe:
    """What the duty manager's tools would show: readiness (`/api/health`)
    and liveness (`/api/health/live`) of one host per tier, and which hosts
    the balancers count as up, polled every quarter second; keeps the
    changes."""

    def __init__(self, topo, now):
        self.topo = topo
        self.now = now
        self.state = {}
        self.changes = []  # (t, what, old, new)
        self.tls = ssl.create_default_context(cafile=str(topo.tls / "ca.crt"))
        self.tls.load_cert_chain(str(topo.tls / "client.crt"), str(topo.tls / "client.key"))

    def record(self, what, value):
        old = self.state.get(what)
        if old != value:
            self.state[what] = value
            if old is not None:
                self.changes.append((self.now(), what, old, value))

    async def status(self, port, path, tls=False):
        try:
            conn = await Connection.open("127.0.0.1", port, None, timeout=2) if not tls else None
            if tls:
                reader, writer = await asyncio.wait_for(asyncio.open_connection(
                    "127.0.0.1", port, ssl=self.tls, server_hostname="localhost"), 2)
                conn = Connection(reader, writer)
            resp = await conn.request("GET", path, timeout=ANSWER_DEADLINE_S + 1)
            conn.close()
            return f"{resp.status} {resp.text(40)}"
        except (TransportError, OSError, TimeoutError) as e:
            return f"no answer ({getattr(e, 'kind', type(e).__name__)})"

    async def run(self):
        while True:
            try:  # the topology thread may be changing the hosts
                public = sorted(list(self.topo.hosts["public"].values()), key=lambda h: h.slot)
                internal = sorted(list(self.topo.hosts["internal"].values()), key=lambda h: h.slot)
            except RuntimeError:
                await asyncio.sleep(0.01)
                continue
            if public:
                self.record("public /api/health", await self.status(public[0].port, "/api/health"))
            if internal:
                self.record("internal /api/health",
                            await self.status(internal[0].port, "/api/health", tls=True))
            for tier in ("public", "internal"):
                states = await asyncio.to_thread(self.topo.server_states, tier)
                up = sorted(s for s in states if self.topo.up(tier, s, states))
                self.record(f"{tier} hosts in service", ",".join(up))
            await asyncio.sleep(0.25)

    def between(self, t0, t1):
        return [(round(t - t0, 1), what, old, new) for t, what, old, new in self.changes if t0 <= t < t1]


class Runner:
    def __init__(self, args):
        self.args = args
        self.p = PROFILES[args.profile]
        if args.rate:
            self.p.rate = args.rate
        self.dir = args.workdir or tempfile.mkdtemp(prefix="cinemo-drills.")
        os.makedirs(self.dir, exist_ok=True)
        self.topo = Topology(self.p, args.binary, self.dir, args.pg_bin, args.node_modules)
        self.drills = []
        self.load = None

    # ---- helpers ---------------------------------------------------------------

    async def t(self, fn, *a):
        """A blocking topology step, off the load's event loop."""
        return await asyncio.to_thread(fn, *a)

    def now(self):
        return self.load.now()

    async def quiet(self, seconds):
        """Waits until the load has run `seconds` without a failure, so a
        drill never starts inside the previous one's tail; bounded."""
        deadline = self.now() + 180
        while self.now() < deadline:
            t = self.now()
            recent = [r for r in self.load.results if r.t1 >= t - seconds]
            if t - seconds >= self.load_started and not any(r.kind for r in recent):
                return
            await asyncio.sleep(0.25)
        raise RuntimeError(f"the service did not run {seconds:g} s without failures within 180 s")

    async def begin(self, number, title, goal):
        await self.quiet(max(2.0, self.p.settle / 2))
        d = Drill(number, title, goal)
        d.t0 = self.now()
        self.drills.append(d)
        print(f"\n== drill {number}: {title}", flush=True)
        return d

    async def end(self, d, settle=None):
        """Closes the drill's window after some quiet load, once every
        request started in it has its answer."""
        await asyncio.sleep(self.p.settle if settle is None else settle)
        cut = self.now()
        deadline = time.monotonic() + ANSWER_DEADLINE_S + 30
        while time.monotonic() < deadline and any(s <= cut for s in self.load.in_flight.values()):
            await asyncio.sleep(0.05)
        d.t1 = cut
        t_ref = d.t_fault if d.t_fault is not None else d.t0
        for t, what, old, new in self.probe.between(d.t0, d.t1):
            d.note(f"{t - (t_ref - d.t0):+.1f} s {what}: {old!r} -> {new!r}")
        window = [r for r in self.load.results if d.t0 <= r.t0 < d.t1]
        d.stats = summarize(window, d.t_fault if d.t_fault is not None else d.t0)
        s = d.stats
        print(f"    {s['requests']} requests, {s['failed']} failed {s['failures'] or ''}; "
              f"p50 {s['p50_ms']:.1f} ms, p99 {s['p99_ms']:.1f} ms, max {s['max_ms']:.0f} ms"
              + (f"; last failure {s['last_failure_s']:.2f} s after the fault" if s['last_failure_s'] is not None else ""),
              flush=True)
        return window

    def judge(self, d, ok, why=""):
        d.met = bool(ok)
        d.why = why
        print(f"    goal: {d.goal} -> {'met' if ok else 'MISSED'}{(': ' + why) if why else ''}", flush=True)

    # ---- drills ----------------------------------------------------------------

    async def rolling(self, tier, number):
        d = await self.begin(number, f"rolling replacement of both {tier} hosts",
                       "0 failed requests")
        d.t_fault = d.t0
        for old in sorted(self.topo.hosts[tier]):
            new = self.topo.spare_slot(tier)
            await self.t(self.topo.launch, tier, new)
            healthy = await self.t(self.topo.register, tier, new)
            drained = await self.t(self.topo.deregister, tier, old)
            took, code = await self.t(self.topo.terminate, tier, old)
            d.note(f"{new} in service after {healthy:.1f} s of health checks; {old} deregistered "
                   f"in {drained:.1f} s, exited {code} {took:.2f} s after SIGTERM")
        await self.end(d)
        self.judge(d, d.stats["failed"] == 0)

    async def kill(self, tier, number):
        if tier == "internal":
            goal = "no more failures than requests in flight at the kill"
        else:
            goal = "0 failures once the balancer marked the host down"
        d = await self.begin(number, f"SIGKILL of one {tier} host", goal)
        victim = sorted(self.topo.hosts[tier])[0]
        await asyncio.sleep(0.5)
        d.t_fault = self.now()
        in_flight = self.load.in_flight_at(d.t_fault)
        await self.t(self.topo.kill, tier, victim)
        await self.t(wait_until, f"{victim} marked down", lambda: self.topo.down(tier, victim), 120, 0.05)
        t_noticed = self.now()
        d.note(f"{victim} killed with {in_flight} requests in flight (all hosts); "
               f"the balancer marked it down {t_noticed - d.t_fault:.1f} s later")
        # The autoscaling group replaces it.
        new = self.topo.spare_slot(tier)
        await self.t(self.topo.launch, tier, new)
        healthy = await self.t(self.topo.register, tier, new)
        d.note(f"replacement {new} in service after {healthy:.1f} s")
        window = await self.end(d)
        before = [r for r in window if r.kind and r.t1 <= t_noticed]
        after = [r for r in window if r.kind and r.t0 >= t_noticed]
        d.note(f"failures before the balancer noticed: {len(before)}, after: {len(after)}")
        if tier == "internal":
            self.judge(d, d.stats["failed"] <= in_flight,
                       f"{d.stats['failed']} failed, {in_flight} were in flight")
        else:
            self.judge(d, not after, f"{len(after)} failed after the balancer noticed")

    async def database(self, number):
        d = await self.begin(number, "PostgreSQL restart (fast shutdown) mid-writes",
                       f"503/504 within {ANSWER_DEADLINE_S:g} s, service back within 5 s, no write lost")
        await asyncio.sleep(1)
        d.t_fault = self.now()
        await self.t(self.topo.pg_ctl, "-m", "fast", "restart")
        t_back = self.now()
        d.note(f"PostgreSQL down and back in {t_back - d.t_fault:.1f} s")
        window = await self.end(d, settle=max(self.p.settle, 6))
        self.judge_outage(d, window, t_back)

        d = await self.begin(f"{number}b", f"PostgreSQL unreachable for {self.p.db_outage:g} s (packets dropped)",
                       f"503/504 within {ANSWER_DEADLINE_S:g} s, service back within 5 s, no write lost")
        await asyncio.sleep(1)
        d.t_fault = self.now()
        self.topo.cut(self.topo.pg_proxy)
        await asyncio.sleep(self.p.db_outage)
        self.topo.heal(self.topo.pg_proxy)
        t_back = self.now()
        window = await self.end(d, settle=max(self.p.settle, 6))
        self.judge_outage(d, window, t_back)

    def judge_outage(self, d, window, t_back):
        failed = [r for r in window if r.kind]
        slowest = max((r.t1 - r.t0 for r in failed), default=0)
        last = max((r.t1 for r in failed), default=None)
        back_after = (last - t_back) if last is not None else 0.0
        ok_after = [r for r in window if not r.kind and r.t0 >= t_back]
        first_ok = (min(r.t1 for r in ok_after) - t_back) if ok_after else None
        lost = self.load.bad_reads_in(d.t0, d.t1)
        d.note(f"slowest failed answer {slowest:.2f} s; last failure {back_after:.2f} s after the database "
               f"was back; first success {first_ok if first_ok is None else round(first_ok, 2)} s after; "
               f"acknowledged writes read as missing or wrong meanwhile: {lost}")
        d.back_after = back_after
        reasons = []
        # A batch may also be told to come back later (429 with
        # Retry-After): batches stuck on the database hold the tier's
        # batch slots (batch.max_concurrent) until storage.batch_timeout_ms.
        other = sorted({r.kind for r in failed if not r.kind.startswith(("503 ", "504 "))
                        and not (r.op == "batch" and r.kind.startswith("429 "))})
        if other:
            reasons.append(f"failures other than 503/504: {', '.join(other)}")
        if slowest > ANSWER_DEADLINE_S + 0.5:
            reasons.append(f"a failure took {slowest:.1f} s")
        if back_after > 5:
            reasons.append(f"failures went on {back_after:.1f} s after the database was back")
        if lost:
            reasons.append(f"{lost} acknowledged writes read wrong")
        self.judge(d, not reasons, "; ".join(reasons))

    async def kinesis(self, number):
        d = await self.begin(number, f"Kinesis unreachable for {self.p.kinesis_outage:g} s",
                       "0 failed requests; frames delivered after, drops counted")
        d.t_fault = self.now()
        self.topo.cut(self.topo.kinesis_proxy)
        await asyncio.sleep(self.p.kinesis_outage)
        self.topo.heal(self.topo.kinesis_proxy)
        d.t_heal = self.now()
        await self.end(d, settle=max(self.p.settle, 3))
        self.kinesis_drill = d
        self.judge(d, d.stats["failed"] == 0)

    async def idle_and_slow(self, number):
        d = await self.begin(number, f"{self.p.idle_connections} idle keep-alive connections and "
                               f"{self.p.slow_clients} slow-header clients",
                       "0 failed requests, latency as before")
        base = summarize([r for r in self.load.results if d.t0 - self.p.slow_window <= r.t0 < d.t0])
        targets = [self.topo.alb_port] + [h.port for h in self.topo.hosts["public"].values()]
        # Two thirds at the ALB, the rest straight at the public hosts.
        idle = []
        n_alb = self.p.idle_connections * 2 // 3
        per_host = (self.p.idle_connections - n_alb) // max(1, len(targets) - 1)
        plan = [(self.topo.alb_port, n_alb)] + [(port, per_host) for port in targets[1:]]
        opened = failed_open = 0
        for port, n in plan:
            for i in range(0, n, 100):
                batch = await asyncio.gather(*(self.idle_connection(port, j) for j in range(i, min(n, i + 100))),
                                             return_exceptions=True)
                for c in batch:
                    if isinstance(c, Connection):
                        idle.append(c)
                        opened += 1
                    else:
                        failed_open += 1
        d.t_fault = self.now()
        slow = [asyncio.create_task(self.slow_client(targets[i % len(targets)], i)) for i in range(self.p.slow_clients)]
        await asyncio.sleep(self.p.slow_window)
        still_open = sum(1 for c in idle if not c.reader.at_eof())
        ended = [t.result() for t in slow if t.done()]
        for t in slow:
            t.cancel()
        for c in idle:
            c.close()
        d.note(f"{opened} idle connections opened ({failed_open} could not be), {still_open} still open "
               f"after {self.p.slow_window:g} s; slow clients cut off by the server: {len(ended)} "
               f"({', '.join(sorted(set(ended))) or 'none'})")
        t_closed = self.now()
        # As long again without them: a machine shared with other work
        # slows down and speeds up by itself, so the load during the drill
        # is compared with the slower of the windows before and after.
        window = await self.end(d, settle=self.p.slow_window)
        during = summarize([r for r in window if d.t_fault <= r.t0 < t_closed])
        after = summarize([r for r in window if r.t0 >= t_closed])
        base_p99 = max(base["p99_ms"], after["p99_ms"])
        d.note(f"load before: p50 {base['p50_ms']:.1f} ms, p99 {base['p99_ms']:.1f} ms; during: "
               f"p50 {during['p50_ms']:.1f} ms, p99 {during['p99_ms']:.1f} ms; after: "
               f"p50 {after['p50_ms']:.1f} ms, p99 {after['p99_ms']:.1f} ms")
        slower = during["p99_ms"] > max(2 * base_p99, base_p99 + 20)
        self.judge(d, d.stats["failed"] == 0 and not slower,
                   "p99 more than doubled" if slower else "")

    async def idle_connection(self, port, i):
        source = f"127.0.2.{1 + i % 250}"
        conn = await Connection.open("127.0.0.1", port, source, timeout=10)
        resp = await conn.request("GET", "/api/health/live", timeout=10)
        if resp.status != 200:
            conn.close()
            raise RuntimeError(f"idle connection's first request answered {resp.status}")
        return conn

    async def slow_client(self, port, i):
        """Sends a request head one byte a second; returns how it ended."""
        t0 = time.monotonic()
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port, local_addr=(f"127.0.3.{1 + i}", 0))
        except OSError as e:
            return f"not connected: {e}"
        try:
            writer.write(b"GET /api/health/live HTTP/1.1\r\nHost: slow\r\nX-Slow: ")
            await writer.drain()
            while True:
                await asyncio.sleep(1)
                writer.write(b"a")
                await writer.drain()
                if reader.at_eof():
                    break
        except (OSError, ConnectionError):
            pass
        except asyncio.CancelledError:
            writer.close()
            raise
        writer.close()
        return f"{'alb' if port == self.topo.alb_port else 'host'} after {time.monotonic() - t0:.0f} s"

    # ---- the end: every acknowledged write, every batch, every frame -----------

    async def verify(self, number):
        d = await self.begin(number, "every acknowledged write reads back; no batch half stored",
                       "0 acknowledged writes lost or changed, 0 half-stored batches")
        load = self.load
        ids = list(load.acked)
        wrong = []
        sem = asyncio.Semaphore(32)
        conns = []
        opened = []

        async def check(doc_id):
            async with sem:
                if conns:
                    conn = conns.pop()
                else:
                    # Each from its own address: the rate limit is per client.
                    opened.append(1)
                    conn = await Connection.open("127.0.0.1", self.topo.alb_port, f"127.0.4.{len(opened) % 250 + 1}")
                for _ in range(20):
                    resp = await conn.request("GET", f"/api/customers/{doc_id}", timeout=30)
                    if resp.status != 429:  # this check's own pace, not a finding
                        break
                    await asyncio.sleep(0.5)
                if conn.reusable:
                    conns.append(conn)
                if resp.status != 200 or load.check_document(doc_id, resp.body):
                    wrong.append((doc_id, resp.status, resp.body[:120]))

        for i in range(0, len(ids), 2000):
            await asyncio.gather(*(check(x) for x in ids[i:i + 2000]))
        for c in conns:
            c.close()
        # Everything stored, page by page, to find what was stored without
        # being acknowledged and to check each batch is all or nothing.
        stored = {}
        after = None
        conn = await Connection.open("127.0.0.1", self.topo.alb_port, "127.0.4.2")
        for _ in range(100000):
            q = f"/api/customers?limit=1000" + (f"&after={after}" if after else "")
            resp = await conn.request("GET", q, timeout=60)
            if resp.status != 200:
                raise RuntimeError(f"listing answered {resp.status}: {resp.text()}")
            page = json.loads(resp.body)
            for item in page["items"]:
                stored.setdefault(item.get("name"), []).append(item["_id"])
            after = page["next"]
            if not after:
                break
        conn.close()
        half = []
        for b in load.batches:
            present = sum(1 for n in b["names"] if n in stored)
            if present not in (0, len(b["names"])):
                half.append((b["token"], present))
            if b["ids"] and present != len(b["names"]):
                half.append((b["token"], present))
        doubled = [n for n, v in stored.items() if len(v) > 1]
        ghosts = {}
        for name, doc_id, kind in load.creates:
            if not doc_id and name in stored:
                ghosts[kind] = ghosts.get(kind, 0) + 1
        ghost_creates = sum(ghosts.values())
        ghost_batches = sum(1 for b in load.batches if not b["ids"] and all(n in stored for n in b["names"]))
        failed_creates = sum(1 for _, doc_id, _ in load.creates if not doc_id)
        failed_batches = sum(1 for b in load.batches if not b["ids"])
        d.note(f"{len(ids)} acknowledged documents read back: {len(wrong)} missing or different "
               f"{wrong[:3] if wrong else ''}")
        d.note(f"{len(load.batches)} batches: {len(half)} half stored; {len(doubled)} names stored twice")
        d.note(f"answered as failed but stored: {ghost_creates} of {failed_creates} failed creates "
               f"{ghosts or ''}, {ghost_batches} of {failed_batches} failed batches")
        self.verified = {"acked": len(ids), "wrong": len(wrong), "half": len(half), "doubled": len(doubled),
                         "ghost_creates": ghost_creates, "failed_creates": failed_creates}
        d.stats = {"requests": len(ids), "failed": len(wrong) + len(half) + len(doubled), "failures": {},
                   "p50_ms": 0, "p99_ms": 0, "max_ms": 0, "last_failure_s": None}
        self.judge(d, not wrong and not half and not doubled)

    def check_frames(self):
        """After every host has stopped (and flushed): the traced requests'
        frames are in the stream, and each sink's totals."""
        sinks = {"sent": 0, "dropped": 0, "unknown": 0, "retried": 0}
        for host in self.topo.retired:
            for line in host.log.read_text(errors="replace").splitlines():
                if "kinesis sink stopped" in line or '"sent":' in line and '"dropped":' in line:
                    try:
                        rec = json.loads(line)
                    except ValueError:
                        continue
                    fields = rec.get("fields", rec)
                    for k in sinks:
                        sinks[k] += int(fields.get(k, 0) or 0)
        frames = read_stream(self.topo.kinesis_port)
        public_logs = {}
        for f in frames:
            data = f.get("data", {})
            if f.get("type") == "logs" and data.get("appId") == "cinemo-public":
                public_logs.setdefault(data.get("traceId"), []).append(data.get("message"))
        missing_all = [t for t, (op, _, ok, _) in self.load.traced.items() if ok and t not in public_logs]
        # A host killed with SIGKILL takes the frames it had not sent yet
        # (at most `kinesis.flush_interval_ms` of them) along.
        with_killed = [t for t in missing_all
                       if self.topo.killed_host_at(self.load.traced[t][3][0], self.load.traced[t][3][1])]
        k = getattr(self, "kinesis_drill", None)
        missing_outage = []
        if k:
            window = {r.trace for r in self.load.results if r.trace and k.t0 <= r.t0 < k.t1 and not r.kind}
            missing_outage = [t for t in window if t not in public_logs]
        print(f"\n== diagnostics frames: {len(frames)} in the stream; sinks sent {sinks['sent']}, "
              f"retried {sinks['retried']}, unknown outcome {sinks['unknown']}, dropped {sinks['dropped']}",
              flush=True)
        print(f"    traced requests answered 200 without their public log frame: {len(missing_all)} of "
              f"{sum(1 for v in self.load.traced.values() if v[2])}, {len(with_killed)} of them answered by a "
              f"host later killed with SIGKILL; during the Kinesis outage: {len(missing_outage)}", flush=True)
        unexplained = len(missing_all) - len(with_killed)
        if k:
            # The buffer holds a whole outage's frames: a frame dropped, even
            # counted, misses the goal (so does a stream nobody writes to).
            ok = not missing_outage and not unexplained and sinks["dropped"] == 0
            k.notes.append(f"frames after the outage: {len(frames)} in the stream, {sinks['dropped']} dropped "
                           f"and counted, {len(missing_outage)} traced requests of the outage without their frame")
            if not ok:
                k.met = False
                k.why = (k.why + "; " if k.why else "") + (
                    f"{len(missing_outage)} frames of the outage and {unexplained} in all missing, "
                    f"{sinks['dropped']} dropped")
        self.frames = {"in_stream": len(frames), **sinks, "missing": len(missing_all),
                       "missing_killed": len(with_killed)}

    # ---- the run ---------------------------------------------------------------

    async def run(self):
        only = set(self.args.only.split(",")) if self.args.only else None

        def want(n):
            return only is None or str(n) in only

        print(f"cinemo drills, profile {self.p.name}: {self.p.rate:g} req/s offered; work dir {self.dir}", flush=True)
        await self.t(self.topo.start)
        print(f"topology up: ALB :{self.topo.alb_port}, NLB :{self.topo.nlb_port}, "
              f"PostgreSQL :{self.topo.pg_port} (via :{self.topo.pg_proxy_port}), "
              f"kinesalite :{self.topo.kinesis_port} (via :{self.topo.kinesis_proxy_port})", flush=True)
        self.load = Load(self.topo.alb_port, self.p.rate, seed=self.args.seed)
        self.load.start()
        self.probe = Probe(self.topo, self.now)
        probe = asyncio.create_task(self.probe.run())
        self.load_started = self.now()
        t_start = time.monotonic()
        await asyncio.sleep(max(2, self.p.settle))
        d = await self.begin(0, "steady load, no fault", "0 failed requests")
        await asyncio.sleep(max(3, self.p.slow_window))
        await self.end(d, settle=0)
        self.judge(d, d.stats["failed"] == 0)
        if want(1):
            await self.rolling("internal", 1)
        if want(2):
            await self.rolling("public", 2)
        if want(3):
            await self.kill("internal", 3)
            await self.kill("public", "3b")
        if want(4):
            await self.database(4)
        if want(5):
            await self.kinesis(5)
        if want(6):
            await self.idle_and_slow(6)
        probe.cancel()
        await self.load.stop()
        await self.verify(7)
        await self.t(self.topo.stop_all_hosts)
        self.check_frames()
        self.report(time.monotonic() - t_start)

    async def run_checked(self):
        """The run within its time limit; Ctrl-C or SIGTERM stops it."""
        main = asyncio.current_task()
        loop = asyncio.get_running_loop()

        def interrupt():
            ABORT.set()
            main.cancel()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, interrupt)
        try:
            async with asyncio.timeout(self.p.time_limit):
                await self.run()
        except TimeoutError:
            ABORT.set()
            print(f"the run took longer than {self.p.time_limit} s", file=sys.stderr)
            return False
        return all(d.met for d in self.drills)

    def report(self, elapsed):
        print(f"\n== cinemo drills, profile {self.p.name}, {self.p.rate:g} req/s offered, "
              f"{len(self.load.results)} requests in {elapsed:.0f} s", flush=True)
        print("| drill | requests | failed | failures by kind | last failure after | p99 ms | goal |")
        print("|---|---:|---:|---|---:|---:|---|")
        for d in self.drills:
            s = d.stats
            kinds = ", ".join(f"{n}× {k}" for k, n in sorted(s["failures"].items(), key=lambda kv: -kv[1])) or "none"
            last = f"{s['last_failure_s']:.1f} s" if s["last_failure_s"] is not None else "-"
            p99 = f"{s['p99_ms']:.1f}" if s["p99_ms"] else "-"
            print(f"| {d.number} {d.title} | {s['requests']} | {s['failed']} | {kinds} | {last} | {p99} | "
                  f"{'met' if d.met else 'MISSED'} |")
        v, f = self.verified, self.frames
        print(f"\nacknowledged writes: {v['acked']} read back, {v['wrong']} lost or changed; "
              f"{v['half']} half-stored batches; {v['ghost_creates']} of {v['failed_creates']} failed creates "
              f"were stored anyway")
        print(f"diagnostics: {f['in_stream']} frames in the stream, {f['dropped']} dropped and counted, "
              f"{f['missing']} traced requests without their frame ({f['missing_killed']} answered by a host "
              f"later killed)")
        if self.args.json:
            with open(self.args.json, "w") as out:
                json.dump({"profile": self.p.name, "drills": [
                    {"number": str(d.number), "title": d.title, "goal": d.goal, "met": d.met, "why": d.why,
                     "notes": d.notes, **d.stats} for d in self.drills], "verified": v, "frames": f}, out, indent=1)
        missed = [d for d in self.drills if not d.met]
        if missed:
            print("\nMISSED: " + "; ".join(f"drill {d.number} ({d.why or d.goal})" for d in missed))
        return not missed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--profile", choices=PROFILES, default="full")
    ap.add_argument("--binary", required=True)
    ap.add_argument("--pg-bin", required=True)
    ap.add_argument("--node-modules", required=True)
    ap.add_argument("--workdir")
    ap.add_argument("--keep", action="store_true", help="keep the work dir (logs) even when every goal is met")
    ap.add_argument("--only", help="comma-separated drill numbers, e.g. 1,3")
    ap.add_argument("--rate", type=float)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    runner = Runner(args)

    ok = False
    try:
        ok = asyncio.run(runner.run_checked())
    except (KeyboardInterrupt, asyncio.CancelledError):
        print("interrupted", file=sys.stderr)
    finally:
        runner.topo.close()
        if ok and not args.keep and not args.workdir:
            shutil.rmtree(runner.dir, ignore_errors=True)
        else:
            print(f"logs kept in {runner.dir}", file=sys.stderr)
    sys.exit(0 if ok else 1)

if __name__ == "__main__":
    main()
