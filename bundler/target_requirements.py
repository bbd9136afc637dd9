"""Runs inside the TARGET interpreter, prepended to target_probe.py: the requirement checks of `pip check`.

Standard library only, for any Python >= 3.8 (the target may be older than vllm-bug's interpreter).
`packaging` (or pip's vendored copy) is used when the target has it; otherwise a small evaluator here
reads PEP 508 requirements, evaluates their environment markers and matches PEP 440 versions.

`requirement_problems` reports what `pip check` would: for every installed distribution, each declared
requirement that applies here (markers evaluated with no extra selected) and is either not installed or
installed at a version outside its specifier (pre-releases allowed, as pip check allows them). It then follows
extras the way pip's installer does and pip check does not: a requirement 'X[e]' also requires what X declares
for extra e, and those requirements are checked too (each problem names the extra and who asked for it).
"""

import os
import platform
import re
import sys

MAX_PROBLEMS = 1000
MAX_REQUIREMENT_CHARS = 1000
MAX_NAME_CHARS = 256  # names and versions, as the bundle schema caps them

# A marker that selects an optional extra and nothing else never applies when no extra is selected:
# most optional requirements look like this, so they are skipped without being parsed.
_EXTRA_ONLY = re.compile(r"""^\s*extra\s*==\s*(['"])[^'"]*\1\s*$""")


def normalise_name(name):
    return re.sub(r"[-_.]+", "-", name).lower()


# ---------------------------------------------------------------- PEP 440 versions

_VERSION = re.compile(
    r"""^\s*v?(?:(?P<epoch>\d+)!)?(?P<release>\d+(?:\.\d+)*)
    (?:[-_.]?(?P<pre_l>alpha|a|beta|b|preview|pre|c|rc)[-_.]?(?P<pre_n>\d*))?
    (?:-(?P<post_n1>\d+)|[-_.]?(?P<post_l>post|rev|r)[-_.]?(?P<post_n2>\d*))?
    (?:[-_.]?(?P<dev_l>dev)[-_.]?(?P<dev_n>\d*))?
    (?:\+(?P<local>[a-z0-9]+(?:[-_.][a-z0-9]+)*))?\s*$""",
    re.I | re.X,
)
_PRE_ORDER = {"a": 0, "alpha": 0, "b": 1, "beta": 1, "c": 2, "rc": 2, "pre": 2, "preview": 2}


class Version:
    """A PEP 440 version, ordered as pip orders them. Raises ValueError for text that is not one."""

    def __init__(self, text):
        m = _VERSION.match(text)
        if m is None:
            raise ValueError(f"not a PEP 440 version: {text!r}")
        self.epoch = int(m.group("epoch") or 0)
        self.release = tuple(int(part) for part in m.group("release").split("."))
        self.pre: tuple[int, int] | None = None
        if m.group("pre_l"):
            self.pre = (_PRE_ORDER[m.group("pre_l").lower()], int(m.group("pre_n") or 0))
        self.post: int | None
        if m.group("post_n1"):
            self.post = int(m.group("post_n1"))
        elif m.group("post_l"):
            self.post = int(m.group("post_n2") or 0)
        else:
            self.post = None
        self.dev: int | None = int(m.group("dev_n") or 0) if m.group("dev_l") else None
        local = m.group("local")
        self.local: tuple[str, ...] | None = tuple(re.split(r"[-_.]", local.lower())) if local else None

    @property
    def is_prerelease(self):
        return self.pre is not None or self.dev is not None

    def base_key(self):
        return (self.epoch, _trimmed(self.release))

    def key(self, with_local=True):
        release = _trimmed(self.release)
        pre: tuple[int, ...]
        if self.pre is None and self.post is None and self.dev is not None:
            pre = (-1,)  # 1.0.dev0 sorts before 1.0a0
        elif self.pre is None:
            pre = (3,)
        else:
            pre = self.pre
        post = (-1,) if self.post is None else (self.post,)
        dev = (float("inf"),) if self.dev is None else (self.dev,)
        local: tuple = ()
        if with_local and self.local is not None:
            # numeric parts sort above alphanumeric ones, and a version with a local part above one without
            local = (1,) + tuple((1, int(part), "") if part.isdigit() else (0, 0, part) for part in self.local)
        return (self.epoch, release, pre, post, dev, local)


