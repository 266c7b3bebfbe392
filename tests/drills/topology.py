"""The production shape on loopback: PostgreSQL behind a TCP proxy the drills
can partition, kinesalite behind another, HAProxy as the internal NLB (TCP
passthrough, HTTP health checks on /api/health/live) and as the ALB (HTTP,
no retries), and cinemo hosts in slots behind them.

Every process started here is recorded and stopped by `Topology.close()`,
whatever happened; every server binds 127.0.0.1 on a port the OS picked.
"""

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib
import urllib.request
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
# The diagnostics stream the hosts write to: config/edge.toml's, since every
# host runs with CINEMO_ENV=edge.
with open(Path(__file__).resolve().parents[2] / "config" / "edge.toml", "rb") as _edge:
    STREAM = tomllib.load(_edge)["kinesis"]["stream_name"]


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# Set when the run is interrupted: every wait gives up at once, so the
# clean-up does not wait for a poll to time out.
ABORT = threading.Event()


def wait_until(what, check, timeout, interval=0.05):
    """Polls `check` until it returns something true; bounded in time."""
    deadline = time.monotonic() + timeout
    while True:
        if ABORT.is_set():
            raise RuntimeError(f"interrupted while waiting for {what}")
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:g}s waiting for {what}")
        time.sleep(interval)


def port_open(port):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def run(cmd, **kw):
    done = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **kw)
    if done.returncode:
        raise RuntimeError(f"{' '.join(map(str, cmd))} failed ({done.returncode}): {done.stderr.decode(errors='replace')}")


def ms(seconds):
    return f"{int(seconds * 1000)}ms"


class Host:
    """One cinemo process in a load balancer slot (an EC2 instance)."""

    def __init__(self, tier, slot, port, proc, log, started):
        self.tier = tier
        self.slot = slot
        self.port = port
        self.proc = proc
        self.log = log
        self.started = started
        self.stopped = None
        self.killed = False

    def __repr__(self):
        return f"{self.tier} {self.slot} (pid {self.proc.pid}, :{self.port})"


