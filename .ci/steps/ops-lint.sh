#!/usr/bin/env bash
# Static checks of the ops code, as the pre-merge workflow runs them:
# ansible-lint (production profile, .ansible-lint), a syntax check of every
# playbook, and the Packer template (parsed as modern HCL2 with python-hcl2,
# then `packer validate` by Debian's Packer 1.6.6 on the CI copy bake.sh uses).
source "$(dirname "$0")/../lib.sh"
steps=$(cd "$(dirname "$0")" && pwd)
cd "$CINEMO_ROOT"
ensure_venv
ensure_ansible_collections

log "ansible-lint --offline"
ansible-lint --offline --nocolor -q

log "ansible-playbook --syntax-check"
shopt -s nullglob
plays=(ansible/*.yml)
((${#plays[@]})) || die "no playbooks under ansible/"
for p in "${plays[@]}"; do
  (cd ansible && ansible-playbook -i inventories/dev --syntax-check "$(basename "$p")" >/dev/null) \
    || die "syntax check failed: $p"
  echo "ok   $p"
done

template=packer/cinemo.pkr.hcl
[ -f "$template" ] || die "$template does not exist"
log "Packer template: python-hcl2 parse, then packer validate (1.6.6, CI copy)"
python3 -c 'import hcl2, sys; hcl2.load(open(sys.argv[1])); print("ok   hcl2 parses", sys.argv[1])' "$template"
need_apt packer
work=$(mktemp -d "${TMPDIR:-/tmp}/cinemo-opslint.XXXXXX")
trap 'rm -rf "$work"; _ci_cleanup' EXIT
python3 "$steps/packer-ci-template.py" "$template" "$work/cinemo.pkr.hcl" \
  --endpoint http://127.0.0.1:1 --source-ami ami-00000000
: >"$work/bin"
(cd "$work" && CHECKPOINT_DISABLE=1 PACKER_CONFIG_DIR="$work" packer validate \
  -var "binary_x86_64=$work/bin" -var "binary_arm64=$work/bin" \
  -var version=0.0.0-ci -var git_sha=0000000 -var channel=edge cinemo.pkr.hcl) \
  || die "packer validate failed on the CI copy of $template"
echo "ok   packer validate $template (CI copy)"
