"""Messages as templates (literal text and holes), read from Python or C sources and turned into regexes.

A template is the message as its source writes it: literal parts and placeholders (`{expr}` of an
f-string, `{}` of str.format, `%s` of printf or Python's %). `regex` turns the first line of it into a
pattern (literals escaped, each placeholder a bounded group, named after the expression when that name
is free) and `tokens` picks the words every match contains as whole, whitespace-separated tokens, so the
analyzer can skip a row without compiling it.
"""

from __future__ import annotations

import ast
import io
import re
import string
from collections.abc import Callable, Iterator
from dataclasses import dataclass

MAX_HOLE = 200  # characters one placeholder may take in a match
MIN_SENTENCE = 40  # literal characters a message's first sentence needs to stand for the whole message
_SENTENCE_END = re.compile(r"[.!?](?= )")
MAX_LITERAL = 160  # literal characters of a message kept in its regex (a prefix still identifies it)
MIN_LITERAL = 16  # fewer literal characters than this: too generic to be a signal
MIN_TOKEN = 4
TOKENS_PER_FORM = 3


@dataclass(frozen=True)
class Hole:
    name: str | None = None


Part = str | Hole


@dataclass(frozen=True)
class Template:
    parts: tuple[Part, ...]

    @staticmethod
    def of(parts: list[Part]) -> Template:
        merged: list[Part] = []
        for part in parts:
            if isinstance(part, str) and not part:
                continue
            if merged and isinstance(part, str) and isinstance(merged[-1], str):
                merged[-1] = merged[-1] + part
            elif merged and isinstance(part, Hole) and isinstance(merged[-1], Hole):
                continue
            else:
                merged.append(part)
        return Template(tuple(merged))

    def text(self, named: bool = False) -> str:
        """The message with each placeholder shown as {} (as {name} when `named` and it has one)."""
        return "".join(p if isinstance(p, str) else f"{{{p.name or ''}}}" if named else "{}" for p in self.parts)

    def literal_chars(self) -> int:
        return sum(len(p.strip()) for p in self.parts if isinstance(p, str))

    def head(self) -> Template:
        return self.head_and_end()[0]

    def first_sentence(self) -> Template | None:
        """The head up to the end of its first sentence, when that sentence alone names the message (at least
        MIN_SENTENCE literal characters) and more of the message follows it: reports often quote only that much
        (a cut log line, a title). None otherwise."""
        parts = self.head().parts
        literal = 0
        for index, part in enumerate(parts):
            if isinstance(part, Hole):
                continue
            for match in _SENTENCE_END.finditer(part):
                if literal + len(part[: match.start() + 1].strip()) < MIN_SENTENCE:
                    continue
                rest = part[match.end() :] + "".join(p for p in parts[index + 1 :] if isinstance(p, str))
                if not any(c.isalnum() for c in rest):
                    return None
                return Template.of([*parts[:index], part[: match.start() + 1]])
            literal += len(part.strip())
        return None

    def head_and_end(self) -> tuple[Template, bool, bool]:
        """The first line, trimmed (of spaces and of holes at either end), at most MAX_LITERAL literal characters
        (cut after a word); and whether the head's first character follows, and its last one is followed by, a
        line start or end, a space or the message's own start or end (not a placeholder's value or the rest of a
        cut word), wherever the message is printed."""
        out: list[Part] = []
        budget = MAX_LITERAL
        end_open = True
        for part in self.parts:
            if isinstance(part, Hole):
                out.append(part)
                continue
            text, newline, _ = part.partition("\n")
            if len(text) > budget:
                cut = text[:budget]
                end_open = " " in cut
                text, newline = (cut[: cut.rfind(" ")] if end_open else cut), "cut"
            out.append(text)
            budget -= len(text)
            if newline:
                break
        while out and (isinstance(out[-1], Hole) or not out[-1].strip()):
            dropped = out.pop()
            end_open = end_open and isinstance(dropped, str)
        start_open = True
        while out and (isinstance(out[0], Hole) or _filler(out[0], out[1:2])):
            start_open = isinstance(out.pop(0), str)  # a leading hole matches from wherever the line starts
        if out and isinstance(out[0], str):
            start_open = start_open or out[0] != out[0].lstrip()
            out[0] = out[0].lstrip()
        if out and isinstance(out[-1], str):
            end_open = end_open or out[-1] != out[-1].rstrip()
            out[-1] = out[-1].rstrip()
        return Template.of(out), start_open, end_open


