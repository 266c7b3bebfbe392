"""The Packer template, parsed (python-hcl2 v8) and asserted attribute by attribute.

python-hcl2 v8 keeps the quotes of string literals ('"required"') and marks
blocks with `__is_block__`; `lit()` undoes the quoting so the assertions
compare values, not substrings of the file.
"""
import hcl2
import pytest

ARCHES = {"x86_64": ("x86_64", "debian-12-amd64-*"), "arm64": ("arm64", "debian-12-arm64-*")}


def lit(value):
    if isinstance(value, str) and len(value) >= 2 and value[0] == value[-1] == '"':
        return value[1:-1]
    return value


def unquote_keys(d):
    return {lit(k): v for k, v in d.items() if k != "__is_block__"}


@pytest.fixture(scope="module")
def template(repo):
    with open(repo / "packer" / "cinemo.pkr.hcl") as f:
        return hcl2.load(f)


@pytest.fixture(scope="module")
def variables(template):
    out = {}
    for v in template["variable"]:
        out.update(unquote_keys(v))
    return out


@pytest.fixture(scope="module")
def sources(template):
    out = {}
    for s in template["source"]:
        for kind, named in unquote_keys(s).items():
            for name, body in unquote_keys(named).items():
                out[(kind, name)] = body
    return out


@pytest.fixture(scope="module")
def build(template):
    (b,) = template["build"]
    return b


def test_required_plugins_pin_amazon_and_ansible(template):
    (packer,) = template["packer"]
    (plugins,) = packer["required_plugins"]
    assert lit(plugins["amazon"]["source"]) == "github.com/hashicorp/amazon"
    assert lit(plugins["ansible"]["source"]) == "github.com/hashicorp/ansible"


def test_one_amazon_ebs_source_per_architecture(sources):
    assert set(sources) == {("amazon-ebs", a) for a in ARCHES}


@pytest.mark.parametrize("arch", ARCHES)
def test_source_ami_is_pinned_debian_12_for_the_arch(arch, sources, variables):
    src = sources[("amazon-ebs", arch)]
    (flt,) = src["source_ami_filter"]
    assert flt["most_recent"] is True
    assert flt["owners"] == ["${var.source_ami_owner}"]
    assert lit(variables["source_ami_owner"]["default"]) == "136693071363"
    filters = flt["filters"]
    assert lit(filters["architecture"]) == ARCHES[arch][0]
    assert lit(filters["virtualization-type"]) == "hvm"
    name_var = filters["name"]
    assert name_var == f"${{var.source_ami_name_{arch}}}"
    assert lit(variables[f"source_ami_name_{arch}"]["default"]) == ARCHES[arch][1]


@pytest.mark.parametrize("arch", ARCHES)
def test_imdsv2_is_required(arch, sources):
    (md,) = sources[("amazon-ebs", arch)]["metadata_options"]
    assert lit(md["http_tokens"]) == "required"
    assert lit(md["http_endpoint"]) == "enabled"
    assert md["http_put_response_hop_limit"] == 1


@pytest.mark.parametrize("arch", ARCHES)
def test_every_block_device_and_the_ami_are_encrypted(arch, sources):
    src = sources[("amazon-ebs", arch)]
    devices = src["launch_block_device_mappings"]
    assert devices, "no root volume mapping"
    for dev in devices:
        assert dev["encrypted"] is True
        assert dev["delete_on_termination"] is True
    assert src["encrypt_boot"] is True
    for dev in src.get("ami_block_device_mappings", []):
        assert dev["encrypted"] is True


@pytest.mark.parametrize("arch", ARCHES)
def test_build_reaches_the_instance_without_open_ssh(arch, sources, template):
    src = sources[("amazon-ebs", arch)]
    assert src["ssh_interface"] == "${local.ssh_interface}"
    (locals_,) = template["locals"]
    assert '"session_manager"' in locals_["ssh_interface"]  # the ssh branch of the conditional
    assert lit(src["iam_instance_profile"]) == "${var.iam_instance_profile}"
    assert src["associate_public_ip_address"] is False
    cidrs = [lit(c) for c in src["temporary_security_group_source_cidrs"]]
    assert "0.0.0.0/0" not in cidrs and cidrs == ["127.0.0.1/32"]


@pytest.mark.parametrize("arch", ARCHES)
def test_ami_and_snapshots_carry_version_sha_and_channel(arch, sources):
    src = sources[("amazon-ebs", arch)]
    for key in ("tags", "snapshot_tags"):
        tags = src[key]
        assert tags["version"] == "${var.version}"
        assert tags["git_sha"] == "${var.git_sha}"
        assert tags["channel"] == "${var.channel}"
        assert lit(tags["arch"]) == arch