def _trimmed(release):
    end = len(release)
    while end > 1 and release[end - 1] == 0:
        end -= 1
    return release[:end]


# ---------------------------------------------------------------- PEP 440 specifiers

_SPECIFIER = re.compile(r"^\s*(===|~=|==|!=|<=|>=|<|>)\s*(\S+?)\s*$")


def _padded(release, width):
    return tuple(release[:width]) + (0,) * max(0, width - len(release))


def _matches_one(op, target, candidate):
    """Whether Version `candidate` satisfies `op target` (pre-releases allowed)."""
    if op == "===":
        return False  # compared as text by the caller
    wildcard = target.endswith(".*")
    if wildcard:
        if op not in ("==", "!="):
            raise ValueError(f"wildcard with {op}")
        prefix = Version(target[:-2])
        same = candidate.epoch == prefix.epoch and _padded(candidate.release, len(prefix.release)) == prefix.release
        return same if op == "==" else not same
    spec = Version(target)
    if op in ("==", "!="):
        equal = candidate.key(with_local=spec.local is not None) == spec.key()
        return equal if op == "==" else not equal
    if op == "~=":
        if len(spec.release) < 2:
            raise ValueError("~= needs two release parts")
        head = spec.release[:-1]
        return (
            candidate.key(False) >= spec.key()
            and candidate.epoch == spec.epoch
            and _padded(candidate.release, len(head)) == head
        )
    have, want = candidate.key(False), spec.key()
    if op == "<=":
        return have <= want
    if op == ">=":
        return have >= want
    if op == "<":
        # <1.7 does not admit 1.7rc1 unless the bound itself is a pre-release
        if not have < want:
            return False
        return spec.is_prerelease or not candidate.is_prerelease or candidate.base_key() != spec.base_key()
    if op == ">":
        # >1.7 admits neither 1.7.post1 (unless the bound is a post-release) nor 1.7+local
        if not have > want:
            return False
        if spec.post is None and candidate.post is not None and candidate.base_key() == spec.base_key():
            return False
        return candidate.local is None or candidate.base_key() != spec.base_key()
    raise ValueError(f"unknown operator {op!r}")


def specifier_contains(specifier, version_text):
    """Whether a version satisfies every clause of a specifier such as '>=1.7,<1.8'; None if either is unreadable."""
    clauses = [part for part in specifier.split(",") if part.strip()]
    try:
        candidate = Version(version_text)
    except ValueError:
        candidate = None
    for clause in clauses:
        m = _SPECIFIER.match(clause)
        if m is None:
            return None
        op, target = m.groups()
        if op == "===":
            if version_text.strip().lower() != target.lower():
                return False
            continue
        if candidate is None:
            return None
        try:
            if not _matches_one(op, target, candidate):
                return False
        except ValueError:
            return None
    return True


# ---------------------------------------------------------------- PEP 508 markers

_MARKER_TOKEN = re.compile(
    r"""\s*(?:(?P<string>'[^']*'|"[^"]*")|(?P<op>===|==|!=|<=|>=|~=|<|>|not\s+in\b|in\b)
    |(?P<paren>[()])|(?P<word>and\b|or\b)|(?P<name>[A-Za-z_][A-Za-z0-9_.]*))""",
    re.X,
)
_VERSION_OPS = ("===", "==", "!=", "<=", ">=", "~=", "<", ">")
# Only these variables compare as versions; the others, platform_version say, compare as text.
_VERSION_VARIABLES = ("python_version", "python_full_version", "implementation_version", "platform_release")


def _readable_version(text):
    try:
        Version(text[:-2] if text.endswith(".*") else text)
    except ValueError:
        return False
    return True