def _filler(text: str, after: list[Part]) -> bool:
    """Blank text, or a little punctuation before a hole ('[{rank}] ...', '{file}:{line} ...'): a head's start
    needs neither."""
    return not text.strip() or (bool(after) and isinstance(after[0], Hole) and not any(c.isalnum() for c in text))


def regex(template: Template, used: set[str] | None = None) -> str:
    """The pattern of a template's head: literals escaped, holes as bounded groups, named when the name is
    not in `used` (the group names of the other alternatives of the same pattern; updated). A backtick is
    optional: a message pasted into a GitHub issue outside a code block loses the backticks around a name
    (Markdown shows it as code instead)."""
    parts = template.head().parts
    used = set() if used is None else used
    pieces = []
    for index, part in enumerate(parts):
        if isinstance(part, str):
            pieces.append(re.escape(part).replace("\\ ", " ").replace("`", "`?"))
            continue
        last = index == len(parts) - 1
        body = f"[^\\n]{{0,{MAX_HOLE}}}" + ("" if last else "?")
        name = part.name
        if name and name not in used and name.isidentifier():
            used.add(name)
            pieces.append(f"(?P<{name}>{body})")
        else:
            pieces.append(f"(?:{body})")
    return "".join(pieces)


# The analyzer splits a text into tokens at whitespace and at ASCII punctuation other than '_'
# (vllm_bug.analyzer.signals.text_tokens); a word of a message is a token of every text that prints it
# when a separator (or the message's own start or end) stands on both its sides.
PUNCTUATION = "".join(c for c in string.punctuation if c != "_")
_TOKEN = re.compile(r"[^\s" + re.escape(PUNCTUATION) + r"]+")  # \s: the whitespace str.split() splits at


def tokens(template: Template, open_start: bool = True, open_end: bool = True) -> list[str]:
    """Up to TOKENS_PER_FORM lower-cased tokens that every text matching `regex(template)` contains (split
    as the analyzer splits texts): longest first, at least MIN_TOKEN characters; empty when there is none.
    The message's first word counts when `open_start` (a message is printed after 'Error: ', a quote or
    at a line's start), its last when `open_end` and the head ends where the printed message does."""
    head, start_open, end_open = template.head_and_end()
    parts = head.parts
    found: set[str] = set()
    for index, part in enumerate(parts):
        if not isinstance(part, str):
            continue
        for match in _TOKEN.finditer(part):
            left = match.start() > 0 or (index == 0 and open_start and start_open)
            right = match.end() < len(part) or (index == len(parts) - 1 and open_end and end_open)
            if left and right and len(match.group()) >= MIN_TOKEN:
                found.add(match.group().lower())
    return sorted(found, key=lambda w: (-len(w), w))[:TOKENS_PER_FORM]


# -- C sources ---------------------------------------------------------------------------------------------
_PRINTF = re.compile(r"%(?:%|[-+ #0]*(?:\d+|\*)?(?:\.(?:\d+|\*))?(?:hh|h|ll|l|z|j|t|L)?[diouxXeEfgGcsp])")


def printf_template(fmt: str) -> Template:
    """A printf format string as a template ('%%' is a literal percent sign)."""
    parts: list[Part] = []
    pos = 0
    for match in _PRINTF.finditer(fmt):
        parts.append(fmt[pos : match.start()])
        parts.append("%" if match.group() == "%%" else Hole())
        pos = match.end()
    parts.append(fmt[pos:])
    return Template.of(parts)


_C_STRING = re.compile(r'"((?:[^"\\\n]|\\.)*)"')


