#!/usr/bin/env bash
# Fails when a tracked file narrates how the work went instead of saying
# what the product is: ticket or work-session numbers ("issue 5",
# "sessions 14 and 15", "PR #12"), dates of work ("measured 2026-11-23"),
# commit ids in prose ("build 641f66e"), lab-notebook phrases ("scratch
# script", "not committed", "this session", "at the time of writing") and
# first-person accounts ("I measured"). Prints every hit as file:line: text.
# History belongs in git and CHANGELOG.md.
#
#   .ci/steps/narration-check.sh
#
# Not checked: CHANGELOG.md (history by design), Cargo.lock, the vendored
# Swagger UI assets (src/http/swagger/), binary files, this script. Kept legitimate on
# purpose: "session" for an SSM, TLS, MongoDB or pytest session, GitHub
# "issues" without a number, HTTP status codes, ISO timestamps in examples
# (`2026-01-31T16:55:00Z`), the IAM policy language versions (`2012-10-17`,
# `2008-10-17`) and dates inside identifiers (`import-2024-05-01#3`). A line
# that must say such a thing anyway carries the marker `narration-check: ok`.
source "$(dirname "$0")/../lib.sh"
cd "$CINEMO_ROOT"

# This script is left out too: its patterns and examples are the narration.
git ls-files -z -- . ':!CHANGELOG.md' ':!Cargo.lock' ':!src/http/swagger/' \
  ':!.ci/steps/narration-check.sh' | python3 -c '
import re, sys

I = re.I
PATTERNS = [
    # "issue 5", "issues 2 and 4", "ticket #12", "session 13", "sessions 14 and 15", "PR #3"
    ("ticket or session number",
     re.compile(r"\b(issue|ticket|session|sprint)s?[ -]?#?\d+\b|\b(PR|pull request|bug) ?#\d+\b", I)),
    # GitHub-style references in prose: "fixes #12", "see #7"
    ("ticket reference", re.compile(r"\b(fix(es|ed)?|close[sd]?|resolve[sd]?|refs?|see) #\d+\b", I)),
    # A calendar date not part of a timestamp or an identifier
    ("date", re.compile(r"(?<![\w.-])20\d\d-[01]\d-[0-3]\d(?![\w:-])")),
    ("commit id in prose",
     re.compile(r"\b(build|commit|head|revision)s? (of |at )?(?=[0-9a-f]*\d)(?=[0-9a-f]*[a-f])[0-9a-f]{7,12}\b", I)),
    ("lab notebook",
     re.compile(r"\bscratch (script|copy|switch|run|build|branch|file)s?\b|\bnot committed\b"
                r"|\b(this|last|previous|earlier|later|next) session\b|\bat the time of writing\b", I)),
    ("first person", re.compile(r"\bI (tried|measured|found|added|changed|fixed|wrote|removed|had|did|ran|think)\b")),
]
# Dates that are not dates of work: the IAM policy language versions.
ALLOWED_DATES = {"2012-10-17", "2008-10-17"}
MARKER = "narration-check: ok"

hits = 0
for path in sys.stdin.buffer.read().decode().split("\0"):
    if not path:
        continue
    try:
        data = open(path, "rb").read()
    except (FileNotFoundError, IsADirectoryError):
        continue  # deleted in the work tree, or a submodule
    if b"\0" in data[:8192]:
        continue  # binary
    text = data.decode("utf-8", "replace")
    for n, line in enumerate(text.splitlines(), 1):
        if MARKER in line:
            continue
        for what, rx in PATTERNS:
            m = next((m for m in rx.finditer(line)
                      if not (what == "date" and m.group(0) in ALLOWED_DATES)), None)
            if m:
                hits += 1
                print(f"{path}:{n}: {what}: {line.strip()[:160]}")
                break
if hits:
    print(f"\n{hits} line(s) narrate history; say what is true now, and leave the history to git "
          "and CHANGELOG.md", file=sys.stderr)
    sys.exit(1)
print("narration check: nothing found")
'