def marker_environment():
    """The values PEP 508 markers are evaluated against, for this interpreter."""
    info = sys.implementation.version
    implementation_version = f"{info.major}.{info.minor}.{info.micro}"
    if info.releaselevel != "final":
        implementation_version += info.releaselevel[0] + str(info.serial)
    return {
        "implementation_name": sys.implementation.name,
        "implementation_version": implementation_version,
        "os_name": os.name,
        "platform_machine": platform.machine(),
        "platform_release": platform.release(),
        "platform_system": platform.system(),
        "platform_version": platform.version(),
        "python_full_version": platform.python_version(),
        "platform_python_implementation": platform.python_implementation(),
        "python_version": ".".join(platform.python_version_tuple()[:2]),
        "sys_platform": sys.platform,
    }


def _marker_tokens(text):
    tokens = []
    position = 0
    while position < len(text):
        if text[position:].strip() == "":
            break
        m = _MARKER_TOKEN.match(text, position)
        if m is None or m.end() == position:
            raise ValueError(f"cannot read marker at {text[position : position + 20]!r}")
        kind = m.lastgroup or ""
        value = m.group(kind)
        if kind == "op":
            value = " ".join(value.split())
        tokens.append((kind, value))
        position = m.end()
    return tokens


class _MarkerEvaluator:
    def __init__(self, tokens, environment):
        self.tokens = tokens
        self.at = 0
        self.environment = environment

    def peek(self):
        return self.tokens[self.at] if self.at < len(self.tokens) else (None, None)

    def take(self):
        token = self.peek()
        self.at += 1
        return token

    def any_of(self):
        value = self.all_of()
        while self.peek() == ("word", "or"):
            self.take()
            right = self.all_of()
            value = value or right
        return value

    def all_of(self):
        value = self.atom()
        while self.peek() == ("word", "and"):
            self.take()
            right = self.atom()
            value = value and right
        return value

    def atom(self):
        if self.peek() == ("paren", "("):
            self.take()
            value = self.any_of()
            if self.take() != ("paren", ")"):
                raise ValueError("unbalanced parentheses in marker")
            return value
        left, left_is_name = self.operand()
        kind, op = self.take()
        if kind != "op":
            raise ValueError("expected a comparison in marker")
        right, right_is_name = self.operand()
        if "extra" in (left_is_name, right_is_name):
            left, right = normalise_name(left), normalise_name(right)
        return _compare(left, op, right, (left_is_name or right_is_name) in _VERSION_VARIABLES)

    def operand(self):
        kind, value = self.take()
        if kind == "string":
            return value[1:-1], None
        if kind == "name":
            name = value.replace(".", "_")  # the deprecated os.name, sys.platform, ... spellings
            name = {"python_implementation": "platform_python_implementation"}.get(name, name)
            if name not in self.environment:
                raise ValueError(f"unknown marker variable {value!r}")
            return self.environment[name], name
        raise ValueError("expected a value in marker")


def _compare(left, op, right, versions):
    if op == "in":
        return left in right
    if op == "not in":
        return left not in right
    if op in _VERSION_OPS:
        if versions and op != "===" and _SPECIFIER.match(op + right) and _readable_version(right):
            return bool(specifier_contains(op + right, left))  # a value that is no version matches nothing
        if op not in _STRING_COMPARISONS:
            raise ValueError(f"cannot compare {left!r} {op} {right!r}")
        return _STRING_COMPARISONS[op](left, right)  # not versions: compared as text, as packaging does
    raise ValueError(f"unknown marker operator {op!r}")


_STRING_COMPARISONS = {
    "===": lambda a, b: a == b,
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}


def evaluate_marker(marker, environment):
    """Whether a PEP 508 marker holds in `environment` (which holds "extra"); ValueError when unreadable."""
    evaluator = _MarkerEvaluator(_marker_tokens(marker), environment)
    value = evaluator.any_of()
    if evaluator.at != len(evaluator.tokens):
        raise ValueError("trailing text in marker")
    return bool(value)


