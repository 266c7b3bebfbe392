#!/usr/bin/env python3
"""Print packer/cinemo.pkr.hcl in a form Debian's Packer 1.6.6 accepts.

Packer 1.6.6 (Debian 12's package) predates two things the real template
needs: the top-level `packer { required_plugins {...} }` block (1.7) and
the amazon-ebs `metadata_options` block (IMDSv2). This drops exactly those
blocks and nothing else, so CI can `packer validate` the rest and a local
bake against moto can run:

    python3 packer/to_packer16.py packer/cinemo.pkr.hcl > /tmp/bake/cinemo.pkr.hcl

Real bakes use the template as it is, with a current Packer.
"""
import re
import sys

LEGACY_UNSUPPORTED = ("packer", "metadata_options")


def _block_end(text: str, open_brace: int) -> int:
    """Index just past the brace closing the one at open_brace."""
    depth, i, in_str = 0, open_brace, False
    while i < len(text):
        c = text[i]
        if in_str:
            if c == "\\":
                i += 1
            elif c == '"':
                in_str = False
        elif c == '"':
            in_str = True
        elif c == "#" or text.startswith("//", i):
            nl = text.find("\n", i)
            i = len(text) if nl < 0 else nl
            continue
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return i + 1
        i += 1
    raise SystemExit("unbalanced braces in the template")


def strip_blocks(text: str, names=LEGACY_UNSUPPORTED) -> str:
    pattern = re.compile(r"(?m)^[ \t]*(%s)[ \t]*\{" % "|".join(map(re.escape, names)))
    while True:
        m = pattern.search(text)
        if not m:
            return text
        end = _block_end(text, m.end() - 1)
        text = text[: m.start()] + text[end:]


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        sys.stdout.write(strip_blocks(f.read()))
