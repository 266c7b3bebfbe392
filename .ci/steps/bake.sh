#!/usr/bin/env bash
# Bake the cinemo AMIs (x86_64 and arm64) from the release binaries with
# packer/cinemo.pkr.hcl, tagged with version, git sha and channel.
#
#   bake.sh [--channel edge] [--env edge] [--dist DIR]
#
# --env names the environment whose region the AMI is built in (from its
# inventory); if stable lives in another region the AMI is copied there too.
# Reads the binaries and their .env files written by release-build.sh from
# DIST (default $CINEMO_DIST or $CINEMO_CACHE/dist), checks their checksums,
# writes DIST/packer-manifest.json and the outputs ami (x86_64) and ami_arm64.
#
# Two modes:
#   aws   (GitHub Actions, OIDC credentials): the real template with a current
#         Packer (`packer init`, provisioners over Session Manager).
#   moto  (CI here; chosen when AWS_ENDPOINT_URL is set): Debian's Packer
#         1.6.6 on a CI copy of the template (packer-ci-template.py: no
#         `packer {}` block, communicator "none", no provisioners, a source
#         AMI moto knows). It proves the template, variables, naming, tagging
#         and manifest; the host suite tests what the provisioners do.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/_ansible.sh"
steps=$(cd "$(dirname "$0")" && pwd)
cd "$CINEMO_ROOT"

channel=edge env=edge dist=${CINEMO_DIST:-$CINEMO_CACHE/dist}
while [ $# -gt 0 ]; do
  case "$1" in
    --channel) channel=$2; shift 2 ;;
    --env) env=$2; shift 2 ;;
    --dist) dist=$2; shift 2 ;;
    *) die "unknown argument: $1 (usage: bake.sh [--channel edge] [--env edge] [--dist DIR])" ;;
  esac
done
mode=${CINEMO_BAKE_MODE:-$([ -n "${AWS_ENDPOINT_URL:-}" ] && echo moto || echo aws)}
template=packer/cinemo.pkr.hcl
[ -f "$template" ] || die "$template does not exist yet (owned by the host engineer)"
dist=$(cd "$dist" && pwd) || die "no release artefacts at $dist (run release-build.sh)"
"$steps/verify-dist.sh" "$dist"
ensure_venv

envfile=$(ls "$dist"/cinemo-*-x86_64-unknown-linux-gnu.env 2>/dev/null | head -n 1)
[ -n "$envfile" ] || die "no x86_64 release build in $dist (release-build.sh writes cinemo-<version>-x86_64-unknown-linux-gnu.env)"
# shellcheck disable=SC1090
source "$envfile"
bin_x86="$dist/$CINEMO_BINARY"
bin_arm="$dist/cinemo-$CINEMO_VERSION-aarch64-unknown-linux-gnu"
if [ ! -f "$bin_arm" ]; then
  [ "$mode" = moto ] || die "no aarch64 build at $bin_arm: the post-merge workflow builds both before baking"
  # CI here has no aarch64 standard library. The moto bake runs no
  # provisioner, so the path is only checked for being a variable.
  echo "note: no aarch64 binary here; the moto bake does not install binaries, passing the x86_64 path for binary_arm64" >&2
  bin_arm=$bin_x86
fi

region=$(python3 "$steps/release_state.py" region "$env")
regions=()
for other in stable; do
  r=$(python3 "$steps/release_state.py" region "$other" 2>/dev/null || true)
  if [ -n "$r" ] && [ "$r" != "$region" ]; then regions+=("\"$r\""); fi
done
ami_regions="[$(IFS=,; echo "${regions[*]}")]"

vars=(-var "binary_x86_64=$bin_x86" -var "binary_arm64=$bin_arm"
      -var "version=$CINEMO_VERSION" -var "git_sha=$CINEMO_GIT_SHA" -var "channel=$channel"
      -var "region=$region" -var "ami_regions=$ami_regions")
export CHECKPOINT_DISABLE=1 PACKER_NO_COLOR=1
work=$(mktemp -d "${TMPDIR:-/tmp}/cinemo-bake.XXXXXX")
trap 'rm -rf "$work"; _ci_cleanup' EXIT

