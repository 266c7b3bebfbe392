#!/usr/bin/python
# -*- coding: utf-8 -*-
# Load balancer attributes by their API keys. elb_application_lb reads every
# attribute it may set before setting it, and an attribute never set has no
# value on some endpoints (moto): this module compares only the keys it is
# given, treats a missing one as different, and writes only those that differ.

DOCUMENTATION = r"""
---
module: cinemo_elb_attributes
short_description: Set Elastic Load Balancing v2 load balancer attributes, idempotently
options:
  arn: {type: str, required: true, description: The load balancer's ARN.}
  attributes:
    type: dict
    required: true
    description: Attribute key (for example C(idle_timeout.timeout_seconds)) to value; values are compared as strings.
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

RETURN = r"""
changed_attributes: {description: the keys written, returned: always, type: list}
attributes: {description: every attribute after the change, returned: always, type: dict}
"""


def _text(value):
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def ensure(client, arn, wanted, check_mode=False):
    """Returns (changed keys, attributes after)."""
    current = {a["Key"]: a["Value"] for a in client.describe_load_balancer_attributes(LoadBalancerArn=arn)["Attributes"]}
    wanted = {k: _text(v) for k, v in wanted.items()}
    differ = sorted(k for k, v in wanted.items() if current.get(k) != v)
    if differ and not check_mode:
        client.modify_load_balancer_attributes(
            LoadBalancerArn=arn, Attributes=[{"Key": k, "Value": wanted[k]} for k in differ])
        current.update({k: wanted[k] for k in differ})
    return differ, current


def main():  # pragma: no cover - exercised through ansible-playbook
    from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

    module = AnsibleAWSModule(
        argument_spec=dict(arn=dict(type="str", required=True), attributes=dict(type="dict", required=True)),
        supports_check_mode=True,
    )
    try:
        differ, after = ensure(module.client("elbv2"), module.params["arn"], module.params["attributes"],
                               module.check_mode)
    except Exception as e:  # botocore errors, with the API's message
        module.fail_json_aws(e, msg=f"attributes of {module.params['arn']}")
    module.exit_json(changed=bool(differ), changed_attributes=differ, attributes=after)


if __name__ == "__main__":
    main()
