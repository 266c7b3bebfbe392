"""Every timeout on a request's path, read from where it is really set, and
checked in the order that keeps them from disagreeing (docs/architecture.md,
"Timeouts"): cinemo's settings (built-in defaults from src/settings/model.rs,
then config/default.toml, then config/<env>.toml, then what provision.yml
publishes through SSM), the load balancers (role defaults and inventory, as
Ansible evaluates them), systemd (the drop-in the bake renders).

A client waiting on a batch must not get a 504 from the ALB while the batch
commits, nor a host be killed or deregistered while it still answers one."""

import json
import re
import tomllib

import pytest

from stack_helpers import ROOT, play

# AWS's fixed TCP idle timeout of a Network Load Balancer listener
# (docs.aws.amazon.com/elasticloadbalancing/latest/network/network-load-balancers.html#connection-idle-timeout).
NLB_TCP_IDLE_SECS = 350
SECTIONS = {"Public": "public", "Internal": "internal", "Http": "http", "Storage": "storage",
            "Batch": "batch", "Shutdown": "shutdown"}


def code_defaults():
    """The built-in defaults: the literal fields of each `impl Default for XSettings`."""
    text = (ROOT / "src" / "settings" / "model.rs").read_text()
    out = {}
    for struct, body in re.findall(r"impl Default for (\w+)Settings \{(.*?)\n\}", text, re.S):
        if struct in SECTIONS:
            fields = re.findall(r"^\s+(\w+): ([\d_]+),$", body, re.M)
            out[SECTIONS[struct]] = {k: int(v.replace("_", "")) for k, v in fields}
    return out


def layered(env):
    cfg = code_defaults()
    for name in ("default.toml", f"{env}.toml"):
        path = ROOT / "config" / name
        if path.exists():
            for section, values in tomllib.loads(path.read_text()).items():
                if isinstance(values, dict):
                    cfg.setdefault(section, {}).update({k: v for k, v in values.items() if not isinstance(v, dict)})
    return cfg


def rust_const(path, name):
    return int(re.search(rf"const {name}: Duration = Duration::from_secs\((\d+)\)", (ROOT / path).read_text()).group(1))


def test_the_built_in_defaults_are_the_ones_default_toml_documents():
    code, documented = code_defaults(), tomllib.loads((ROOT / "config" / "default.toml").read_text())
    for section, fields in code.items():
        for key, value in fields.items():
            if key in documented.get(section, {}):
                assert documented[section][key] == value, f"{section}.{key}: code {value}, default.toml {documented[section][key]}"


@pytest.fixture(scope="module", params=["edge", "stable"])
def path(request, tmp_path_factory):
    env = request.param
    out = tmp_path_factory.mktemp(env)
    play(None, env, "timeouts.yml", {"out_dir": str(out), "cinemo_host_config_src_dir": str(ROOT / "config")}, out)
    stack = json.loads((out / "values.json").read_text())
    dropin = (out / "10-shutdown.conf").read_text()
    stop = int(re.search(r"^TimeoutStopSec=(\d+)s$", dropin, re.M).group(1))
    cfg = layered(env)
    # an Environment= line in the drop-in beats every configuration file
    for key, value in re.findall(r"^Environment=CINEMO__([A-Z_]+)=(\d+)$", dropin, re.M):
        section, name = key.lower().split("__", 1)
        cfg.setdefault(section, {})[name] = int(value)
    # what provision.yml publishes to the public tier (ssm_parameters role), if anything
    cfg["http"]["keep_alive_secs_public"] = int(stack["public_keep_alive_secs"] or cfg["http"]["keep_alive_secs"])
    return {"env": env, "cfg": cfg, "stack": stack, "stop": stop}


def test_a_normal_request_times_out_inside_out(path):
    c = path["cfg"]
    smoke = int(re.search(r"default_value_t = (\d+)\)\]\s+timeout_secs", (ROOT / "src" / "cli.rs").read_text()).group(1))
    # storage answers 504 before the public tier gives up on the internal tier,
    # and that before a client such as `cinemo smoke` gives up on the public tier
    assert c["storage"]["timeout_ms"] < c["public"]["internal_timeout_ms"] < smoke * 1000


def test_the_longest_request_fits_every_timeout_around_it(path):
    c, s = path["cfg"], path["stack"]
    assert c["storage"]["batch_timeout_ms"] < c["batch"]["internal_timeout_ms"]
    # a batch: its body arrives, then the public tier waits for the internal tier
    longest_request_secs = (c["http"]["request_body_timeout_ms"] + c["batch"]["internal_timeout_ms"]) / 1000
    assert longest_request_secs <= s["longest_batch_import_secs"]
    # nothing moves on the client's connection while a batch commits: the ALB must wait longer
    assert s["longest_batch_import_secs"] < s["alb_idle_timeout_secs"]
    # the internal tier's side of a batch stays inside the NLB's idle timeout
    assert c["batch"]["internal_timeout_ms"] / 1000 < NLB_TCP_IDLE_SECS


def test_idle_connections_are_closed_by_the_side_that_opened_them(path):
    c, s = path["cfg"], path["stack"]
    # ALB -> public tier: the ALB closes first (AWS: target keep-alive above the idle timeout)
    assert s["alb_idle_timeout_secs"] < c["http"]["keep_alive_secs_public"]
    # public tier -> NLB -> internal tier: the public tier's pool closes first,
    # and every connection ends before the NLB would drop it silently
    h1_idle = rust_const("src/internal_client/pool.rs", "H1_IDLE_TIMEOUT")
    assert h1_idle < c["http"]["keep_alive_secs"] < NLB_TCP_IDLE_SECS
    assert c["public"]["internal_connection_max_age_secs"] < NLB_TCP_IDLE_SECS


def test_a_leaving_host_finishes_the_longest_request(path):
    c, s = path["cfg"], path["stack"]
    assert s["longest_batch_import_secs"] <= s["deregistration_delay_secs"]
    assert s["longest_batch_import_secs"] <= c["shutdown"]["timeout_secs"]
    assert c["public"]["internal_connection_max_age_secs"] < c["shutdown"]["timeout_secs"]
    # systemd kills only after cinemo's own deadline
    assert c["shutdown"]["timeout_secs"] < path["stop"]