log "bake ($mode): cinemo $CINEMO_VERSION ($CINEMO_GIT_SHA) channel=$channel region=$region copies=$ami_regions"
started=$SECONDS
case "$mode" in
  aws)
    command -v packer >/dev/null || die "packer is not installed (the workflow uses hashicorp/setup-packer)"
    packer version
    packer init packer/
    rm -f packer/manifest.json
    packer build -color=false "${vars[@]}" packer/
    manifest=packer/manifest.json
    ;;
  moto)
    [ -n "${AWS_ENDPOINT_URL:-}" ] || die "moto mode needs AWS_ENDPOINT_URL (start_moto)"
    need_apt packer
    packer version
    # a source AMI per architecture that moto knows (Debian's owner id does
    # not exist there); Debian-named first, then Amazon Linux, never Windows
    read -r ami_src_x86 ami_src_arm < <(AWS_DEFAULT_REGION=$region python3 - <<'PY'
import boto3, os
ec2 = boto3.client("ec2", endpoint_url=os.environ["AWS_ENDPOINT_URL"])
def pick(arch):
    imgs = ec2.describe_images(Filters=[{"Name": "architecture", "Values": [arch]}])["Images"]
    def rank(i):
        n = (i.get("Name") or "").lower()
        return (0 if n.startswith("debian-12") else 1 if n.startswith(("al2023", "amzn2")) else 2, n)
    imgs = [i for i in imgs if "windows" not in (i.get("Name") or "").lower() and i.get("Platform") != "windows"]
    if not imgs:
        raise SystemExit(f"moto has no {arch} AMI to bake from")
    return sorted(imgs, key=rank)[0]["ImageId"]
print(pick("x86_64"), pick("arm64"))
PY
)
    python3 "$steps/packer-ci-template.py" "$template" "$work/cinemo.pkr.hcl" \
      --endpoint "$AWS_ENDPOINT_URL" --source-ami "x86_64=$ami_src_x86" --source-ami "arm64=$ami_src_arm"
    # The copy's ${path.root} is $work (its manifest lands there): the files
    # its source blocks read must be there too.
    cp "$(dirname "$template")/ssm-agent-user-data.sh" "$work/"
    # moto has no such instance profile; the CI copy has no instance to use it
    (cd "$work" && PACKER_CONFIG_DIR="$work" packer build -color=false "${vars[@]}" \
      -var iam_instance_profile= cinemo.pkr.hcl)
    manifest="$work/manifest.json"
    ;;
  *) die "CINEMO_BAKE_MODE must be aws or moto, not $mode" ;;
esac
[ -f "$manifest" ] || die "packer wrote no manifest at $manifest"
cp "$manifest" "$dist/packer-manifest.json"

ami=$(python3 "$steps/release_state.py" manifest-ami "$dist/packer-manifest.json" x86_64)
ami_arm=$(python3 "$steps/release_state.py" manifest-ami "$dist/packer-manifest.json" arm64)
log "baked in $((SECONDS - started))s: x86_64 $ami, arm64 $ami_arm"

# The tags are the contract with rollout/promote and with people: check them.
for a in "$ami" "$ami_arm"; do
  steps=$steps AWS_DEFAULT_REGION=$region python3 - "$a" "$CINEMO_VERSION" "$CINEMO_GIT_SHA" "$channel" <<'PY'
import json, subprocess, sys, os
ami, version, sha, channel = sys.argv[1:]
tags = json.loads(subprocess.check_output([sys.executable, os.path.join(os.environ["steps"], "release_state.py"), "ami-tags", ami]))
want = {"version": version, "git_sha": sha, "channel": channel, "service": "cinemo"}
bad = {k: (tags.get(k), v) for k, v in want.items() if tags.get(k) != v}
if bad:
    sys.exit(f"error: {ami} tags differ from the build (got, want): {bad}")
print(f"{ami}: " + ", ".join(f"{k}={tags[k]}" for k in sorted(tags)))
PY
done
gh_output ami "$ami"
gh_output ami_arm64 "$ami_arm"
