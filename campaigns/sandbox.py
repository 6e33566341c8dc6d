"""The template sandbox, bounded in time, memory and output.

Jinja's sandbox keeps templates away from Python's internals, but not from the machine: a
member could write ``{{ "x" * 30000000 }}`` and make the worker that renders it allocate
hundreds of megabytes (or die). :class:`LimitedSandbox` keeps every value a template makes
small, and :func:`render_limited` bounds one render's loop steps, calls, output and time:

* values: ``*``, ``**``, ``+`` and ``%`` are intercepted and refused before they compute a
  string, list or number larger than :attr:`Limits.value`; so are ``~`` concatenations, list
  and dict literals, the filters that can expand their input (``center``, ``indent``,
  ``replace``, ``join``, ``format``, ``wordwrap``, ``sum``, ``tojson``...) and the string
  methods that can (``ljust``, ``zfill``, ``replace``, ``join``, ``format``...);
* steps: every loop iteration and every call counts against :attr:`Limits.steps` and the
  deadline (:attr:`Limits.seconds`, checked on ``time.monotonic()``, never with signals);
* output: what loops, macros and blocks write is counted against :attr:`Limits.output`, and
  so is the whole render.

The checks are put into the template's syntax tree when it is compiled, only where a loop,
macro, block, concatenation or intercepted operator is: a template that only prints fields
renders exactly as fast as before. A limit exceeded raises :class:`TemplateLimitError`, whose
message says which limit and by how much, without any contact data.
"""

from __future__ import annotations

import contextvars
import functools
import math
import re
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from jinja2 import TemplateSyntaxError, nodes, pass_context
from jinja2.environment import Template
from jinja2.exceptions import SecurityError
from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import ImmutableSandboxedEnvironment
from jinja2.visitor import NodeTransformer


@dataclass(frozen=True)
class Limits:
    """What one render may use."""

    #: Characters of one string (or printed characters of one list or dict) a template makes.
    value: int = 100_000
    #: Characters one render writes.
    output: int = 2_000_000
    #: Loop iterations plus calls in one render.
    steps: int = 100_000
    #: Wall-clock seconds one render may take.
    seconds: float = 2.0
    #: Decimal digits of one number a template makes.
    digits: int = 4_300


DEFAULT_LIMITS = Limits()


def configured_limits() -> Limits:
    """The limits of the ``TEMPLATE_MAX_*`` settings (campaigns/settings.py: app config, else
    environment, else the :class:`Limits` defaults): what a render without explicit limits
    gets."""
    from campaigns.settings import setting

    return Limits(
        value=int(setting("TEMPLATE_MAX_VALUE")),
        output=int(setting("TEMPLATE_MAX_OUTPUT")),
        steps=int(setting("TEMPLATE_MAX_STEPS")),
        seconds=float(setting("TEMPLATE_MAX_SECONDS")),
        digits=int(setting("TEMPLATE_MAX_DIGITS")),
    )


class TemplateLimitError(SecurityError):
    """A template went over a :class:`Limits` bound; ``str()`` says which and by how much."""


def _refuse_value(size: int, limit: int, what: str = "a string") -> TemplateLimitError:
    return TemplateLimitError(
        f"The template makes {what} of {size:,} characters; the limit is {limit:,}."
    )


class _Budget:
    """One render's running totals (steps, output) and its deadline."""

    __slots__ = ("deadline", "limits", "output", "steps")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.steps = 0
        self.output = 0
        self.deadline = time.monotonic() + limits.seconds

    def step(self, chars: int = 0) -> None:
        self.steps += 1
        if chars:
            self.write(chars)
        if self.steps > self.limits.steps:
            raise TemplateLimitError(
                f"The template runs more than {self.limits.steps:,} loop steps and calls; "
                "that is the limit."
            )
        if not self.steps & 63 and time.monotonic() > self.deadline:
            self.timed_out()

    def write(self, chars: int) -> None:
        self.output += chars
        if self.output > self.limits.output:
            raise TemplateLimitError(
                f"The template writes more than {self.limits.output:,} characters; "
                "that is the limit."
            )

    def timed_out(self) -> None:
        raise TemplateLimitError(
            f"The template takes longer than {self.limits.seconds:g} seconds to render; "
            "that is the limit."
        )


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar(
    "template_budget", default=None
)


