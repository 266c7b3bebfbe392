"""The database role against moto, run after run as an operator runs
provision.yml: RDS reports the full minor version it runs, so a second run
must change nothing and send no engine version; a new master password in the
vault must reach RDS (and only then the database URL the hosts read)."""

import pytest

from stack_helpers import client, play, recap

ENV = "dev"
REGION = "eu-west-1"
OLD, NEW = "first-password-0123456789", "second-password-9876543210"


@pytest.fixture(scope="module")
def network(moto):
    ec2 = client(moto, "ec2", REGION)
    vpc = ec2.create_vpc(CidrBlock="10.10.0.0/16")["Vpc"]["VpcId"]
    data = [ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.10.4{i}.0/24", AvailabilityZone=f"{REGION}{az}")
            ["Subnet"]["SubnetId"] for i, az in enumerate("ab")]
    sg = ec2.create_security_group(GroupName="cinemo-dev-database", Description="db", VpcId=vpc)["GroupId"]
    return {"network_subnet_ids": {"data": data}, "security_groups_ids": {"database": sg},
            "load_balancers_internal_dns_name": "internal.dev.cinemo.internal", "load_balancers_public_keep_alive": 180,
            "ssm_parameters_internal_tls": False,
            "ssm_parameters_secrets": []}


def run(moto, network, tmp_path, password):
    return play(moto, ENV, "database.yml", {**network, "database_rds_master_password": password}, tmp_path)


def rds_engine_version(moto):
    return client(moto, "rds", REGION).describe_db_instances(DBInstanceIdentifier="cinemo-dev")["DBInstances"][0]["EngineVersion"]


def storage_url(moto):
    return client(moto, "ssm", REGION).get_parameter(
        Name="/cinemo/dev/internal/env/CINEMO__STORAGE__URL", WithDecryption=True)["Parameter"]["Value"]


def test_the_first_run_creates_the_instance_with_the_major_version(moto, network, tmp_path):
    run(moto, network, tmp_path, OLD)
    created = moto.find("CreateDBInstance")
    assert len(created) == 1 and created[0]["EngineVersion"] == "16"
    assert created[0]["MasterUserPassword"] == OLD
    assert f":{OLD}@" in storage_url(moto)


def test_a_second_run_sends_no_engine_version_and_changes_nothing(moto, network, tmp_path):
    # What RDS reports after creating "16": the minor it picked.
    rds = client(moto, "rds", REGION)
    rds.modify_db_instance(DBInstanceIdentifier="cinemo-dev", EngineVersion="16.4", ApplyImmediately=True)
    assert rds_engine_version(moto) == "16.4"
    moto.clear()
    done = run(moto, network, tmp_path, OLD)
    assert recap(done.stdout)["changed"] == 0, done.stdout[-3000:]
    assert moto.find("ModifyDBInstance") == []
    assert rds_engine_version(moto) == "16.4"


def test_a_new_vault_password_reaches_rds_then_the_url(moto, network, tmp_path):
    moto.clear()
    done = run(moto, network, tmp_path, NEW)
    modified = moto.find("ModifyDBInstance")
    assert [m.get("MasterUserPassword") for m in modified] == [NEW], modified
    assert "EngineVersion" not in modified[0]
    actions = moto.actions()
    assert actions.index("ModifyDBInstance") < max(i for i, a in enumerate(actions) if a == "PutParameter")
    assert f":{NEW}@" in storage_url(moto)
    assert NEW not in done.stdout, "the password was printed"
    moto.clear()
    again = run(moto, network, tmp_path, NEW)
    assert recap(again.stdout)["changed"] == 0
    assert moto.find("ModifyDBInstance") == []


def test_a_major_version_change_is_refused_with_the_way_to_do_it(moto, network, tmp_path):
    done = play(moto, ENV, "database.yml", {**network, "database_rds_master_password": NEW,
                                            "database_rds_engine_version": "17"}, tmp_path, check=False)
    assert done.returncode != 0
    assert "runs PostgreSQL 16.4" in done.stdout and "--allow-major-version-upgrade" in done.stdout
