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


def table_actions(principal, cross_account=False):
    """Every action of a principal's rows; the cross_account rows only with
    cross_account (the deployer where the source has an account of its own)."""
    groups = [principal]
    if cross_account:
        groups.append(principal["cross_account"])
    acts = set()
    for g in groups:
        for c in g.get("components", {}).values():
            acts |= set(c["actions"])
        for group in ("modules", "library"):
            if isinstance(g.get(group), dict):
                for a in g[group].values():
                    acts |= set(a)
    return acts


@pytest.mark.parametrize("policy,principal,cross_account", [
    ("tier_public", "tier_instance", False), ("tier_internal", "tier_instance", False),
    ("session_manager", "mongodb_instance", False), ("session_manager", "packer_instance", False),
    ("packer_builder", "packer_builder", False), ("deployer", "deployer", False),
    ("deployer_cross_account", "deployer", True), ("promote_source", "promote_source", False),
])
def test_policy_allows_exactly_the_table(rendered, table, policy, principal, cross_account):
    assert set(allowed(rendered[policy])) == table_actions(table[principal], cross_account)


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


# Actions that take no resource ARN (Service Authorization Reference): "*",
# narrowed by a condition key instead.
NO_RESOURCE_ARN = {"cloudwatch:PutMetricData"}


@pytest.mark.parametrize("policy", ["deployer", "deployer_cross_account", "promote_source"])
def test_pipeline_writes_are_scoped(rendered, policy):
    for action, stmts in allowed(rendered[policy]).items():
        for s in stmts:
            if s["Resource"] == "*":
                if action in NO_RESOURCE_ARN:
                    assert s.get("Condition"), f"{action} on every resource without a condition"
                else:
                    assert re.match(r"^[a-z0-9]+:(Describe|Get|List)", action), f"{action} on every resource"


def test_deploy_heartbeat_only_in_its_namespace(rendered):
    import yaml

    (s,) = allowed(rendered["deployer"])["cloudwatch:PutMetricData"]
    rollout = yaml.safe_load((ANSIBLE / "roles/rollout/defaults/main.yml").read_text())
    iam = yaml.safe_load((ANSIBLE / "roles/iam/defaults/main.yml").read_text())
    assert rollout["rollout_heartbeat"]["namespace"] == iam["iam_deploy_heartbeat_namespace"] == "Cinemo/Deploy"
    assert s["Condition"] == {"StringEquals": {"cloudwatch:namespace": "Cinemo/Deploy"}}


def test_cross_account_promote_only_where_the_source_has_its_own_account(rendered):
    """Stable's deployer assumes edge's promote role, by name, in edge's
    account, and lets EC2 use edge's keys there for the copy; a deployer
    whose source is in its own account gets neither."""
    same = allowed(rendered["deployer"])
    assert not {a for a in same if a.startswith(("sts:", "kms:"))}
    cross = allowed(rendered["deployer_cross_account"])
    (assume,) = cross["sts:AssumeRole"]
    assert assume["Resource"] == "arn:aws:iam::210987654321:role/cinemo-edge-promote-source"
    for action in ("kms:Decrypt", "kms:CreateGrant", "kms:ReEncryptFrom"):
        (s,) = cross[action]
        assert s["Resource"] == "arn:aws:kms:eu-central-1:210987654321:key/*"
        assert s["Condition"]["StringEquals"] == {"kms:ViaService": ["ec2.eu-central-1.amazonaws.com"]}
    assert cross["kms:CreateGrant"][0]["Condition"]["Bool"] == {"kms:GrantIsForAWSResource": "true"}


def test_promote_role_names_agree():
    """The role the deployer may assume is the one promote.yml assumes and
    ami_sharing creates (for edge), and its region is edge's."""
    import yaml

    iam = yaml.safe_load((ANSIBLE / "roles/iam/defaults/main.yml").read_text())
    promote = yaml.safe_load((ANSIBLE / "roles/promote/defaults/main.yml").read_text())
    sharing = yaml.safe_load((ANSIBLE / "roles/ami_sharing/defaults/main.yml").read_text())
    assert promote["promote_source_env"] == "edge"
    assert promote["promote_source_role_name"] == "cinemo-{{ promote_source_env }}-promote-source"
    assert sharing["ami_sharing_role_name"] == "{{ cinemo_prefix }}-promote-source"
    assert iam["iam_promote_source_role"] == "cinemo-edge-promote-source"
    region = {env: yaml.safe_load((ANSIBLE / f"inventories/{env}/group_vars/all/main.yml").read_text())["aws_region"]
              for env in ("edge", "stable")}
    assert iam["iam_promote_source_region"] == "{{ aws_region }}" and region["edge"] == region["stable"], (
        "edge moved region: set iam_promote_source_region in inventories/stable")


def test_promote_source_role_uses_only_the_shareable_key_and_this_accounts_keys_via_ec2(rendered):
    acts = allowed(rendered["promote_source"])
    (read,) = acts["kms:GetKeyPolicy"]
    assert read["Resource"] == "arn:aws:kms:eu-central-1:123456789012:key/5a4e0c1d-0000-4000-8000-000000000000"
    for action in ("kms:Decrypt", "kms:ReEncryptTo", "kms:CreateGrant"):
        (s,) = acts[action]
        assert s["Resource"] == "arn:aws:kms:eu-central-1:123456789012:key/*"
        assert s["Condition"]["StringEquals"] == {"kms:ViaService": "ec2.eu-central-1.amazonaws.com"}


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