def _limits() -> Limits:
    budget = _BUDGET.get()
    return budget.limits if budget is not None else configured_limits()


#: The attribute of a template compiled by :class:`LimitedSandbox` that says whether rendering it
#: needs a step budget (it has loops, calls, macros or intercepted operators).
_NEEDS_BUDGET = "_envoy_needs_budget"

#: Nodes that make a template need a step budget (so do outputs :class:`_Guards` counts).
_COSTLY = (nodes.For, nodes.Call, nodes.Macro, nodes.CallBlock, nodes.BinExpr, nodes.Concat)


def render_limited(
    template: Template, context: dict[str, Any], limits: Limits | None = None
) -> str:
    """``template`` rendered with ``context`` within ``limits`` (by default the settings, see
    :func:`configured_limits`); raises TemplateLimitError when it goes over one (and whatever
    else the template raises)."""
    limits = limits or configured_limits()
    if not getattr(template, _NEEDS_BUDGET, True):
        # Nothing in it loops, calls or repeats: it cannot take long, only write too much.
        rendered = template.render(context)
        limit = limits.output
        if len(rendered) > limit:
            raise TemplateLimitError(
                f"The template writes more than {limit:,} characters; that is the limit."
            )
        return rendered
    budget = _Budget(limits)
    token = _BUDGET.set(budget)
    try:
        rendered = template.render(context)
    finally:
        _BUDGET.reset(token)
    # What loops and blocks made was counted as they went; this is what the render wrote.
    budget.output = 0
    budget.write(len(rendered))
    if time.monotonic() > budget.deadline:
        budget.timed_out()
    return rendered


# --------------------------------------------------------------------------- sizes


def _size(value: Any, limit: int, seen: dict[int, int] | None = None) -> int:
    """About how many characters ``value`` prints as; exact for strings. Shared parts of a
    nested structure are measured once, and measuring stops once past ``limit``."""
    if isinstance(value, (str, bytes)):
        return len(value)
    if isinstance(value, bool) or value is None:
        return 5
    if isinstance(value, int):
        return value.bit_length() * 30103 // 100000 + 2
    if not isinstance(value, (list, tuple, dict, set, frozenset)):
        return 8
    seen = {} if seen is None else seen
    known = seen.get(id(value))
    if known is not None:
        return known
    seen[id(value)] = 2  # a structure that contains itself prints as [...]
    items: Iterable[Any] = (
        (part for pair in value.items() for part in pair) if isinstance(value, dict) else value
    )
    total = 2
    for item in items:
        total += _size(item, limit, seen) + 2
        if total > limit:
            break
    seen[id(value)] = total
    return total


def _check(value: Any) -> Any:
    limit = _limits().value
    if isinstance(value, (str, bytes, list, tuple, dict, set, frozenset)):
        size = _size(value, limit)
        if size > limit:
            raise _refuse_value(size, limit, "a string" if isinstance(value, str) else "a list")
    elif isinstance(value, int):
        _check_digits(value.bit_length() * _DIGITS_PER_BIT)
    return value


_DIGITS_PER_BIT = math.log10(2)


def _check_digits(digits: float) -> None:
    limit = _limits().digits
    if digits > limit:
        raise TemplateLimitError(
            f"The template makes a number of about {int(digits):,} digits; the limit is {limit:,}."
        )


def _check_width(width: Any, what: str) -> None:
    limit = _limits().value
    if isinstance(width, int) and not isinstance(width, bool) and width > limit:
        raise TemplateLimitError(
            f"The template asks {what} for a width of {width:,}; the limit is {limit:,}."
        )


# A width or precision in a printf-style (``%10.2f``) or format-style (``{:>10}``) spec.
_PERCENT_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\d+|\*)?(?:\.(\d+|\*))?")
_NESTED_SPEC = re.compile(r"{[^{}]*:[^{}]*{")
_BRACE_SPEC = re.compile(r"{[^{}:]*:[^{}\d]*(\d+)?(?:[,_]?\.(\d+))?[^{}]*}")


