#!/usr/bin/python3
"""Load a seccomp filter the way systemd builds one, then exec a command.

    seccomp_exec.py SPEC -- COMMAND [ARG...]

SPEC is the JSON that `unit_sandbox.seccomp_spec()` computes from a unit
file: {"allow": [syscall, ...], "errno": null | int}. Syscalls not in `allow`
get the unit's SystemCallErrorNumber= (an errno) or, without one, kill the
whole process with SIGSYS, as systemd does. Only the native architecture
is allowed (SystemCallArchitectures=native): libseccomp kills a call from
any other ABI. Loading sets no_new_privs, as NoNewPrivileges=yes does.

Runs with Debian's python3 and its python3-seccomp (libseccomp's own
bindings), not the test venv.
"""
import json
import os
import sys

import seccomp


def main():
    if len(sys.argv) < 4 or sys.argv[2] != "--":
        sys.exit(__doc__)
    spec = json.loads(sys.argv[1])
    command = sys.argv[3:]
    default = seccomp.ERRNO(spec["errno"]) if spec["errno"] is not None else seccomp.KILL_PROCESS
    f = seccomp.SyscallFilter(defaction=default)
    for name in spec["allow"]:
        try:
            f.add_rule(seccomp.ALLOW, name)
        except (RuntimeError, ValueError):
            # A name this architecture does not have (chown32 on x86_64,
            # arm_fadvise64_64 ...): systemd skips those the same way.
            pass
    f.load()
    os.execv(command[0], command)


if __name__ == "__main__":
    main()