class Topology:
    def __init__(self, profile, binary, workdir, pg_bin, node_modules):
        self.p = profile
        self.bin = binary
        self.dir = Path(workdir)
        self.pg_bin = Path(pg_bin)
        self.node_modules = node_modules
        self.children = []  # every Popen started here
        self.pg_data = self.dir / "pg" / "data"
        self.hosts = {"internal": {}, "public": {}}  # slot -> Host
        self.retired = []  # hosts stopped or killed, with their logs
        self.slots = {t: [f"{t[0]}{i}" for i in range(1, 5)] for t in ("internal", "public")}
        self.ports = {s: free_port() for t in self.slots.values() for s in t}
        self.pg_port = free_port()
        self.pg_proxy_port = free_port()
        self.kinesis_port = None
        self.kinesis_proxy_port = free_port()
        self.alb_port = free_port()
        self.nlb_port = free_port()
        self.haproxy_sock = self.dir / "haproxy.sock"
        self.pg_started = False

    # ---- processes -------------------------------------------------------

    def spawn(self, cmd, log, env=None, **kw):
        out = open(log, "ab")
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env=env, start_new_session=True, **kw
        )
        out.close()
        self.children.append(proc)
        return proc

    def close(self):
        """Stops everything started here: cinemo hosts, proxies, HAProxy,
        kinesalite (their process groups), then PostgreSQL."""
        for proc in self.children:
            if proc.poll() is None:
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
        for proc in self.children:
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        if self.pg_started:
            subprocess.run(
                ["runuser", "-u", "postgres", "--", str(self.pg_bin / "pg_ctl"), "-D",
                 str(self.pg_data), "-m", "immediate", "-w", "stop"],
                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )
            self.pg_started = False

    # ---- start-up --------------------------------------------------------

    def start(self):
        self.make_certificates()
        self.start_postgres()
        self.pg_proxy = self.start_proxy("pg-proxy", self.pg_proxy_port, self.pg_port)
        self.start_kinesalite()
        self.kinesis_proxy = self.start_proxy("kinesis-proxy", self.kinesis_proxy_port, self.kinesis_port)
        self.start_haproxy()
        for tier in ("internal", "public"):
            # The spare slots are empty targets the balancer checks and
            # finds down, until an instance starts in one.
            for slot in self.slots[tier][2:]:
                self.set_state(tier, slot, "ready")
                self.haproxy_cmd(f"set server {self.backend(tier)}/{slot} health down")
            for slot in self.slots[tier][:2]:
                self.launch(tier, slot)
            for slot in self.slots[tier][:2]:
                self.register(tier, slot)

    def make_certificates(self):
        """A private CA, the internal tier's server certificate for
        localhost and the public tier's client certificate, as the hosts
        get them from SSM (docs/security.md)."""
        d = self.dir / "tls"
        d.mkdir()

        def ossl(*args):
            run(["openssl", *args], cwd=d)

        ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "ca.key", "-out", "ca.crt", "-days", "2", "-subj", "/CN=cinemo drill CA")
        for name, usage, san in (("server", "serverAuth", "DNS:localhost"),
                                 ("client", "clientAuth", "DNS:cinemo-public")):
            ossl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
                 "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={san[4:]}")
            ext = d / f"{name}.ext"
            ext.write_text(f"subjectAltName={san}\nextendedKeyUsage={usage}\n")
            ossl("x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                 "-CAcreateserial", "-out", f"{name}.crt", "-days", "2", "-extfile", ext.name)
        # HAProxy's health checks present the client certificate (the
        # internal tier requires one on every connection).
        (d / "client.pem").write_bytes((d / "client.crt").read_bytes() + (d / "client.key").read_bytes())
        self.tls = d

    def start_postgres(self):
        data = self.pg_data
        data.mkdir(parents=True)
        # The postgres user must reach its cluster through the run's work
        # directory, which mkdtemp makes private to root.
        work = data.parent.parent
        work.chmod(work.stat().st_mode | 0o711)
        run(["chown", "-R", "postgres:postgres", str(data.parent)])
        run(["runuser", "-u", "postgres", "--", str(self.pg_bin / "initdb"), "-D", str(data),
             "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"])
        self.pg_ctl("start")
        self.pg_started = True

    def pg_ctl(self, *action):
        """pg_ctl with the cluster's options. `-l` keeps the server's output
        off this process's pipes (a restart would otherwise hold them)."""
        opts = f"-k {self.pg_data.parent} -p {self.pg_port} -c listen_addresses=127.0.0.1 -c max_connections=200"
        run(["runuser", "-u", "postgres", "--", str(self.pg_bin / "pg_ctl"), "-D", str(self.pg_data),
             "-l", str(self.pg_data.parent / "postgres.log"), "-w", "-t", "60", "-o", opts, *action])

    def start_proxy(self, name, listen, target):
        proc = self.spawn([sys.executable, str(HERE / "tcpproxy.py"), str(listen), str(target)],
                          self.dir / f"{name}.log")
        wait_until(f"{name} on :{listen}", lambda: port_open(listen), 10)
        return proc

    def start_kinesalite(self):
        port = free_port()
        script = (
            f"const s = require({json.dumps(str(Path(self.node_modules) / 'kinesalite'))})"
            "({createStreamMs: 50, shardLimit: 100});"
            f"s.listen({port}, '127.0.0.1', e => {{ if (e) throw e; console.log('listening') }})"
        )
        self.spawn(["node", "-e", script], self.dir / "kinesalite.log")
        wait_until("kinesalite", lambda: port_open(port), 20)
        self.kinesis_port = port
        kinesis(port, "CreateStream", {"StreamName": STREAM, "ShardCount": 2})
        wait_until("the stream to be active", lambda: kinesis(
            port, "DescribeStreamSummary", {"StreamName": STREAM}
        )["StreamDescriptionSummary"]["StreamStatus"] == "ACTIVE", 10)

    def haproxy_config(self):
        p = self.p
        tls = self.tls

        def servers(tier, extra):
            lines = []
            for i, slot in enumerate(self.slots[tier]):
                state = "" if i < 2 else " disabled"
                lines.append(f"    server {slot} 127.0.0.1:{self.ports[slot]} check{extra}{state}")
            return "\n".join(lines)

        return f"""
global
    maxconn 9000
    stats socket {self.haproxy_sock} mode 600 level admin
    log stdout format raw local0 notice

defaults
    log global
    option dontlognull
    timeout connect 2s
    # The ALB's idle timeout (60 s) on both sides; the NLB's TCP idle
    # timeout (350 s) for the passthrough connections.
    timeout client 60s
    timeout server 60s
    timeout http-keep-alive 60s
    timeout http-request 60s
    timeout tunnel 350s
    timeout check {ms(p.check_timeout)}

# The ALB: HTTP, round robin, never retries a request, X-Forwarded-For
# appended (the public tier trusts 127.0.0.1 as it trusts the VPC).
frontend alb
    mode http
    bind 127.0.0.1:{self.alb_port}
    maxconn 8000
    option forwardfor
    # Which host answered: the drills use it to explain lost diagnostics.
    http-response set-header X-Drill-Server %s
    default_backend public

backend public
    mode http
    balance roundrobin
    retries 0
    option httpchk GET /api/health/live
    http-check expect status 200
    default-server inter {ms(p.alb_interval)} fall {p.alb_unhealthy} rise {p.alb_healthy}
{servers("public", "")}

# The internal NLB: TCP passthrough (mutual TLS ends at cinemo), a random
# target per new connection as the NLB's flow hash picks one, no retry of
# a failed connection, HTTP health checks on /api/health/live.
frontend nlb
    mode tcp
    bind 127.0.0.1:{self.nlb_port}
    maxconn 1000
    default_backend internal

backend internal
    mode tcp
    balance random
    retries 0
    option httpchk GET /api/health/live
    http-check expect status 200
    default-server inter {ms(p.nlb_interval)} fall {p.nlb_unhealthy} rise {p.nlb_healthy}
{servers("internal", f" check-ssl verify none check-alpn http/1.1 crt {tls / 'client.pem'}")}
"""

    def start_haproxy(self):
        cfg = self.dir / "haproxy.cfg"
        cfg.write_text(self.haproxy_config())
        run(["haproxy", "-c", "-q", "-f", str(cfg)])
        self.haproxy = self.spawn(["haproxy", "-db", "-f", str(cfg)], self.dir / "haproxy.log")
        wait_until("HAProxy", lambda: port_open(self.alb_port) and self.haproxy_sock.exists(), 10)

    # ---- HAProxy runtime API (the target groups) -------------------------

    def haproxy_cmd(self, command):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(5)
            s.connect(str(self.haproxy_sock))
            s.sendall(command.encode() + b"\n")
            out = b""
            while chunk := s.recv(65536):
                out += chunk
        return out.decode()

    @staticmethod
    def backend(tier):
        return "public" if tier == "public" else "internal"

    def server_states(self, tier):
        """slot -> (operational state, admin state) from `show servers state`."""
        out = {}
        for line in self.haproxy_cmd(f"show servers state {self.backend(tier)}").splitlines():
            f = line.split()
            if len(f) > 6 and f[0].isdigit():
                out[f[3]] = (int(f[5]), int(f[6]))
        return out

    # srv_admin_state bits: forced, inherited, resolver and hostname
    # maintenance (0x63) and forced or inherited drain (0x18); 0x04 only
    # says the server was configured `disabled`.
    MAINT_OR_DRAIN = 0x63 | 0x18

    def up(self, tier, slot, states=None):
        """In service: health checks pass and it takes new traffic."""
        op, admin = (states or self.server_states(tier)).get(slot, (0, 1))
        return op == 2 and not admin & self.MAINT_OR_DRAIN

    def down(self, tier, slot):
        return self.server_states(tier).get(slot, (0, 0))[0] == 0

    def sessions(self, tier, slot):
        """Connections (TCP mode) or requests (HTTP mode) the balancer
        has open to this server now (`scur`)."""
        for line in self.haproxy_cmd("show stat").splitlines():
            f = line.split(",")
            if len(f) > 4 and f[0] == self.backend(tier) and f[1] == slot:
                return int(f[4] or 0)
        return 0

    def set_state(self, tier, slot, state):
        self.haproxy_cmd(f"set server {self.backend(tier)}/{slot} state {state}")

    # ---- cinemo hosts ----------------------------------------------------

    def host_env(self, tier, port):
        p, tls = self.p, self.tls
        env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            # The repository's configuration files as a host installs them
            # (/etc/cinemo), in the edge environment: rate limits, mutual
            # TLS required, the diagnostics stream.
            "CINEMO_CONFIG_DIR": str(ROOT / "config"),
            "CINEMO_ENV": "edge",
            # What the host role renders (ansible/roles/cinemo_host).
            "CINEMO__SHUTDOWN__TIMEOUT_SECS": str(p.shutdown_secs),
            "CINEMO__LOG__FORMAT": "json",
            "CINEMO__LOG__LEVEL": "info",
            # Access lines on, as on a host: at the drills' 150-200 req/s
            # they are a few hundred short writes a second into the log
            # file, well under 1% of a core (docs/performance.md).
            "CINEMO__LOG__ACCESS": "true",
            # No collector sidecar here.
            "CINEMO__OTLP__ENABLED": "false",
            "CINEMO__KINESIS__ENDPOINT": f"http://127.0.0.1:{self.kinesis_proxy_port}",
            "CINEMO__KINESIS__REGION": "eu-west-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_EC2_METADATA_DISABLED": "true",
        }
        if tier == "internal":
            env.update({
                "CINEMO__INTERNAL__LISTEN": f"127.0.0.1:{port}",
                "CINEMO__INTERNAL__TLS__CERT_FILE": str(tls / "server.crt"),
                "CINEMO__INTERNAL__TLS__KEY_FILE": str(tls / "server.key"),
                "CINEMO__INTERNAL__TLS__CLIENT_CA_FILE": str(tls / "ca.crt"),
                "CINEMO__STORAGE__TYPE": "postgres",
                "CINEMO__STORAGE__URL": f"postgres://postgres@127.0.0.1:{self.pg_proxy_port}/postgres",
            })
        else:
            env.update({
                "CINEMO__PUBLIC__LISTEN": f"127.0.0.1:{port}",
                "CINEMO__PUBLIC__INTERNAL_URL": f"https://localhost:{self.nlb_port}",
                "CINEMO__PUBLIC__INTERNAL_TLS__CERT_FILE": str(tls / "client.crt"),
                "CINEMO__PUBLIC__INTERNAL_TLS__KEY_FILE": str(tls / "client.key"),
                "CINEMO__PUBLIC__INTERNAL_TLS__CA_FILE": str(tls / "ca.crt"),
                "CINEMO__PUBLIC__INTERNAL_CONNECTION_MAX_AGE_SECS": str(p.max_age_secs),
                # The ALB's address, as production trusts the VPC.
                "CINEMO__PUBLIC__TRUSTED_PROXIES": "127.0.0.1/32",
            })
        env.update(p.extra_env)
        return env

    def launch(self, tier, slot):
        """Starts a host in `slot` and waits until it serves (systemd's
        READY=1: listeners bound, storage open)."""
        port = self.ports[slot]
        gen = sum(1 for h in self.retired if h.slot == slot) + 1
        log = self.dir / f"{slot}-{gen}.log"
        proc = self.spawn([str(self.bin), "--mode", tier], log, env=self.host_env(tier, port))
        host = Host(tier, slot, port, proc, log, time.monotonic())

        def ready():
            if proc.poll() is not None:
                raise RuntimeError(f"{host} exited with {proc.returncode} at start:\n{tail(log)}")
            return b"cinemo is ready" in log.read_bytes()

        wait_until(f"{host} to be ready", ready, 60)
        self.hosts[tier][slot] = host
        return host

    def register(self, tier, slot, timeout=120):
        """Waits until the balancer's health checks call the slot's new
        host healthy (the healthy threshold, as for a new target); returns
        the seconds since the host was started."""
        t0 = self.hosts[tier][slot].started
        wait_until(f"{tier} {slot} healthy at the balancer", lambda: self.up(tier, slot), timeout, 0.1)
        return time.monotonic() - t0

    def deregister(self, tier, slot):
        """Drains the slot as a target group deregisters a target: no new
        connections (NLB) or requests (ALB); the deregistration ends when
        nothing is open to the target any more, or after the delay.
        Returns the seconds it took."""
        t0 = time.monotonic()
        self.set_state(tier, slot, "drain")
        deadline = t0 + self.p.deregistration_delay
        while time.monotonic() < deadline and self.sessions(tier, slot) > 0 and not ABORT.is_set():
            time.sleep(0.1)
        return time.monotonic() - t0

    def terminate(self, tier, slot):
        """SIGTERM, as systemd stops the unit when the instance terminates;
        SIGKILL after the deadline plus systemd's margin. Returns the
        seconds until the process exited and its exit code."""
        host = self.hosts[tier].pop(slot)
        t0 = time.monotonic()
        host.proc.send_signal(signal.SIGTERM)
        try:
            code = host.proc.wait(timeout=self.p.shutdown_secs + 15)
        except subprocess.TimeoutExpired:
            host.proc.kill()
            code = host.proc.wait()
        host.stopped = time.monotonic()
        # The target is gone: an empty slot again, down until reused.
        self.haproxy_cmd(f"set server {self.backend(tier)}/{slot} health down")
        self.set_state(tier, slot, "ready")
        self.retired.append(host)
        return host.stopped - t0, code

    def kill(self, tier, slot):
        """SIGKILL: the process is gone at once, as in a crash."""
        host = self.hosts[tier].pop(slot)
        host.proc.kill()
        host.proc.wait()
        host.stopped = time.monotonic()
        host.killed = True
        self.retired.append(host)
        return host

    def killed_host_at(self, slot, t):
        """The host that served in `slot` at monotonic time `t`, if it was
        later killed (its buffered diagnostics died with it)."""
        for h in self.retired:
            if h.slot == slot and h.killed and h.started <= t <= h.stopped:
                return h
        return None

    def spare_slot(self, tier):
        """An empty slot the balancer sees as down, for a new host."""
        states = self.server_states(tier)
        for slot in self.slots[tier]:
            op, admin = states.get(slot, (2, 0))
            if slot not in self.hosts[tier] and op == 0 and not admin & self.MAINT_OR_DRAIN:
                return slot
        raise RuntimeError(f"no spare {tier} slot: {states}")

    def stop_all_hosts(self):
        """SIGTERM to every host (public first, as a scale-in would not,
        but so the internal tier's last frames include the public tier's
        final calls); returns nothing. Logs keep each sink's totals."""
        for tier in ("public", "internal"):
            for slot in list(self.hosts[tier]):
                self.set_state(tier, slot, "drain")
                self.terminate(tier, slot)

    # ---- faults ----------------------------------------------------------

    def cut(self, proxy):
        proxy.send_signal(signal.SIGUSR1)

    def heal(self, proxy):
        proxy.send_signal(signal.SIGUSR2)