def _check_spec(format_string: Any, pattern: re.Pattern[str], args: Iterable[Any] = ()) -> None:
    if not isinstance(format_string, str) or not any(c in format_string for c in "%{"):
        return
    starred = False
    for match in pattern.finditer(format_string):
        for number in match.groups():
            if number == "*":
                starred = True
            elif number:
                _check_width(int(number), "a format")
    if starred:
        for arg in args:
            _check_width(arg, "a format")


# --------------------------------------------------------------------------- operators


def _multiply(left: Any, right: Any) -> Any:
    limit = _limits().value
    for seq, times in ((left, right), (right, left)):
        if isinstance(times, int) and isinstance(seq, (str, bytes, list, tuple)):
            size = _size(seq, limit) * max(times, 0)
            if size > limit:
                raise _refuse_value(size, limit, "a string" if isinstance(seq, str) else "a list")
            return left * right
    if isinstance(left, int) and isinstance(right, int):
        _check_digits((abs(left).bit_length() + abs(right).bit_length()) * _DIGITS_PER_BIT)
    return left * right


def _power(left: Any, right: Any) -> Any:
    if isinstance(left, int) and isinstance(right, int) and abs(left) > 1 and right > 0:
        _check_digits(math.log10(abs(left)) * right)
    return left**right


def _add(left: Any, right: Any) -> Any:
    if isinstance(left, (str, list, tuple)) and isinstance(right, (str, list, tuple)):
        limit = _limits().value
        size = _size(left, limit) + _size(right, limit)
        if size > limit:
            raise _refuse_value(size, limit, "a string" if isinstance(left, str) else "a list")
    return left + right


def _modulo(left: Any, right: Any) -> Any:
    if isinstance(left, str):
        _check_spec(left, _PERCENT_SPEC, right if isinstance(right, tuple) else (right,))
        return _check(left % right)
    return left % right


_OPERATORS: dict[str, Callable[[Any, Any], Any]] = {
    "*": _multiply,
    "**": _power,
    "+": _add,
    "%": _modulo,
}

# str methods that take a width, or can multiply their input.
_WIDTH_METHODS = frozenset({"ljust", "rjust", "center", "zfill", "expandtabs"})


