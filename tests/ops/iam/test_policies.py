"""The IAM policies allow exactly what ansible/roles/iam/files/aws-actions.yml
lists, per principal, and that table matches the code where code can say.

Policies are rendered by Ansible itself (render.yml, the edge inventory's
names). Module-to-action rows for the amazon.aws / community.aws modules are
the table's word (read off each module's source); the test keeps the set of
modules honest, so a new module in a playbook fails here until it is mapped.
"""
import pathlib
import re

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]
ANSIBLE = REPO / "ansible"
MODULE = re.compile(r"^\s*-?\s*((?:amazon\.aws|community\.aws)\.[a-z0-9_]+)\s*:", re.M)
OWN_MODULE = re.compile(r"^\s*-?\s*(cinemo_[a-z0-9_]+)\s*:", re.M)


def allowed(policy):
    """{action: [statement, ...]} of a policy's Allow statements."""
    out = {}
    for s in policy["Statement"]:
        assert s["Effect"] == "Allow", s
        actions = [s["Action"]] if isinstance(s["Action"], str) else s["Action"]
        for a in actions:
            assert "*" not in a, f"wildcard action {a}"
            out.setdefault(a, []).append(s)
    return out


def table_actions(principal):
    acts = set()
    for c in principal.get("components", {}).values():
        acts |= set(c["actions"])
    for group in ("modules", "library"):
        if isinstance(principal.get(group), dict):
            for a in principal[group].values():
                acts |= set(a)
    return acts


@pytest.mark.parametrize("policy,principal", [
    ("tier_public", "tier_instance"), ("tier_internal", "tier_instance"),
    ("session_manager", "mongodb_instance"), ("session_manager", "packer_instance"),
    ("packer_builder", "packer_builder"), ("deployer", "deployer"),
])
def test_policy_allows_exactly_the_table(rendered, table, policy, principal):
    assert set(allowed(rendered[policy])) == table_actions(table[principal])


def test_the_collector_may_describe_its_stream_and_send_traces(rendered):
    """awskinesis calls DescribeStream at start and aborts without it; awsxray
    sends segments. Both were missing once."""
    acts = allowed(rendered["tier_internal"])
    (describe,) = acts["kinesis:DescribeStream"]
    assert describe["Resource"] == "arn:aws:kinesis:eu-central-1:123456789012:stream/cinemo-edge-metrics"
    (xray,) = acts["xray:PutTraceSegments"]
    assert xray["Resource"] == "*", "X-Ray segments take no resource ARN"


def test_each_tier_reads_only_its_own_parameters(rendered):
    for mode in ("public", "internal"):
        (s,) = allowed(rendered[f"tier_{mode}"])["ssm:GetParametersByPath"]
        assert s["Resource"] == [f"arn:aws:ssm:eu-central-1:123456789012:parameter/cinemo/edge/{mode}",
                                 f"arn:aws:ssm:eu-central-1:123456789012:parameter/cinemo/edge/{mode}/*"]


def test_pipeline_roles_pass_only_their_own_roles(rendered):
    (p,) = allowed(rendered["packer_builder"])["iam:PassRole"]
    assert p["Resource"] == "arn:aws:iam::123456789012:role/cinemo-packer-build"
    assert p["Condition"] == {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}}
    (d,) = allowed(rendered["deployer"])["iam:PassRole"]
    assert d["Resource"] == ["arn:aws:iam::123456789012:role/cinemo-edge-public",
                             "arn:aws:iam::123456789012:role/cinemo-edge-internal"]
    iam = {a for a in allowed(rendered["deployer"]) if a.startswith("iam:")}
    assert iam == {"iam:PassRole", "iam:GetRolePolicy", "iam:ListRolePolicies"}, "it reads policies, writes none"


def test_deployer_writes_are_scoped(rendered):
    for action, stmts in allowed(rendered["deployer"]).items():
        for s in stmts:
            if s["Resource"] == "*":
                assert re.match(r"^[a-z0-9]+:(Describe|Get|List)", action), f"{action} on every resource"