def c_literal(text: str) -> str:
    """The value of adjacent C string literals ("a" "b" -> ab), with the common escapes decoded."""
    joined = "".join(m.group(1) for m in _C_STRING.finditer(text))
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "0": ""}.get(m.group(1), m.group(1)), joined)


# -- Python sources ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PyMessage:
    exception: str
    template: Template
    excerpt: str  # the message expression's source, after the assignments of the variables it shows
    line: int


def python_messages(source: str) -> list[PyMessage]:
    """Messages of `raise X(...)`, `assert ..., msg` and of exception classes' `__str__`, in source order.
    Only messages built from literals (f-strings, +, .format, %) are kept; a message held in a variable
    is resolved from that variable's assignments earlier in the same function."""
    tree = ast.parse(source)
    lines = io.StringIO(source, newline="").readlines()  # the line ends ast counts (not form feeds)
    found: list[PyMessage] = []
    for scope, node in _statements(tree):
        built = _message_of(node, scope, lines)
        if built is not None:
            found.append(built)
    return found


def _statements(tree: ast.Module) -> Iterator[tuple[ast.AST, ast.AST]]:
    """(enclosing function or module, node) for every raise, assert and exception __str__ return."""

    def visit(node: ast.AST, scope: ast.AST, klass: ast.ClassDef | None) -> Iterator[tuple[ast.AST, ast.AST]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.ClassDef):
                yield from visit(child, scope, child)
            elif isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                if child.name == "__str__" and klass is not None and _is_exception_class(klass):
                    for ret in ast.walk(child):
                        if isinstance(ret, ast.Return) and ret.value is not None:
                            yield child, ret
                yield from visit(child, child, None)
            else:
                if isinstance(child, ast.Raise | ast.Assert):
                    yield scope, child
                yield from visit(child, scope, klass)

    yield from visit(tree, tree, None)


def _is_exception_class(klass: ast.ClassDef) -> bool:
    return any(_name(base).endswith(("Error", "Exception", "Resources")) for base in klass.bases)


def _name(node: ast.AST) -> str:
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        return node.attr
    if isinstance(node, ast.Call):
        return _name(node.func)
    return ""


def _message_of(node: ast.AST, scope: ast.AST, lines: list[str]) -> PyMessage | None:
    if isinstance(node, ast.Raise):
        exc = node.exc
        if not isinstance(exc, ast.Call) or not exc.args:
            return None
        exception = _name(exc.func)
        if not exception.endswith(("Error", "Exception", "Exit")):
            return None
        expr: ast.expr = exc.args[0]
    elif isinstance(node, ast.Assert):
        if node.msg is None:
            return None
        exception, expr = "AssertionError", node.msg
    elif isinstance(node, ast.Return) and node.value is not None and isinstance(scope, ast.FunctionDef):
        exception, expr = "", node.value
    else:
        return None
    resolved = _resolve(expr, scope, node.lineno, lines)
    if resolved is None:
        return None
    parts, excerpt = resolved
    template = Template.of(parts)
    if template.head().literal_chars() < MIN_LITERAL:
        return None
    return PyMessage(exception, template, excerpt, node.lineno)


def log_calls(source: str, methods: tuple[str, ...]) -> list[tuple[str, PyMessage]]:
    """(method, message) of every `logger.<method>(...)` call (logger, _logger or self.logger) whose message is
    built from literals, in source order. The message is %-formatted when arguments follow it (logging leaves a
    lone message as it is); the excerpt ends with the whole call, so the arguments show."""
    tree = ast.parse(source)
    lines = io.StringIO(source, newline="").readlines()
    found: list[tuple[str, PyMessage]] = []

    def visit(node: ast.AST, scope: ast.AST) -> None:
        for child in ast.iter_child_nodes(node):
            if _is_log_call(child, methods):
                assert isinstance(child, ast.Call) and isinstance(child.func, ast.Attribute)
                resolved = _resolve(child.args[0], scope, child.lineno, lines, shown=child)
                if resolved is not None:
                    parts, excerpt = resolved
                    if len(child.args) > 1:
                        parts, excerpt = _log_arguments(parts, excerpt, child, scope, lines)
                    template = Template.of(parts)
                    if template.head().literal_chars() >= MIN_LITERAL:
                        found.append((child.func.attr, PyMessage("", template, excerpt, child.lineno)))
            visit(child, child if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef) else scope)

    visit(tree, tree)
    return sorted(found, key=lambda item: item[1].line)


