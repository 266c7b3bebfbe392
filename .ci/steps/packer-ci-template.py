#!/usr/bin/env python3
"""Write the CI copy of a Packer HCL2 template, for a bake against moto.

    packer-ci-template.py TEMPLATE OUT --endpoint URL --source-ami [SOURCE=]AMI...

(`--source-ami x86_64=ami-1 --source-ami arm64=ami-2` names the AMI per
`source "amazon-ebs" "<SOURCE>"` block; a bare AMI applies to every source.)

The real template is never edited; CI builds a copy that differs only where
CI must differ:

- the top-level `packer { required_plugins ... }` block is dropped: Debian's
  Packer 1.6.6 (the only one CI can install) predates it and rejects it;
- in every `source "amazon-ebs"` block, the communicator becomes "none" and
  every ssh_*/winrm_* setting goes (there is no instance to log in to:
  moto's instances are records, not machines), the EC2 endpoint points at
  moto, region validation is skipped, and the source AMI is one moto knows
  (its `source_ami_filter`, which looks for Debian's official images, is
  dropped, and so is `subnet_filter`, which looks for the build subnet);
- settings of the build instance that Packer 1.6.6 predates go
  (`metadata_options`: IMDSv2 on the temporary instance);
- in `build` blocks, `provisioner` blocks go (they need a communicator).
  Post-processors (the manifest) stay: that is what the pipeline reads.

So a CI bake proves that the template parses, its variables resolve, and the
AMI is created, named and tagged as the pipeline expects. What the
provisioners do to a real host is tested by the host's own suite.

The scanner understands HCL's strings (with ${...}), heredocs and comments
well enough to find block and attribute boundaries; it does not rewrite
anything it does not have to.
"""
import argparse
import re
import sys

DROP_SOURCE_ATTRS = re.compile(
    r"^(communicator|ssh_\w+|winrm_\w+|pause_before_connecting|custom_endpoint_ec2|"
    r"skip_region_validation|source_ami|source_ami_filter|subnet_filter|"
    # Packer 1.6.6's amazon-ebs does not know these (newer plugin settings of
    # the build instance, not of the AMI); moto would ignore them anyway.
    r"metadata_options)$"
)


def scan(text):
    """Yield (kind, start, end, key, header_end) for the top-level items of text.

    kind is 'block' (ident labels... { ... }) or 'attr' (ident = expr) or
    'other' (comments, blank lines). Offsets are character positions; an
    item's end includes its trailing newline.
    """
    i, n = 0, len(text)
    while i < n:
        # skip whitespace and comments between items
        m = re.compile(r"[ \t\r\n]+|#[^\n]*|//[^\n]*|/\*.*?\*/", re.S).match(text, i)
        if m:
            yield ("other", i, m.end(), None, None)
            i = m.end()
            continue
        m = re.compile(r"([A-Za-z_][\w-]*)").match(text, i)
        if not m:
            raise SyntaxError(f"unexpected {text[i:i + 20]!r} at offset {i}")
        key = m.group(1)
        j = m.end()
        # attribute?
        a = re.compile(r"[ \t]*=(?!=)").match(text, j)
        if a:
            end = expr_end(text, a.end())
            yield ("attr", i, end, key, None)
            i = end
            continue
        # block: labels then {
        b = re.compile(r'(?:[ \t]+(?:"(?:[^"\\]|\\.)*"|[A-Za-z_][\w-]*))*[ \t]*\{').match(text, j)
        if not b:
            raise SyntaxError(f"cannot parse item {key!r} at offset {i}: {text[i:i + 40]!r}")
        close = matching_brace(text, b.end() - 1)
        end = close + 1
        nl = re.compile(r"[ \t]*(?:#[^\n]*|//[^\n]*)?\n?").match(text, end)
        end = nl.end()
        yield ("block", i, end, key, b.end())
        i = end


def skip_string(text, i):
    """text[i] == '"'; return the index after the closing quote."""
    i += 1
    depth = 0  # inside ${ ... } interpolations, strings may nest
    while i < len(text):
        c = text[i]
        if c == "\\":
            i += 2
            continue
        if depth == 0 and c == '"':
            return i + 1
        if text.startswith("${", i) or text.startswith("%{", i):
            depth += 1
            i += 2
            continue
        if depth and c == "}":
            depth -= 1
        elif depth and c == '"':
            i = skip_string(text, i)
            continue
        i += 1
    raise SyntaxError("unterminated string")