def _check_method(method: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Refuse a call of a value's method that would make too much; whether ``method`` is such
    a method (so its result is to be checked too)."""
    # The sandbox hands out str.format wrapped (functools.update_wrapper keeps the original).
    method = getattr(method, "__wrapped__", method)
    owner = getattr(method, "__self__", None)
    if not isinstance(owner, (str, bytes)):
        return isinstance(owner, (list, tuple, dict, set, frozenset))
    name = getattr(method, "__name__", "")
    limit = _limits().value
    if name in _WIDTH_METHODS:
        for arg in (*args, *kwargs.values()):
            _check_width(arg, name)
    elif name == "replace" and len(args) >= 2:
        old, new = args[0], args[1]
        if isinstance(old, type(owner)) and isinstance(new, type(owner)):
            count = owner.count(old) if old else len(owner) + 1  # type: ignore[arg-type]
            size = len(owner) + count * (len(new) - len(old))
            if size > limit:
                raise _refuse_value(size, limit)
    elif name in ("format", "format_map") and isinstance(owner, str):
        _check_spec(owner, _BRACE_SPEC)
        if _NESTED_SPEC.search(owner):  # a width given as an argument: "{:>{w}}"
            values = args[0].values() if name == "format_map" and args else kwargs.values()
            for arg in (*args, *values):
                _check_width(arg, "a format")
    return True


# --------------------------------------------------------------------------- filters


def _guard_filter(name: str, original: Callable[..., Any], estimate: bool = False) -> Any:
    """``original`` refusing widths over the limit before running and a result over it after;
    with ``estimate``, first measures what it would make (see :func:`_estimate`)."""
    skip = 1 if hasattr(original, "jinja_pass_arg") else 0

    @functools.wraps(original)
    def guarded(*args: Any, **kwargs: Any) -> Any:
        for arg in (*args[skip + 1 :], *kwargs.values()):
            _check_width(arg, f"the {name} filter")
        if estimate:
            args = _estimate(name, args, skip, kwargs)
        return _check(original(*args, **kwargs))

    return guarded


def _estimate(
    name: str, args: tuple[Any, ...], skip: int, kwargs: dict[str, Any]
) -> tuple[Any, ...]:
    """Refuse what the ``name`` filter would make over the limit; the arguments to call it with
    (an iterable input is read once, here, into a list)."""
    limit = _limits().value
    value, rest = args[skip], args[skip + 1 :]
    if name == "replace" and len(rest) >= 2:
        text, old, new = str(value), str(rest[0]), str(rest[1])
        count = text.count(old) if old else len(text) + 1
        if len(rest) > 2 and isinstance(rest[2], int):
            count = min(count, max(rest[2], 0))
        size = len(text) + count * (len(new) - len(old))
        if size > limit:
            raise _refuse_value(size, limit)
    elif name in ("join", "sum") and not isinstance(value, (str, dict)):
        value = list(value)
        separator = rest[0] if rest and name == "join" else kwargs.get("d", "")
        size = _size(value, limit) + len(value) * len(str(separator))
        if size > limit:
            raise _refuse_value(size, limit, "a string" if name == "join" else "a list")
    elif name == "indent":
        width = rest[0] if rest else kwargs.get("width", 4)
        text = str(value)
        per_line = len(width) if isinstance(width, str) else width if isinstance(width, int) else 0
        size = len(text) + (text.count("\n") + 1) * per_line
        if size > limit:
            raise _refuse_value(size, limit)
    elif name == "wordwrap":
        text = str(value)
        width = rest[0] if rest else kwargs.get("width", 79)
        wrap = rest[2] if len(rest) > 2 else kwargs.get("wrapstring") or "\n"
        lines = len(text) // max(width if isinstance(width, int) else 1, 1) + text.count("\n") + 1
        size = len(text) + lines * len(str(wrap))
        if size > limit:
            raise _refuse_value(size, limit)
    elif name == "format":
        _check_spec(value, _PERCENT_SPEC, (*rest, *kwargs.values()))
    elif name in ("string", "pprint", "tojson"):
        _check(value)
    return (*args[:skip], value, *rest)


#: Filters that can make more than they are given, and whether to measure before running.
_EXPANDING_FILTERS = {
    "center": False,
    "truncate": False,
    "batch": False,
    "slice": False,
    "replace": True,
    "join": True,
    "sum": True,
    "indent": True,
    "wordwrap": True,
    "format": True,
    "string": True,
    "pprint": True,
    "tojson": True,
}


@pass_context
def _bounded(context: Context, iterable: Any, literal_chars: int = 0) -> Iterator[Any]:
    """A loop's items, each iteration counted as a step writing the loop body's text."""
    budget = _BUDGET.get() or _Budget(configured_limits())
    for item in iterable:
        budget.step(literal_chars)
        yield item


@pass_context
def _counted(context: Context, value: Any) -> Any:
    """``value``, its printed size counted as output of this render."""
    budget = _BUDGET.get()
    if budget is not None:
        budget.write(_size(value, budget.limits.output))
    return value


@pass_context
def _sized(context: Context, value: Any) -> Any:
    """``value``, refused when it is larger than a value may be."""
    return _check(value)


def _filter(node: nodes.Expr, name: str, *args: Any) -> nodes.Filter:
    return nodes.Filter(
        node, name, [nodes.Const(arg) for arg in args], [], None, None, lineno=node.lineno
    )


def _literal_chars(body: list[nodes.Node]) -> int:
    """The template text one pass over ``body`` writes, not counting nested loops (they count
    their own)."""
    total = 0
    for node in body:
        if isinstance(node, nodes.TemplateData):
            total += len(node.data)
        elif not isinstance(node, nodes.For):
            total += _literal_chars(list(node.iter_child_nodes()))
    return total


class _Guards(NodeTransformer):
    """Puts the checks into a parsed template (see the module's docstring)."""

    BUFFERED = (nodes.For, nodes.Macro, nodes.CallBlock, nodes.FilterBlock, nodes.AssignBlock)

    def __init__(self, env: LimitedSandbox) -> None:
        self.env = env
        self.depth = 0  # inside loops and blocks whose output is not yielded as it is made

    def visit_For(self, node: nodes.For) -> nodes.Node:
        literal = _literal_chars(node.body)
        self._inside(node)
        node.iter = _filter(node.iter, "__bounded", literal)  # type: ignore[arg-type]
        return node

    def _inside(self, node: nodes.Node) -> nodes.Node:
        self.depth += 1
        try:
            self.generic_visit(node)
        finally:
            self.depth -= 1
        return node

    def visit_Macro(self, node: nodes.Macro) -> nodes.Node:
        return self._inside(node)

    def visit_CallBlock(self, node: nodes.CallBlock) -> nodes.Node:
        return self._inside(node)

    def visit_FilterBlock(self, node: nodes.FilterBlock) -> nodes.Node:
        return self._inside(node)

    def visit_AssignBlock(self, node: nodes.AssignBlock) -> nodes.Node:
        return self._inside(node)

    def visit_Output(self, node: nodes.Output) -> nodes.Node:
        self.generic_visit(node)
        dynamic = [child for child in node.nodes if not isinstance(child, nodes.TemplateData)]
        if self.depth or len(dynamic) * self.env.limits.value > self.env.limits.output:
            node.nodes = [
                child if isinstance(child, nodes.TemplateData) else _filter(child, "__counted")
                for child in node.nodes
            ]
        return node

    def visit_Concat(self, node: nodes.Concat) -> nodes.Node:
        self.generic_visit(node)
        return _filter(node, "__sized")

    def visit_List(self, node: nodes.List) -> nodes.Node:
        self.generic_visit(node)
        return _filter(node, "__sized")

    def visit_Dict(self, node: nodes.Dict) -> nodes.Node:
        self.generic_visit(node)
        return _filter(node, "__sized")

    def visit_Tuple(self, node: nodes.Tuple) -> nodes.Node:
        self.generic_visit(node)
        return node if node.ctx != "load" else _filter(node, "__sized")


class LimitedSandbox(ImmutableSandboxedEnvironment):
    """The immutable sandbox with :class:`Limits` on what a template makes and does."""

    intercepted_binops = frozenset(_OPERATORS)

    def __init__(self, *args: Any, limits: Limits = DEFAULT_LIMITS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.limits = limits
        for name, estimate in _EXPANDING_FILTERS.items():
            self.filters[name] = _guard_filter(name, self.filters[name], estimate)
        self.filters.update(__bounded=_bounded, __counted=_counted, __sized=_sized)

    def from_string(
        self,
        source: str | nodes.Template,
        globals: Any = None,
        template_class: type[Template] | None = None,
    ) -> Template:
        """The compiled template, marked with whether it needs a step budget to render."""
        if isinstance(source, str):
            try:
                tree = self._parse(source, None, None)
            except TemplateSyntaxError:
                self.handle_exception(source=source)
        else:
            tree = source
        template = super().from_string(tree, globals, template_class)
        needs = any(
            not isinstance(node, nodes.Filter) or node.name == "__counted"
            for node in tree.find_all((*_COSTLY, nodes.Filter))
        )
        setattr(template, _NEEDS_BUDGET, needs)
        return template

    def _parse(self, source: str, name: str | None, filename: str | None) -> nodes.Template:
        tree = super()._parse(source, name, filename)
        _Guards(self).visit(tree)
        return tree

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        """The operator, refused when it would make a value over the limits."""
        return _OPERATORS[operator](left, right)

    def call(__self, __context: Context, __obj: Any, *args: Any, **kwargs: Any) -> Any:
        """The sandbox's call, counted as a step, refused when it would make too much."""
        budget = _BUDGET.get()
        if budget is not None:
            budget.step()
        if isinstance(__obj, LoopContext) and len(args) == 1:
            # A recursive loop's next level: its iterations are steps like the first level's.
            args = (_bounded(__context, args[0]),)
        if not _check_method(__obj, args, kwargs):
            # A macro, caller() or a loop's recursion: what it writes is counted as output.
            return super().call(__context, __obj, *args, **kwargs)
        return _check(super().call(__context, __obj, *args, **kwargs))
