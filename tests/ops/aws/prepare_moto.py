#!/usr/bin/env python3
"""Prepare a moto server for one environment's provision.yml run.

What a real account gets by hand before the first provision (an ACM
certificate, a Packer-built AMI, secrets in the vault) is faked here and
written as an extra-vars file:

    prepare_moto.py ENV OUTFILE

Reads AWS_ENDPOINT_URL; the region comes from the env's inventory.
"""

import json
import os
import pathlib
import sys

import boto3
import yaml

ROOT = pathlib.Path(__file__).resolve().parents[3]
# A specific range, so the tests can tell it from 0.0.0.0/0.
CI_ADMIN_CIDR = "198.51.100.0/28"


def inventory_region(env: str) -> str:
    main = ROOT / "ansible" / "inventories" / env / "group_vars" / "all" / "main.yml"
    return yaml.safe_load(main.read_text())["aws_region"]


def main() -> int:
    env, out = sys.argv[1], pathlib.Path(sys.argv[2])
    endpoint = os.environ["AWS_ENDPOINT_URL"]
    region = inventory_region(env)
    acm = boto3.client("acm", region_name=region, endpoint_url=endpoint)
    ec2 = boto3.client("ec2", region_name=region, endpoint_url=endpoint)

    domain = f"{env}.cinemo.test"
    certs = [c for c in acm.list_certificates()["CertificateSummaryList"] if c["DomainName"] == domain]
    cert_arn = certs[0]["CertificateArn"] if certs else acm.request_certificate(DomainName=domain)["CertificateArn"]

    # The public zone an operator's domain lives in (provision.yml adds the ALB's record).
    r53 = boto3.client("route53", region_name=region, endpoint_url=endpoint)
    if not [z for z in r53.list_hosted_zones()["HostedZones"] if z["Name"] == "cinemo.test."]:
        r53.create_hosted_zone(Name="cinemo.test", CallerReference=f"cinemo-test-{env}")

    # Any image moto ships stands in for the Packer AMI and for Debian.
    images = ec2.describe_images(Owners=["amazon"])["Images"]
    image = sorted(i["ImageId"] for i in images if i.get("Architecture") == "x86_64")[0]

    extra = {
        "aws_endpoint_url": endpoint,
        "acm_certificate_arn": cert_arn,
        "public_dns_zone": "cinemo.test",
        "public_dns_name": domain,
        "admin_cidrs": [CI_ADMIN_CIDR],
        "cinemo_ami_id": image,
        "bastion_ami_id": image,
        "database_mongodb_ami_id": image,
        # test-only secrets; real ones live in the vault
        "database_rds_master_password": "ci-only-not-a-secret-0123",
        "database_mongodb_app_password": "ci-only-not-a-secret-4567",
        # every TLS file the tiers need (provision refuses to start hosts without them)
        "ssm_parameters_secrets": [
            {"mode": mode, "kind": "tls", "name": name, "value": f"ci-only-{name}"}
            for mode, names in (("internal", ["server.crt", "server.key", "client-ca.crt"]),
                                ("public", ["client.crt", "client.key", "internal-ca.crt"]))
            for name in names
        ],
    }
    out.write_text(json.dumps(extra, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