def _log_arguments(
    parts: list[Part], excerpt: str, call: ast.Call, scope: ast.AST, lines: list[str]
) -> tuple[list[Part], str]:
    """A logged message's %-placeholders filled: each argument that is a variable holding literal text (assigned
    earlier in the function) gives that text, the others stay placeholders; the assignments read join the
    excerpt."""
    formatted = [
        (piece, isinstance(part, str))
        for part in parts
        for piece in (_percent_template(part).parts if isinstance(part, str) else [part])
    ]
    arguments = iter(call.args[1:])
    out: list[Part] = []
    statements: list[str] = []
    for part, from_percent in formatted:
        argument = next(arguments, None) if isinstance(part, Hole) and from_percent else None
        found = _variable(argument.id, scope, call.lineno, lines) if isinstance(argument, ast.Name) else None
        if found is None:
            out.append(part)
            continue
        out.extend(found[0])
        statements.extend(found[1])
    return out, "\n".join([*statements, excerpt]) if statements else excerpt


def _is_log_call(node: ast.AST, methods: tuple[str, ...]) -> bool:
    if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.args):
        return False
    owner = node.func.value
    return node.func.attr in methods and (
        (isinstance(owner, ast.Name) and owner.id in ("logger", "_logger"))
        or (isinstance(owner, ast.Attribute) and owner.attr == "logger")
    )


def _resolve(
    expr: ast.expr, scope: ast.AST, line: int, lines: list[str], shown: ast.expr | None = None
) -> tuple[list[Part], str] | None:
    """The message's template and its excerpt (ending with `shown`'s source, by default the message's own).
    A variable (the whole message, or a field of an f-string)
    that holds literal text assigned earlier in the function is followed: the excerpt then lists those
    assignments, one statement a line, before the message expression."""
    statements: list[str] = []

    def variable(name: str) -> list[Part] | None:
        found = _variable(name, scope, line, lines)
        if found is None:
            return None
        parts, assignments = found
        statements.extend(a for a in assignments if a not in statements)
        return parts

    parts = variable(expr.id) if isinstance(expr, ast.Name) else expr_parts(expr, variable)
    if parts is None:
        return None
    final = segment(lines, shown or expr)
    return parts, "\n".join([*statements, f"({final})" if "\n" in final else final])


def _variable(name: str, scope: ast.AST, line: int, lines: list[str]) -> tuple[list[Part], list[str]] | None:
    """A message kept in a variable: its last plain assignment before `line`, then each `+=` after it, with
    the source of those statements."""
    assignments = sorted(
        (
            node
            for node in ast.walk(scope)
            if isinstance(node, ast.Assign | ast.AugAssign) and node.lineno < line and _assigns(node, name)
        ),
        key=lambda node: node.lineno,
    )
    start = max((i for i, node in enumerate(assignments) if isinstance(node, ast.Assign)), default=None)
    if start is None:
        return None
    parts: list[Part] = []
    statements: list[str] = []
    for node in assignments[start:]:
        if isinstance(node, ast.AugAssign) and not isinstance(node.op, ast.Add):
            return None
        piece = expr_parts(node.value)
        if piece is None:
            return None
        parts += piece
        statements.append(segment(lines, node))
    return parts, statements


def _assigns(node: ast.Assign | ast.AugAssign, name: str) -> bool:
    targets = node.targets if isinstance(node, ast.Assign) else [node.target]
    return any(isinstance(t, ast.Name) and t.id == name for t in targets)