def tail(path, lines=30):
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def kinesis(port, action, body):
    """One call to kinesalite's JSON API (it checks that a signature is
    present, not that it is valid)."""
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/", data=json.dumps(body).encode(), method="POST",
        headers={
            "Content-Type": "application/x-amz-json-1.1",
            "X-Amz-Target": f"Kinesis_20131202.{action}",
            "X-Amz-Date": time.strftime("%Y%m%dT%H%M%SZ", time.gmtime()),
            "Authorization": "AWS4-HMAC-SHA256 Credential=testing/20260101/eu-west-1/kinesis/aws4_request, "
                             "SignedHeaders=host;x-amz-date, Signature=00",
        },
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.loads(r.read() or b"{}")


def read_stream(port):
    """Every record in the stream, as decoded JSON frames."""
    import base64

    frames = []
    shards = kinesis(port, "ListShards", {"StreamName": STREAM})["Shards"]
    for shard in shards:
        it = kinesis(port, "GetShardIterator", {
            "StreamName": STREAM, "ShardId": shard["ShardId"], "ShardIteratorType": "TRIM_HORIZON",
        })["ShardIterator"]
        for _ in range(100000):
            out = kinesis(port, "GetRecords", {"ShardIterator": it, "Limit": 10000})
            for rec in out["Records"]:
                try:
                    frames.append(json.loads(base64.b64decode(rec["Data"])))
                except ValueError:
                    frames.append({"type": "unreadable"})
            it = out.get("NextShardIterator")
            if not out["Records"] or not it or out.get("MillisBehindLatest", 0) == 0 and not out["Records"]:
                break
    return frames
