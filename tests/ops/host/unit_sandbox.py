"""Run a unit's command under that unit's own seccomp filter and capabilities.

systemd builds the filter from the unit's SystemCallFilter= lines, in order:
the first line decides the kind of list (an allow list, which also gets
@default, unless it starts with `~`); each later line of the same kind adds
its syscalls, each line of the other kind takes them out again. Groups
(`@system-service`) are expanded with `systemd-analyze syscall-filter`,
the table of the systemd that will run the unit. Denied calls fail with
SystemCallErrorNumber= or, without it, kill the process with SIGSYS.
seccomp_exec.py (Debian's python3-seccomp, i.e. libseccomp) loads the
result; util-linux's setpriv applies CapabilityBoundingSet= and User=.
"""
import functools
import json
import pathlib
import shutil
import subprocess

HERE = pathlib.Path(__file__).resolve().parent
SYSTEM_PYTHON = "/usr/bin/python3"


def parse_unit(path):
    """{section: {key: [values in order]}}; systemd keys may repeat."""
    out, section = {}, None
    for raw in pathlib.Path(path).read_text().splitlines():
        line = raw.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = out.setdefault(line.strip("[]"), {})
            continue
        key, _, value = line.partition("=")
        section.setdefault(key.strip(), []).append(value.strip())
    return out


@functools.lru_cache(maxsize=None)
def expand(name):
    """A syscall name, or every syscall of a @group (nested groups too)."""
    if not name.startswith("@"):
        return frozenset([name])
    out = subprocess.run(["systemd-analyze", "syscall-filter", name],
                         capture_output=True, text=True, check=True).stdout
    members = set()
    for line in out.splitlines()[1:]:
        item = line.strip()
        if item and not item.startswith("#"):
            members |= expand(item)
    if not members:
        raise ValueError(f"systemd-analyze knows no syscall group {name}")
    return frozenset(members)


ERRNOS = {"EPERM": 1, "EACCES": 13, "ENOSYS": 38}


def seccomp_spec(service):
    """{"allow": sorted syscalls, "errno": int|None} for a [Service] section."""
    lines = service.get("SystemCallFilter", [])
    if not lines:
        raise ValueError("the unit has no SystemCallFilter=")
    if service.get("SystemCallArchitectures") != ["native"]:
        raise ValueError("only SystemCallArchitectures=native is modelled")
    if lines[0].startswith("~"):
        raise ValueError("a deny-list-first filter is not modelled (none of our units has one)")
    allowed = set(expand("@default"))
    for line in lines:
        deny = line.startswith("~")
        names = set()
        for word in line.lstrip("~").split():
            if ":" in word:
                raise ValueError(f"per-syscall errno ({word}) is not modelled")
            names |= expand(word)
        allowed = allowed - names if deny else allowed | names
    errno = service.get("SystemCallErrorNumber", [None])[-1]
    if errno is not None:
        errno = ERRNOS[errno]
    return {"allow": sorted(allowed), "errno": errno}


def capability_args(service):
    """setpriv options for CapabilityBoundingSet= (a list of CAP_ names or empty)."""
    caps = service.get("CapabilityBoundingSet")
    if caps is None:
        return []
    names = [c.lower().removeprefix("cap_") for c in caps[-1].split()]
    spec = ",".join(["-all"] + [f"+{n}" for n in names])
    return [f"--bounding-set={spec}", "--inh-caps=-all"]


def command(unit_path, argv, user=None, group=None):
    """argv that runs `argv` as the unit would: capabilities, user, seccomp."""
    service = parse_unit(unit_path)["Service"]
    setpriv = [shutil.which("setpriv") or "/usr/bin/setpriv", "--no-new-privs", *capability_args(service)]
    if user:
        setpriv += [f"--reuid={user}", f"--regid={group or user}", "--clear-groups"]
    return [*setpriv, SYSTEM_PYTHON, str(HERE / "seccomp_exec.py"), json.dumps(seccomp_spec(service)), "--", *argv]


def exec_start(unit_path):
    """The unit's ExecStart= as argv (no prefixes or specifiers in ours)."""
    (line,) = parse_unit(unit_path)["Service"]["ExecStart"]
    return line.split()


def killed_by_sigsys(returncode):
    return returncode == -31  # SIGSYS: seccomp's kill action