# ---------------------------------------------------------------- PEP 508 requirements

_NAME = re.compile(r"^\s*([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*")


class Requirement:
    """name, specifier text, marker text (or None) and URL (or None) of one Requires-Dist line."""

    def __init__(self, text):
        m = _NAME.match(text)
        if m is None:
            raise ValueError(f"no project name in {text!r}")
        self.name = m.group(1)
        rest = text[m.end() :]
        self.extras = set()
        if rest.startswith("["):
            close = rest.find("]")
            if close < 0:
                raise ValueError(f"unclosed extras in {text!r}")
            self.extras = {part.strip() for part in rest[1:close].split(",") if part.strip()}
            rest = rest[close + 1 :]
        self.url = None
        self.marker = None
        if rest.lstrip().startswith("@"):
            url_and_marker = rest.lstrip()[1:].strip()
            found = re.search(r"\s;", url_and_marker)
            if found:
                self.marker = url_and_marker[found.end() :].strip()
                url_and_marker = url_and_marker[: found.start()]
            self.url = url_and_marker.strip()
            self.specifier = ""
            return
        if ";" in rest:
            rest, self.marker = rest.split(";", 1)
            self.marker = self.marker.strip()
        rest = rest.strip()
        if rest.startswith("(") and rest.endswith(")"):
            rest = rest[1:-1]
        self.specifier = rest.replace(" ", "")
        for clause in self.specifier.split(","):
            if clause and not _SPECIFIER.match(clause):
                raise ValueError(f"unreadable version specifier {clause!r}")


class BundledTools:
    """Requirement checks with the evaluator above."""

    source = "bundled"

    def __init__(self):
        self.environment = dict(marker_environment(), extra="")

    def parse(self, raw):
        return Requirement(raw)

    def applies(self, requirement, extra=""):
        if requirement.marker is None:
            return True
        environment = self.environment if not extra else dict(self.environment, extra=extra)
        return evaluate_marker(requirement.marker, environment)

    def specifier_text(self, requirement):
        return requirement.specifier

    def satisfied(self, requirement, version):
        if requirement.url is not None:
            return True  # a direct reference names no version range
        return specifier_contains(requirement.specifier, version)


class PackagingTools:
    """Requirement checks with the target's own `packaging` (what pip itself uses)."""

    def __init__(self, requirement_class, source):
        self.requirement_class = requirement_class
        self.source = source

    def parse(self, raw):
        return self.requirement_class(raw)

    def applies(self, requirement, extra=""):
        return requirement.marker is None or bool(requirement.marker.evaluate({"extra": extra}))

    def specifier_text(self, requirement):
        return str(requirement.specifier)

    def satisfied(self, requirement, version):
        try:
            return bool(requirement.specifier.contains(version, prereleases=True))
        except Exception:
            return None


def requirement_tools():
    """packaging's checks when the target has packaging 22 or later (or pip vendors it), else the bundled ones.

    Older packaging parses with pyparsing, about 1.5 ms a requirement: over a whole environment, longer
    than everything else the metadata probe does, while the bundled checks give the same answers."""
    for prefix in ("packaging", "pip._vendor.packaging"):
        try:
            __import__(prefix + "._parser")  # the hand-written parser of packaging >= 22
            module = __import__(prefix + ".requirements", fromlist=["Requirement"])
            return PackagingTools(module.Requirement, prefix)
        except Exception:
            continue
    return BundledTools()


def applicable(raw, tools):
    """The parsed requirement when it applies here (markers evaluated with no extra), else None.

    Raises ValueError (or packaging's own errors) for a line that cannot be read."""
    marker_at = raw.find(";")
    if marker_at >= 0 and _EXTRA_ONLY.match(raw[marker_at + 1 :]):
        return None
    requirement = tools.parse(raw)
    return requirement if tools.applies(requirement) else None


def applicable_for_extra(raw, tools, extra):
    """The parsed requirement when selecting `extra` adds it (it applies with the extra and not without), else None."""
    requirement = tools.parse(raw)
    if requirement.marker is None or not tools.applies(requirement, extra) or tools.applies(requirement):
        return None
    return requirement