def skip_heredoc(text, i):
    m = re.compile(r"<<-?([A-Za-z_]\w*)[ \t]*\n").match(text, i)
    if not m:
        return None
    tag = m.group(1)
    end = re.compile(r"^[ \t]*" + re.escape(tag) + r"[ \t]*$", re.M).search(text, m.end())
    if not end:
        raise SyntaxError(f"unterminated heredoc {tag}")
    return end.end()


def walk_until(text, i, stop):
    """Advance over an expression; stop(c, depth, i) decides where it ends."""
    depth = 0
    while i < len(text):
        c = text[i]
        if stop(c, depth, i):
            return i
        if c == '"':
            i = skip_string(text, i)
            continue
        if text.startswith("<<", i):
            h = skip_heredoc(text, i)
            if h is not None:
                i = h
                continue
        if c == "#" or text.startswith("//", i):
            nl = text.find("\n", i)
            i = len(text) if nl < 0 else nl
            continue
        if text.startswith("/*", i):
            i = text.index("*/", i) + 2
            continue
        if c in "([{":
            depth += 1
        elif c in ")]}":
            depth -= 1
        i += 1
    return i


def matching_brace(text, open_at):
    end = walk_until(text, open_at + 1, lambda c, d, i: c == "}" and d == 0)
    if end >= len(text):
        raise SyntaxError("unbalanced braces")
    return end


def expr_end(text, i):
    end = walk_until(text, i, lambda c, d, i: c == "\n" and d == 0)
    return min(end + 1, len(text))


def block_labels(text, start, header_end):
    return re.findall(r'"((?:[^"\\]|\\.)*)"', text[start:header_end])


def rewrite_body(text, body_start, body_end, item_filter, inject=""):
    """Rebuild a block body keeping the items item_filter accepts."""
    body = text[body_start:body_end]
    out = [inject] if inject else []
    for kind, s, e, key, hdr in scan(body):
        if kind == "other" or item_filter(kind, key, body, s, hdr):
            out.append(body[s:e])
        elif out:
            # drop the dropped item's indentation too
            out[-1] = re.sub(r"[ \t]+$", "", out[-1])
    return "".join(out)


def pick_ami(source_amis, label):
    ami = source_amis.get(label) or source_amis.get("")
    if not ami:
        raise SystemExit(f'error: no --source-ami for source "amazon-ebs" "{label}"')
    return ami


def transform(text, endpoint, source_amis):
    out = []
    sources = 0
    for kind, s, e, key, hdr in scan(text):
        chunk = text[s:e]
        if kind == "block" and key == "packer":
            out.append("# (packer { required_plugins } dropped for Packer 1.6.6 in CI)\n")
            continue
        labels = block_labels(text, s, hdr) if kind == "block" else []
        if kind == "block" and key == "source" and labels[:1] == ["amazon-ebs"]:
            sources += 1
            source_ami = pick_ami(source_amis, labels[1] if len(labels) > 1 else "")
            close = matching_brace(text, hdr - 1)
            inject = (
                "\n  # CI: bake against moto, no instance to connect to\n"
                f'  custom_endpoint_ec2    = "{endpoint}"\n'
                "  skip_region_validation = true\n"
                '  communicator           = "none"\n'
                f'  source_ami             = "{source_ami}"\n'
            )
            body = rewrite_body(text, hdr, close,
                                lambda k, key, *_: not DROP_SOURCE_ATTRS.match(key), inject)
            chunk = text[s:hdr] + body + text[close:e]
        elif kind == "block" and key == "build":
            close = matching_brace(text, hdr - 1)
            body = rewrite_body(text, hdr, close,
                                lambda k, key, *_: not (k == "block" and key == "provisioner"))
            chunk = text[s:hdr] + body + text[close:e]
        out.append(chunk)
    if not sources:
        raise SystemExit('error: no source "amazon-ebs" block in the template')
    return "".join(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("template")
    ap.add_argument("out")
    ap.add_argument("--endpoint", required=True)
    ap.add_argument("--source-ami", required=True, action="append", metavar="[SOURCE=]AMI")
    args = ap.parse_args()
    source_amis = dict(v.split("=", 1) if "=" in v else ("", v) for v in args.source_ami)
    text = open(args.template).read()
    try:
        result = transform(text, args.endpoint, source_amis)
    except SyntaxError as e:
        sys.exit(f"error: cannot read {args.template}: {e}")
    with open(args.out, "w") as f:
        f.write(f"# CI copy of {args.template}, written by .ci/steps/packer-ci-template.py; do not edit.\n")
        f.write(result)


if __name__ == "__main__":
    main()
