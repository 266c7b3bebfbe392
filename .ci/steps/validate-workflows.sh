#!/usr/bin/env bash
# Schema-check every GitHub Actions workflow with action-validator, then the
# rules the schema cannot express: each `run:` calls a script from this repo
# (so CI here runs the same steps), and every third-party action is pinned to
# a full commit SHA.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/_tools.sh"
cd "$CINEMO_ROOT"

shopt -s nullglob
files=(.github/workflows/*.yml .github/workflows/*.yaml)
((${#files[@]})) || die "no workflow files under .github/workflows"

ensure_action_validator
log "action-validator $(action-validator --version 2>/dev/null | awk '{print $NF}') on ${#files[@]} workflow(s)"
for f in "${files[@]}"; do
  action-validator --verbose "$f" || die "$f does not validate"
  echo "ok: $f"
done

log "repository rules: pinned actions, steps are scripts"
ensure_venv
python3 - "${files[@]}" <<'PY'
import re, sys, yaml

problems = []
for path in sys.argv[1:]:
    wf = yaml.safe_load(open(path))
    for job_id, job in (wf.get("jobs") or {}).items():
        if "uses" in job:  # a reusable workflow call
            steps = [{"uses": job["uses"]}]
        else:
            steps = job.get("steps") or []
        for i, step in enumerate(steps):
            where = f"{path}: job {job_id}, step {step.get('name', i)}"
            uses = step.get("uses")
            if uses and not uses.startswith("./"):
                ref = uses.partition("@")[2]
                if not re.fullmatch(r"[0-9a-f]{40}", ref):
                    problems.append(f"{where}: {uses} is not pinned to a full commit SHA")
            run = step.get("run")
            if run is not None:
                # One script per step; allowed glue: comments, blank lines,
                # `echo ... >> $GITHUB_*`, `sudo apt-get`, `rustup`.
                for line in str(run).splitlines():
                    line = line.strip()
                    if not line or line.startswith("#"):
                        continue
                    if re.match(r"(bash |\./)?\.ci/(steps|suites)/[\w.-]+\.sh\b", line) \
                       or re.match(r"bash \.ci/(run|test)\b", line) \
                       or re.match(r"(sudo )?apt-get |rustup |echo .*>> *\"?\$GITHUB_(OUTPUT|ENV|STEP_SUMMARY|PATH)", line):
                        continue
                    problems.append(f"{where}: `{line}` is not one of the repository's scripts")

if problems:
    print("\n".join(problems))
    sys.exit(f"{len(problems)} problem(s) in the workflows")
print(f"ok: {len(sys.argv) - 1} workflow(s), every action pinned, every step a script")
PY
