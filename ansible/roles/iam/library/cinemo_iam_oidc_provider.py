#!/usr/bin/python
# -*- coding: utf-8 -*-
# The account's IAM OIDC identity provider for GitHub Actions: amazon.aws has
# no module for it. Creates it when missing and adds the audience when it
# lacks it; never deletes (other repositories of the account may use it).

DOCUMENTATION = r"""
---
module: cinemo_iam_oidc_provider
short_description: Ensure an IAM OIDC identity provider exists with an audience
description:
  - AWS no longer uses thumbprints for GitHub's provider (it trusts its root
    certificate authorities), but the API still stores one; the default is
    the value GitHub and AWS document.
options:
  url: {type: str, required: true, description: "Issuer URL, e.g. https://token.actions.githubusercontent.com"}
  client_id: {type: str, default: sts.amazonaws.com, description: Audience to allow.}
  thumbprint: {type: str, default: 6938fd4d98bab03faadb97b34396831e3780aea1, description: Stored certificate thumbprint.}
  tags: {type: dict, default: {}, description: Tags for a new provider.}
extends_documentation_fragment:
  - amazon.aws.common.modules
  - amazon.aws.region.modules
  - amazon.aws.boto3
"""

RETURN = r"""
arn: {description: the provider's ARN, returned: always, type: str}
"""


def ensure(client, url, client_id, thumbprint, tags, check_mode=False):
    host = url.removeprefix("https://").rstrip("/")
    for p in client.list_open_id_connect_providers()["OpenIDConnectProviderList"]:
        if p["Arn"].endswith(":oidc-provider/" + host):
            current = client.get_open_id_connect_provider(OpenIDConnectProviderArn=p["Arn"])
            if client_id in current.get("ClientIDList", []):
                return p["Arn"], False
            if not check_mode:
                client.add_client_id_to_open_id_connect_provider(OpenIDConnectProviderArn=p["Arn"], ClientID=client_id)
            return p["Arn"], True
    if check_mode:
        return "", True
    created = client.create_open_id_connect_provider(
        Url="https://" + host, ClientIDList=[client_id], ThumbprintList=[thumbprint],
        Tags=[{"Key": k, "Value": str(v)} for k, v in sorted(tags.items())])
    return created["OpenIDConnectProviderArn"], True


def main():  # pragma: no cover - exercised through ansible-playbook
    from ansible_collections.amazon.aws.plugins.module_utils.modules import AnsibleAWSModule

    module = AnsibleAWSModule(
        argument_spec=dict(
            url=dict(type="str", required=True),
            client_id=dict(type="str", default="sts.amazonaws.com"),
            thumbprint=dict(type="str", default="6938fd4d98bab03faadb97b34396831e3780aea1"),
            tags=dict(type="dict", default={}),
        ),
        supports_check_mode=True,
    )
    client = module.client("iam")
    try:
        arn, changed = ensure(client, module.params["url"], module.params["client_id"],
                              module.params["thumbprint"], module.params["tags"], module.check_mode)
    except Exception as e:
        module.fail_json_aws(e, msg="ensuring the IAM OIDC provider")
    module.exit_json(changed=changed, arn=arn)


if __name__ == "__main__":
    main()