def test_channel_is_validated_to_edge_or_stable(variables):
    (rule,) = variables["channel"]["validation"]
    assert rule["condition"] == '${var.channel == "edge" || var.channel == "stable"}'


def test_moto_bake_knobs_exist(variables, sources):
    for name in ("aws_endpoint_url", "skip_region_validation", "communicator", "region", "version",
                 "git_sha", "channel", "binary_x86_64", "binary_arm64"):
        assert name in variables, name
    for src in sources.values():
        assert src["custom_endpoint_ec2"] == "${var.aws_endpoint_url}"
        assert src["skip_region_validation"] == "${var.skip_region_validation}"
        assert src["communicator"] == "${var.communicator}"


def test_build_applies_host_yml_with_each_arch_binary_then_smoke_checks(build):
    assert [lit(s) for s in build["sources"]] == ["source.amazon-ebs.x86_64", "source.amazon-ebs.arm64"]
    provs = [(lit(k), v) for p in build["provisioner"] for k, v in p.items()]
    ansible = [v for k, v in provs if k == "ansible"]
    assert len(ansible) == 2
    by_arch = {lit(v["only"][0]): v for v in ansible}
    for arch in ARCHES:
        p = by_arch[f"amazon-ebs.{arch}"]
        assert lit(p["playbook_file"]).endswith("/ansible/host.yml")
        assert f"cinemo_binary_src=${{var.binary_{arch}}}" in [lit(a) for a in p["extra_arguments"]]
    kinds = [k for k, _ in provs]
    assert kinds[-2:] == ["file", "shell"], "the smoke check must run after the host role"
    assert lit(provs[-2][1]["source"]) == "${path.root}/smoke-ssm.py"
    assert lit(provs[-2][1]["destination"]) == "/tmp/cinemo-smoke-ssm.py"
    assert lit(provs[-1][1]["script"]).endswith("/smoke.sh")


def test_manifest_post_processor_writes_packer_manifest_json(build):
    (pp,) = build["post-processor"]
    manifest = unquote_keys(pp)["manifest"]
    assert lit(manifest["output"]) == "${path.root}/manifest.json"
    assert manifest["strip_path"] is True
    assert set(manifest["custom_data"]) == {"version", "git_sha", "channel"}


def test_smoke_script_runs_cinemo_healthcheck(repo):
    text = (repo / "packer" / "smoke.sh").read_text()
    assert "/usr/local/bin/cinemo healthcheck http://127.0.0.1:8080" in text


def test_smoke_runs_the_real_bootstrap_unit(repo):
    """The bootstrap is exercised, not replaced: its ExecStart stays, only the
    SSM endpoint points at the uploaded stand-in (test_unit_seccomp.py runs
    the script under its filter against that same stand-in)."""
    text = (repo / "packer" / "smoke.sh").read_text()
    assert "ExecStart" not in text and "/bin/true" not in text
    assert 'SMOKE_SSM=${SMOKE_SSM:-/tmp/cinemo-smoke-ssm.py}' in text
    assert "Environment=CINEMO_SSM_ENDPOINT_URL=http://127.0.0.1:$SSM_PORT" in text
    assert "systemctl start cinemo-bootstrap.service ||" in text


def test_build_instance_gets_the_ssm_agent_and_the_tagged_build_subnet(sources):
    """Debian's AMIs ship no SSM agent and an empty subnet_id picks a subnet
    with no route out: either way Packer's Session Manager connection fails."""
    for src in sources.values():
        assert lit(src["user_data_file"]) == "${path.root}/ssm-agent-user-data.sh"
        (sf,) = src["subnet_filter"]
        assert {lit(k): lit(v) for k, v in sf["filters"].items()} == {"tag:cinemo:purpose": "packer-build"}
        assert src["subnet_id"] == "${var.subnet_id}"
        assert lit(src["ssh_interface"]) == "${local.ssh_interface}"
        assert lit(src["iam_instance_profile"]) == "${var.iam_instance_profile}"


def test_build_instance_profile_is_the_one_the_iam_role_creates(variables, repo):
    import yaml

    defaults = yaml.safe_load((repo / "ansible/roles/iam/defaults/main.yml").read_text())
    assert lit(variables["iam_instance_profile"]["default"]) == defaults["iam_packer_build_role"]