def test_oidc_trust_is_this_repository_and_environment_only(rendered):
    (s,) = rendered["trust_deployer"]["Statement"]
    assert s["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert s["Principal"] == {"Federated": "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"}
    assert s["Condition"] == {"StringEquals": {
        "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
        "token.actions.githubusercontent.com:sub": ["repo:example/cinemo:environment:edge"]}}


# ---- the table against the code ------------------------------------------------------------


def roles_of(playbook):
    """Roles a playbook runs, with the roles those include."""
    text = (ANSIBLE / playbook).read_text()
    todo = re.findall(r"^\s*-\s*role:\s*([a-z_]+)", text, re.M)
    seen = set()
    while todo:
        role = todo.pop()
        if role in seen:
            continue
        seen.add(role)
        for f in (ANSIBLE / "roles" / role / "tasks").glob("*.yml"):
            todo += re.findall(r"^\s*name:\s*([a-z_]+)\s*$", "\n".join(
                m for m in re.findall(r"include_role:\s*\n((?:\s+\w+:.*\n)+)", f.read_text())), re.M)
    return seen


def modules_used(playbooks):
    mods, own = set(), set()
    for pb in playbooks:
        mods |= set(MODULE.findall((ANSIBLE / pb).read_text()))
        for role in roles_of(pb):
            for f in (ANSIBLE / "roles" / role / "tasks").glob("*.yml"):
                text = f.read_text()
                mods |= set(MODULE.findall(text))
                own |= {m for m in OWN_MODULE.findall(text)
                        if (ANSIBLE / "roles" / role / "library" / f"{m}.py").exists()}
    return mods, own


def pascal(op):
    return "".join(w.capitalize() for w in op.split("_"))


def boto3_calls(path):
    """Operations a module of ours calls on its boto3 clients, as IAM action names."""
    text = path.read_text()
    ops = set(re.findall(r"\b(?:\w*client|asg|ec2)\.([a-z][a-z0-9_]+)\b", text))
    ops |= set(re.findall(r"get_paginator\(\s*[\"']([a-z_]+)[\"']", text))
    ops -= {"exceptions", "meta", "get_paginator", "get_waiter", "can_paginate"}
    return {pascal(op) for op in ops}


@pytest.mark.parametrize("principal", ["deployer", "operator"])
def test_every_module_the_playbooks_use_is_in_the_table(table, principal):
    p = table[principal]
    mods, own = modules_used(p["playbooks"])
    listed = set(p["modules"]) if isinstance(p["modules"], list) else set(p["modules"])
    assert mods - listed == set(), f"modules {principal}'s playbooks use that the table lacks"
    assert listed - mods == set(), f"modules in the table that {principal}'s playbooks no longer use"
    assert own == set(p["library"]), f"our own modules {principal}'s playbooks use"


@pytest.mark.parametrize("principal", ["deployer", "operator"])
def test_our_modules_boto3_calls_are_in_the_table(table, principal):
    for name, actions in table[principal]["library"].items():
        (path,) = (ANSIBLE / "roles").glob(f"*/library/{name}.py")
        # IAM action names are case-insensitive (OpenIdConnect / OpenIDConnect).
        listed = {a.split(":", 1)[1].lower() for a in actions}
        assert {c.lower() for c in boto3_calls(path)} == listed, name


def test_cinemo_kinesis_calls_are_in_the_table(table):
    """The sink (on the tiers' hosts) only writes; `cinemo diagnostics` (run
    by people with their own credentials) only reads; nothing else calls
    Kinesis."""
    calls = {}
    for f in (REPO / "src").rglob("*.rs"):
        found = set(re.findall(r"\.(put_records?|describe_stream\w*|list_shards|get_records|get_shard_iterator|"
                               r"create_stream|register_stream_consumer|subscribe_to_shard)\(\)", f.read_text()))
        if found:
            calls.setdefault(f.relative_to(REPO / "src").parts[0], set()).update(found)
    assert calls == {
        "telemetry": {"put_records"},
        "diagnostics_reader": {"list_shards", "get_shard_iterator", "get_records"},
    }, calls
    assert table["tier_instance"]["components"]["cinemo_kinesis_sink"]["actions"] == ["kinesis:PutRecords"]
    assert table["diagnostics_reader"]["components"]["cinemo_diagnostics"]["actions"] == [
        "kinesis:ListShards", "kinesis:GetShardIterator", "kinesis:GetRecords"]


def test_bootstrap_calls_are_in_the_table(table):
    text = (ANSIBLE / "roles/cinemo_host/files/cinemo-bootstrap").read_text()
    assert re.findall(r'get_paginator\("([a-z_]+)"\)', text) == ["get_parameters_by_path"]
    assert "WithDecryption=True" in text
    assert set(table["tier_instance"]["components"]["cinemo_bootstrap"]["actions"]) == {
        "ssm:GetParametersByPath", "kms:Decrypt"}


def test_collector_exporters_in_config_are_in_the_table(table):
    import yaml

    config = yaml.safe_load((ANSIBLE / "roles/otel_collector/files/config.yaml").read_text())
    used = {e.split("/")[0] for p in config["service"]["pipelines"].values() for e in p["exporters"]}
    assert {f"collector_{e}" for e in used} <= set(table["tier_instance"]["components"]), used
    assert "telemetry" not in config["exporters"]["awsxray"], "PutTelemetryRecords would be needed"
    assert "log_retention" not in config["exporters"]["awsemf"], "logs:PutRetentionPolicy would be needed"
    assert "tags" not in config["processors"]["resourcedetection"], "ec2:DescribeTags would be needed"