def module_calls(node, role=None):
    """(module, its arguments) for every task in a parsed playbook or task file,
    blocks included: collection modules, and our own modules of `role`."""
    if isinstance(node, list):
        for n in node:
            yield from module_calls(n, role)
    elif isinstance(node, dict):
        for key, value in node.items():
            if MODULE.fullmatch(f"{key}:"):
                yield key, value
            elif role and OWN_MODULE.fullmatch(f"{key}:") and (ANSIBLE / "roles" / role / "library" / f"{key}.py").exists():
                yield key, value
            else:
                yield from module_calls(value, role)


SOURCE_AUTH = "promote_source_auth"


def modules_used(playbooks, credentials=None):
    """Collection modules and our own modules the playbooks (and their roles)
    call with the play's own credentials, or with credentials=SOURCE_AUTH the
    ones called with the promote source role's. A task passing
    `promote_source_auth.* | default(omit)` runs with either: the source's
    when it has an account of its own, the play's when it has not."""
    import yaml

    mods, own = set(), set()

    def add(name, args, is_own):
        creds = str(args.get("access_key", "")) if isinstance(args, dict) else ""
        assert (SOURCE_AUTH in creds) == (SOURCE_AUTH in str(args)), f"{name}: source credentials without access_key"
        mine = (SOURCE_AUTH in creds) if credentials == SOURCE_AUTH else (
            SOURCE_AUTH not in creds or "default(omit)" in creds)
        if mine:
            (own if is_own else mods).add(name)

    for pb in playbooks:
        for name, args in module_calls(yaml.safe_load((ANSIBLE / pb).read_text())):
            add(name, args, False)
        for role in roles_of(pb):
            for f in (ANSIBLE / "roles" / role / "tasks").glob("*.yml"):
                for name, args in module_calls(yaml.safe_load(f.read_text()), role):
                    add(name, args, not name.startswith(("amazon.aws.", "community.aws.")))
    return mods, own


def listed_modules(p):
    mods = p["modules"]
    listed = set(mods) if isinstance(mods, list) else set(mods)
    return listed | set(p.get("cross_account", {}).get("modules", {}))


# IAM's service prefix where it is not boto3's client name.
IAM_PREFIX = {"elbv2": "elasticloadbalancing"}


def boto3_calls(path):
    """What a module of ours calls on the boto3 clients it makes, as IAM
    actions: every `.op` (called, or taken as a method to call later) and
    get_paginator("op") whose name is an operation of one of those services
    (botocore's own service models)."""
    import botocore.session
    from botocore import xform_name

    text = path.read_text()
    services = set(re.findall(r"(?:module|boto3)\.client\(\s*[\"']([a-z0-9-]+)[\"']", text))
    called = set(re.findall(r"\.([a-z][a-z0-9_]+)\b", text))
    called |= set(re.findall(r"get_paginator\(\s*[\"']([a-z_]+)[\"']", text))
    session = botocore.session.get_session()
    out = set()
    for service in services:
        ops = {xform_name(op): op for op in session.get_service_model(service).operation_names}
        out |= {f"{IAM_PREFIX.get(service, service)}:{ops[c]}" for c in called if c in ops}
    return out


@pytest.mark.parametrize("principal,credentials", [
    ("deployer", None), ("promote_source", SOURCE_AUTH), ("operator", None)])
def test_every_module_the_playbooks_use_is_in_the_table(table, principal, credentials):
    p = table[principal]
    mods, own = modules_used(p["playbooks"], credentials)
    listed = listed_modules(p)
    assert mods - listed == set(), f"modules {principal}'s playbooks use that the table lacks"
    assert listed - mods == set(), f"modules in the table that {principal}'s playbooks no longer use"
    assert own == set(p["library"]), f"our own modules {principal}'s playbooks use"


@pytest.mark.parametrize("principal", ["deployer", "promote_source", "operator"])
def test_our_modules_boto3_calls_are_in_the_table(table, principal):
    for name, actions in table[principal]["library"].items():
        (path,) = (ANSIBLE / "roles").glob(f"*/library/{name}.py")
        # IAM action names are case-insensitive (OpenIdConnect / OpenIDConnect).
        assert {c.lower() for c in boto3_calls(path)} == {a.lower() for a in actions}, name


def test_boto3_calls_are_read_off_every_client():
    """The call finder sees calls on any variable and through paginators:
    the teardown module's Route 53, SSM and KMS clients included."""
    calls = boto3_calls(ANSIBLE / "roles/teardown/library/cinemo_teardown.py")
    assert {"route53:ChangeResourceRecordSets", "ssm:DeleteParameters", "kms:ScheduleKeyDeletion",
            "elasticloadbalancing:DeleteLoadBalancer", "cloudwatch:DeleteDashboards"} <= calls, calls


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


def test_destroy_deletes_every_role_of_the_environment():
    """Every IAM role provision.yml makes per environment (the iam role's
    tier, MongoDB and deployer roles, ami_sharing's promote role) is one
    destroy.yml deletes; the account-wide Packer roles are not."""
    import yaml

    (task,) = [t for t in yaml.safe_load((ANSIBLE / "roles/teardown/tasks/main.yml").read_text())
               if t.get("amazon.aws.iam_role", {}).get("state") == "absent"]
    loop = task["loop"]
    assert "iam_role_names.values()" in loop
    iam = yaml.safe_load((ANSIBLE / "roles/iam/defaults/main.yml").read_text())
    sharing = yaml.safe_load((ANSIBLE / "roles/ami_sharing/defaults/main.yml").read_text())
    for name in (iam["iam_deployer_role"], sharing["ami_sharing_role_name"]):
        suffix = name.replace("{{ cinemo_prefix }}", "")
        assert f"cinemo_prefix ~ '{suffix}'" in loop, f"destroy.yml leaves {name}"
    for shared in (iam["iam_packer_build_role"], iam["iam_packer_builder_role"]):
        assert shared not in loop