def expr_parts(expr: ast.expr, variable: Callable[[str], list[Part] | None] | None = None) -> list[Part] | None:
    """The template of a message expression built from literals, or None when it is not one. `variable`, when
    given, turns a name shown by an f-string into the literal text it holds (None: a plain hole)."""
    if isinstance(expr, ast.Constant) and isinstance(expr.value, str):
        return [expr.value]
    if isinstance(expr, ast.JoinedStr):
        out: list[Part] = []
        for value in expr.values:
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                out.append(value.value)
            elif isinstance(value, ast.FormattedValue):
                held = variable(value.value.id) if variable and _plain_name(value) else None
                out.extend(held if held is not None else [Hole(_hole_name(value.value))])
            else:
                return None
        return out
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Add):
        left, right = expr_parts(expr.left, variable), expr_parts(expr.right, variable)
        if left is None and right is None:
            return None
        return (left if left is not None else [Hole()]) + (right if right is not None else [Hole()])
    if isinstance(expr, ast.BinOp) and isinstance(expr.op, ast.Mod):
        if isinstance(expr.left, ast.Constant) and isinstance(expr.left.value, str):
            return list(_percent_template(expr.left.value).parts)
        return None
    if (
        isinstance(expr, ast.Call)
        and isinstance(expr.func, ast.Attribute)
        and expr.func.attr == "format"
        and isinstance(expr.func.value, ast.Constant)
        and isinstance(expr.func.value.value, str)
    ):
        return _format_parts(expr.func.value.value, expr)
    return None


def _plain_name(value: ast.FormattedValue) -> bool:
    """{name} with no conversion or format spec: the variable's text is printed as it is."""
    return isinstance(value.value, ast.Name) and value.conversion == -1 and value.format_spec is None


def _format_parts(fmt: str, call: ast.Call) -> list[Part] | None:
    out: list[Part] = []
    position = 0
    try:
        fields = list(string.Formatter().parse(fmt))
    except ValueError:
        return None
    for literal, field_name, _, _ in fields:
        out.append(literal)
        if field_name is None:
            continue
        if field_name == "":
            arg = call.args[position] if position < len(call.args) else None
            position += 1
        elif field_name.isdigit():
            index = int(field_name)
            arg = call.args[index] if index < len(call.args) else None
        else:
            arg = next((k.value for k in call.keywords if k.arg == field_name.split(".")[0]), None)
        out.append(Hole(_hole_name(arg) if arg is not None else None))
    return out


def _percent_template(fmt: str) -> Template:
    """Python's %-format as a template: named fields and the %r / %a conversions (repr, ascii) are placeholders
    like printf's."""
    return printf_template(re.sub(r"%(?:\(\w+\))?([-+ #0]*\d*(?:\.\d+)?)[ra]\b|%\(\w+\)", _as_printf, fmt))


def _as_printf(match: re.Match[str]) -> str:
    return "%" + (match.group(1) or "") + ("s" if match.group().endswith(("r", "a")) else "")


def _hole_name(expr: ast.expr) -> str | None:
    """The name a placeholder's group gets: the variable or attribute it shows (`self.world_size` -> world_size)."""
    if isinstance(expr, ast.Name):
        return expr.id
    if isinstance(expr, ast.Attribute):
        return expr.attr
    return None


def segment(lines: list[str], node: ast.expr | ast.stmt) -> str:
    """The node's source text (as ast.get_source_segment, without re-splitting the file each time); lines
    after the first lose their indentation (they sit inside brackets)."""
    first, last = node.lineno - 1, (node.end_lineno or node.lineno) - 1
    chunk = [line.encode() for line in lines[first : last + 1]]
    end = node.end_col_offset if node.end_col_offset is not None else len(chunk[-1])
    if len(chunk) == 1:
        text = chunk[0][node.col_offset : end].decode()
    else:
        text = b"".join([chunk[0][node.col_offset :], *chunk[1:-1], chunk[-1][:end]]).decode()
    if '"""' in text or "'''" in text or "\\\n" in text:
        return text  # in a triple-quoted string or after a backslash, indentation belongs to the message
    pieces = text.split("\n")
    return "\n".join([pieces[0]] + [piece.strip() for piece in pieces[1:]])