def _problem(package, version, raw, requirement, installed, tools):
    """The problem record of one applicable requirement, or None when it is met."""
    required = normalise_name(requirement.name)
    have = installed.get(required)
    if have is None:
        problem = "missing"
    elif tools.satisfied(requirement, have) is False:
        problem = "conflict"
    else:
        return None
    return {
        "package": normalise_name(package)[:MAX_NAME_CHARS],
        "version": str(version)[:MAX_NAME_CHARS],
        "requirement": raw.strip()[:MAX_REQUIREMENT_CHARS],
        "name": required[:MAX_NAME_CHARS],
        "specifier": tools.specifier_text(requirement)[:MAX_REQUIREMENT_CHARS],
        "installed": None if have is None else str(have)[:MAX_NAME_CHARS],
        "problem": problem,
    }


class _ExtrasWanted:
    """The extras that installed distributions' requirements select ('X[e]'), each with the first one that asked."""

    def __init__(self):
        self.asked_by = {}
        self.pending = []

    def add(self, requirement, asked_by):
        for extra in sorted(getattr(requirement, "extras", ()) or ()):
            key = (normalise_name(requirement.name), normalise_name(extra))
            if key not in self.asked_by:
                self.asked_by[key] = normalise_name(asked_by)
                self.pending.append(key)


def requirement_problems(distributions, installed, tools):
    """Every applicable requirement of every distribution that is missing or in conflict, as `pip check` says, and
    then every requirement that an extra some requirement selects adds, as pip would have installed it.

    `distributions`: (name, version, [Requires-Dist lines]) of each installed distribution;
    `installed`: normalised name -> version. Returns {"problems", "unreadable", "truncated"}."""
    problems = []
    unreadable = 0
    wanted = _ExtrasWanted()
    for name, version, requires in distributions:
        for raw in requires:
            try:
                requirement = applicable(raw, tools)
            except Exception:
                unreadable += 1
                continue
            if requirement is None:
                continue
            wanted.add(requirement, name)
            problem = _problem(name, version, raw, requirement, installed, tools)
            if problem is not None:
                problems.append(problem)
    by_name = {normalise_name(name): (name, version, requires) for name, version, requires in distributions}
    while wanted.pending:
        key = wanted.pending.pop(0)
        if key[0] not in by_name:
            continue  # the distribution itself is missing, and reported as such
        name, version, requires = by_name[key[0]]
        for raw in requires:
            try:
                requirement = applicable_for_extra(raw, tools, key[1])
            except Exception:
                unreadable += 1
                continue
            if requirement is None:
                continue
            wanted.add(requirement, name)
            problem = _problem(name, version, raw, requirement, installed, tools)
            if problem is not None:
                problem.update(extra=key[1][:MAX_NAME_CHARS], wanted_by=wanted.asked_by[key])
                problems.append(problem)
    problems.sort(key=lambda p: (p["package"], p["name"]))
    return {"problems": problems[:MAX_PROBLEMS], "unreadable": unreadable, "truncated": len(problems) > MAX_PROBLEMS}


def top_level_modules(dist):
    """The import names a distribution provides: top_level.txt, else the first part of each path in RECORD."""
    try:
        text = dist.read_text("top_level.txt")
    except Exception:
        text = None
    if text:
        return sorted({line.strip()[:MAX_NAME_CHARS] for line in text.splitlines() if line.strip()})[:20]
    try:
        record = dist.read_text("RECORD") or ""
    except Exception:
        return []
    names = set()
    for line in record.splitlines():
        path = line.split(",", 1)[0]
        first = path.split("/", 1)[0]
        if not first or first.startswith(".") or first.endswith((".dist-info", ".data")) or first == "__pycache__":
            continue
        if "/" in path or first.endswith(".py"):
            names.add(first[:-3] if first.endswith(".py") else first)
    return sorted(name[:MAX_NAME_CHARS] for name in names)[:20]
