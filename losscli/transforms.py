"""``--map 'NAME = EXPR'``: replace an input tensor by a PyTorch expression of the inputs.

A map is one line of PyTorch, so that the same text pastes into a training script. It is
parsed with :mod:`ast` and interpreted here, node by node, over a whitelist; nothing is
ever given to ``eval``, ``exec`` or ``compile``. Parsing (:func:`parse_map`) checks the
whole grammar statically and imports neither torch nor numpy; evaluation (:func:`apply_maps`) imports
torch and calls, for every node, the torch operator, method or function of that name, so
the result is bit for bit what the same line gives in Python.

Grammar (anything else is a :class:`~losscli.errors.UsageError` naming the part)::

    map        := NAME "=" expr                  NAME: one of the loss's input names
    expr       := NAME                           an input, as loaded
                | literal                        int, float, bool
                | expr binop expr                + - * / // ** % & |
                | expr cmpop expr                == != < <= > >= (one, not chained)
                | "-" expr | "~" expr
                | expr "[" index "]"             index: constant ints, slices of
                                                 constant ints (or empty bounds),
                                                 ``...``, and tuples of those
                | expr "." METHOD "(" args ")"   METHOD: see :data:`METHODS`
                | "torch.where" "(" args ")"
                | ("F" | "torch.nn.functional") ".one_hot" "(" args ")"
    args       := positional and keyword arguments as :data:`METHODS` and
                  :data:`FUNCTIONS` allow; an argument is an expr, ``None``, a tuple of
                  literals (``.permute((1, 0))``) or a dtype (``torch.float32`` ... see
                  :data:`DTYPES`); ``.to()`` takes a dtype. No ``None`` new axis in
                  subscripts, no ``torch.X``/``F.X`` but the two functions above.

Limits: the text holds at most :data:`MAX_TEXT_LENGTH` characters and nests at most
:data:`MAX_DEPTH` syntax-tree levels; an integer literal, and the result of arithmetic on
literals only (``2 ** 10``, evaluated in Python as a script would), must fit in 64 bits
(``10 ** 100`` is refused before it is computed). Before computing a node that allocates
(everything but views and subscripts), its result shape and dtype are worked out on
torch's ``meta`` device, which allocates nothing; a result larger than both its operands
and the memory budget is refused (an ``(N, 1) + (N,)`` broadcast makes ``(N, N)``).
``F.one_hot`` without ``num_classes`` is judged with the class count it will read
(the input's maximum + 1).

Results come back as numpy arrays: a ``bfloat16`` result as ``float32`` (numpy has no
bfloat16), and a Python number (a map of literals only) as a 0-d numpy array of Python's
type (float64 for a float). Inputs are shared with torch, not copied, when they are
writable, native and C-contiguous; so a map that is a view (``input[:, 1]``,
``x1.squeeze(1)``, ``target = input``) returns an array sharing memory with its input.
"""

from __future__ import annotations

import ast
import copy
import math
import operator
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from losscli.errors import UsageError

if TYPE_CHECKING:  # numpy and torch are imported where maps are applied, not parsed
    import numpy as np

MAX_TEXT_LENGTH = 1000
MAX_DEPTH = 64
# the most dimensions a shape or a permutation given as separate arguments may list
MAX_DIMS = 16
# integer literals and literal-only integer arithmetic stay within int64's magnitude
MAX_INTEGER = 1 << 63
# Names that are modules, never inputs (no loss has an argument with these names).
NAMESPACES = frozenset({"torch", "F"})

DTYPES = (
    "float32",
    "float64",
    "float16",
    "bfloat16",
    "half",
    "float",
    "double",
    "int64",
    "long",
    "int32",
    "int",
    "int16",
    "int8",
    "uint8",
    "bool",
)


@dataclass(frozen=True)
class Signature:
    """What a whitelisted tensor method or torch function accepts.

    Attributes:
        fewest: the fewest arguments, positional and keyword together.
        most: the most arguments, positional and keyword together.
        positional: the most positional arguments.
        keywords: the keyword arguments accepted.
        view: the result never needs more memory than the receiver (a view, or a copy of
            the same values), so the memory guard skips it.
        dtype_argument: the one argument must be a dtype (``.to(torch.float32)``).
        first_positional: the leading arguments that must be positional (``F.one_hot``'s
            tensor).
        needs: the argument (position, keyword) without which the call mixes all samples
            (``sum()`` reduces everything; ``F.one_hot`` reads the class count from the
            data); None when the call never needs one.
        unset: the values of that argument that mean "not given" (as ``ast.unparse``
            writes them): ``None``, and ``-1`` for ``num_classes``.
        mixing: why the call mixes samples without that argument.
    """

    fewest: int
    most: int
    positional: int
    keywords: tuple[str, ...] = ()
    view: bool = False
    dtype_argument: bool = False
    first_positional: int = 0
    needs: tuple[int, str] | None = None
    unset: tuple[str, ...] = ("None",)
    mixing: str = ""


def _elementwise() -> Signature:
    return Signature(0, 0, 0)


def _reduction(name: str, extra: tuple[str, ...]) -> Signature:
    return Signature(
        0,
        2 + len(extra),
        2,
        ("dim", "keepdim", *extra),
        needs=(0, "dim"),
        mixing=f".{name}() without a dim reduces over all samples",
    )


def _shape_method(keyword: str) -> Signature:
    return Signature(1, MAX_DIMS, MAX_DIMS, (keyword,), view=True)


# The tensor methods, in the order messages list them.
METHODS: dict[str, Signature] = {
    "squeeze": Signature(
        0,
        1,
        1,
        ("dim",),
        view=True,
        needs=(0, "dim"),
        mixing=".squeeze() without a dim also drops the sample dimension of a one-sample chunk",
    ),
    "unsqueeze": Signature(1, 1, 1, ("dim",), view=True),
    "permute": _shape_method("dims"),
    "transpose": Signature(2, 2, 2, ("dim0", "dim1"), view=True),
    "flatten": Signature(0, 2, 2, ("start_dim", "end_dim"), view=True),
    "reshape": _shape_method("shape"),
    "view": Signature(1, MAX_DIMS, MAX_DIMS, ("size", "dtype"), view=True),
    "float": _elementwise(),
    "double": _elementwise(),
    "long": _elementwise(),
    "int": _elementwise(),
    "to": Signature(1, 1, 1, ("dtype",), dtype_argument=True),
    "argmax": _reduction("argmax", ()),
    "sum": _reduction("sum", ("dtype",)),
    "mean": _reduction("mean", ("dtype",)),
    "log": _elementwise(),
    "exp": _elementwise(),
    "sigmoid": _elementwise(),
    "logit": Signature(0, 1, 1, ("eps",)),
    "softmax": Signature(1, 2, 2, ("dim", "dtype")),
    "log_softmax": Signature(1, 2, 2, ("dim", "dtype")),
    "clamp": Signature(1, 2, 2, ("min", "max")),
    "abs": _elementwise(),
    "sqrt": _elementwise(),
    "sign": _elementwise(),
    "round": Signature(0, 1, 0, ("decimals",)),
    "masked_fill": Signature(2, 2, 2, ("mask", "value")),
    "where": Signature(2, 2, 2, ("condition", "other")),
}


@dataclass(frozen=True)
class Function:
    """A whitelisted torch function.

    Attributes:
        display: how messages write it.
        attributes: the attribute path from the ``torch`` module to the function.
        signature: what it accepts.
    """

    display: str
    attributes: tuple[str, ...]
    signature: Signature


_ONE_HOT = Function(
    "F.one_hot",
    ("nn", "functional", "one_hot"),
    Signature(
        1,
        2,
        2,
        ("num_classes",),
        first_positional=1,
        needs=(1, "num_classes"),
        unset=("None", "-1"),
        mixing="F.one_hot() without num_classes reads the class count from all samples",
    ),
)

# dotted path as written -> the function
FUNCTIONS: dict[tuple[str, ...], Function] = {
    ("torch", "where"): Function(
        "torch.where", ("where",), Signature(3, 3, 3, ("condition", "input", "other"))
    ),
    ("F", "one_hot"): _ONE_HOT,
    ("torch", "nn", "functional", "one_hot"): _ONE_HOT,
}

BINARY_OPERATORS: dict[type[ast.operator], tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
    ast.FloorDiv: ("//", operator.floordiv),
    ast.Pow: ("**", operator.pow),
    ast.Mod: ("%", operator.mod),
    ast.BitAnd: ("&", operator.and_),
    ast.BitOr: ("|", operator.or_),
}
COMPARISONS: dict[type[ast.cmpop], tuple[str, Callable[[Any, Any], Any]]] = {
    ast.Eq: ("==", operator.eq),
    ast.NotEq: ("!=", operator.ne),
    ast.Lt: ("<", operator.lt),
    ast.LtE: ("<=", operator.le),
    ast.Gt: (">", operator.gt),
    ast.GtE: (">=", operator.ge),
}
UNARY_OPERATORS: dict[type[ast.unaryop], tuple[str, Callable[[Any], Any]]] = {
    ast.USub: ("-", operator.neg),
    ast.Invert: ("~", operator.invert),
}
_OTHER_SYMBOLS: dict[type[ast.AST], str] = {
    ast.MatMult: "@",
    ast.BitXor: "^",
    ast.LShift: "<<",
    ast.RShift: ">>",
    ast.UAdd: "unary +",
    ast.Not: "not",
    ast.Is: "is",
    ast.IsNot: "is not",
    ast.In: "in",
    ast.NotIn: "not in",
}
# Syntax that is refused whatever it holds: node type -> what messages call it.
_REFUSED_SYNTAX: dict[type[ast.AST], str] = {
    ast.Lambda: "lambdas",
    ast.ListComp: "list comprehensions",
    ast.SetComp: "set comprehensions",
    ast.DictComp: "dict comprehensions",
    ast.GeneratorExp: "generator expressions",
    ast.JoinedStr: "f-strings",
    ast.FormattedValue: "f-strings",
    ast.NamedExpr: "assignment expressions (:=)",
    ast.Starred: "starred expressions",
    ast.Dict: "dict literals",
    ast.Set: "set literals",
    ast.List: "list literals",
    ast.IfExp: "if-else expressions",
    ast.BoolOp: "and/or (use & and |)",
    ast.Await: "await",
    ast.Yield: "yield",
    ast.YieldFrom: "yield",
    ast.Slice: "slices outside a subscript",
    ast.Tuple: "tuples outside arguments",
}
_EXAMPLE = "--map 'target = target - 1'"


class _Unsupported(Exception):
    """A problem with one map; the public functions add the map's text to the message."""


@dataclass(frozen=True)
class Map:
    """One ``--map``: the input it replaces and the expression that replaces it.

    Attributes:
        name: the loss argument it replaces (``target``).
        expression: the expression as ``ast.unparse`` writes it (normalised spacing).
        tree: the parsed, checked expression.
    """

    name: str
    expression: str
    tree: ast.expr = field(compare=False, repr=False)

    @property
    def text(self) -> str:
        """``NAME = EXPR``, as JSON lists it and as ``--map`` takes it back."""
        return f"{self.name} = {self.expression}"

    def reads(self) -> frozenset[str]:
        """The input names the expression reads."""
        return frozenset(_input_names(self.tree))


# ---------------------------------------------------------------------------- parsing


def parse_map(text: str, names: Sequence[str], *, loss: str | None = None) -> Map:
    """Parse and check ``NAME = EXPR`` against the grammar of the module docstring.

    Args:
        text: the map as typed.
        names: the loss's input (argument) names, e.g. ``("input", "target")``.
        loss: the loss's name, for messages (``x is not an input of mse``).

    Raises:
        UsageError: the text is not ``NAME = EXPR`` or uses anything outside the whitelist.
    """
    try:
        name, tree = _parse_assignment(text)
        inputs = _Inputs(tuple(names), loss)
        inputs.check(name)
        _check_expression(tree, inputs)
    except _Unsupported as problem:
        raise UsageError(f"--map '{text}': {problem}") from None
    return Map(name, ast.unparse(tree), tree)


def parse_maps(
    texts: Sequence[str], names: Sequence[str], *, loss: str | None = None
) -> tuple[Map, ...]:
    """Parse every ``--map``; two maps of one input are refused.

    Raises:
        UsageError: a map cannot be parsed, or two replace the same input.
    """
    maps = tuple(parse_map(text, names, loss=loss) for text in texts)
    first_of: dict[str, Map] = {}
    for map_ in maps:
        if map_.name in first_of:
            raise UsageError(
                f"--map '{first_of[map_.name].text}' and --map '{map_.text}' both replace "
                f"{map_.name}: give one --map per input"
            )
        first_of[map_.name] = map_
    return maps


def _parse_assignment(text: str) -> tuple[str, ast.expr]:
    """The target name and the expression of ``NAME = EXPR``."""
    statements = _parse(text.strip(), "exec")
    assert isinstance(statements, ast.Module)
    if len(statements.body) != 1:
        count = len(statements.body)
        raise _Unsupported(
            f"holds {count} statements: write one NAME = EXPR per --map, e.g. {_EXAMPLE}"
        )
    statement = statements.body[0]
    if isinstance(statement, ast.AugAssign):
        raise _Unsupported(f"augmented assignment: write it as NAME = EXPR, e.g. {_EXAMPLE}")
    if not isinstance(statement, ast.Assign):
        raise _Unsupported(f"write it as NAME = EXPR, e.g. {_EXAMPLE}")
    if len(statement.targets) != 1 or not isinstance(statement.targets[0], ast.Name):
        raise _Unsupported(f"replace one input per --map, e.g. {_EXAMPLE}")
    return statement.targets[0].id, statement.value


def _parse_expression(text: str) -> ast.expr:
    """A bare expression (a replacement of :func:`substitute`)."""
    tree = _parse(text.strip(), "eval")
    assert isinstance(tree, ast.Expression)
    return tree.body


def _parse(text: str, mode: str) -> ast.AST:
    """``ast.parse`` within the length and depth limits."""
    if len(text) > MAX_TEXT_LENGTH:
        raise _Unsupported(f"is {len(text):,} characters long, more than {MAX_TEXT_LENGTH:,}")
    try:
        tree = ast.parse(text, mode=mode)
    except SyntaxError as error:
        raise _Unsupported(f"is not a Python expression ({error.msg})") from None
    except (RecursionError, MemoryError):
        raise _Unsupported(_too_deep()) from None
    except ValueError as error:  # null bytes
        raise _Unsupported(f"is not a Python expression ({error})") from None
    _check_depth(tree)
    return tree


def _check_depth(tree: ast.AST) -> None:
    """Refuse a tree deeper than :data:`MAX_DEPTH`, without recursing."""
    pending = [(tree, 1)]
    while pending:
        node, depth = pending.pop()
        if depth > MAX_DEPTH:
            raise _Unsupported(_too_deep())
        pending.extend((child, depth + 1) for child in ast.iter_child_nodes(node))


def _too_deep() -> str:
    return f"nests more than {MAX_DEPTH} levels deep"


# --------------------------------------------------------------------------- checking


@dataclass(frozen=True)
class _Inputs:
    """The names an expression may read, and how messages name the loss."""

    names: tuple[str, ...]
    loss: str | None

    def check(self, name: str) -> None:
        if name in self.names:
            return
        if name in NAMESPACES:
            raise _Unsupported(
                f"{name} is a module, not a tensor (supported functions: {_function_list()}; "
                f"dtypes such as torch.float32 as arguments)"
            )
        of = f" of {self.loss}" if self.loss else ""
        raise _Unsupported(f"{name} is not an input{of} (inputs: {', '.join(self.names)})")


def _check_expression(node: ast.expr, inputs: _Inputs) -> None:
    """Refuse anything in an expression outside the grammar."""
    check = _EXPRESSION_CHECKS.get(type(node))
    if check is None:
        raise _Unsupported(_refused_syntax(node))
    check(node, inputs)


def _check_name(node: ast.Name, inputs: _Inputs) -> None:
    inputs.check(node.id)


def _check_constant(node: ast.Constant, inputs: _Inputs) -> None:
    value = node.value
    if value is None:
        raise _Unsupported("None is only supported as an argument (e.g. .clamp(min=None, max=1))")
    if value is Ellipsis:
        raise _Unsupported("... is only supported in a subscript (e.g. input[..., 0])")
    if isinstance(value, (str, bytes)):
        raise _Unsupported(f"strings are not supported ({_snippet(node)})")
    if isinstance(value, complex):
        raise _Unsupported(f"complex numbers are not supported ({_snippet(node)})")
    if isinstance(value, int) and abs(value) > MAX_INTEGER:
        raise _Unsupported(
            f"the integer {_snippet(node)} is too large (integers are limited to 64 bits)"
        )


def _refuse_tuple(node: ast.Tuple, inputs: _Inputs) -> None:
    raise _Unsupported(
        f"tuples are only supported as arguments, e.g. input.permute((1, 0)), not {_snippet(node)}"
    )


def _check_tuple(node: ast.Tuple, inputs: _Inputs) -> None:
    for element in node.elts:
        if not _is_number(element):
            raise _Unsupported(f"a tuple may only hold numbers, not {_snippet(element)}")
        _check_expression(element, inputs)


def _check_binary(node: ast.BinOp, inputs: _Inputs) -> None:
    if type(node.op) not in BINARY_OPERATORS:
        raise _Unsupported(
            f"the operator {_symbol(node.op)} is not supported "
            f"(supported: {' '.join(symbol for symbol, _ in BINARY_OPERATORS.values())})"
        )
    _check_expression(node.left, inputs)
    _check_expression(node.right, inputs)
    _literal_value(node)


def _check_unary(node: ast.UnaryOp, inputs: _Inputs) -> None:
    if type(node.op) not in UNARY_OPERATORS:
        raise _Unsupported(f"{_symbol(node.op)} is not supported (supported: unary - and ~)")
    _check_expression(node.operand, inputs)
    _literal_value(node)


def _check_comparison(node: ast.Compare, inputs: _Inputs) -> None:
    if len(node.ops) != 1:
        raise _Unsupported(
            f"chained comparisons are not supported ({_snippet(node)}): write (a <= b) & (b <= c)"
        )
    if type(node.ops[0]) not in COMPARISONS:
        raise _Unsupported(
            f"the comparison {_symbol(node.ops[0])} is not supported "
            f"(supported: {' '.join(symbol for symbol, _ in COMPARISONS.values())})"
        )
    _check_expression(node.left, inputs)
    _check_expression(node.comparators[0], inputs)
    _literal_value(node)


_NOT_LITERAL = object()


def _literal_value(node: ast.expr) -> Any:
    """What arithmetic on literals only gives (folded as at run time), else ``_NOT_LITERAL``.

    Folding here refuses ``10 ** 100`` or ``1 / 0`` when the map is parsed, not applied.
    """
    if isinstance(node, ast.Constant):
        return node.value if type(node.value) in (int, float, bool) else _NOT_LITERAL
    operands: tuple[Any, ...]
    function: Callable[..., Any]
    if isinstance(node, ast.UnaryOp) and type(node.op) in UNARY_OPERATORS:
        operands = (_literal_value(node.operand),)
        symbol, function = UNARY_OPERATORS[type(node.op)]
    elif isinstance(node, ast.BinOp) and type(node.op) in BINARY_OPERATORS:
        operands = (_literal_value(node.left), _literal_value(node.right))
        symbol, function = BINARY_OPERATORS[type(node.op)]
    elif isinstance(node, ast.Compare) and len(node.ops) == 1 and type(node.ops[0]) in COMPARISONS:
        operands = (_literal_value(node.left), _literal_value(node.comparators[0]))
        symbol, function = COMPARISONS[type(node.ops[0])]
    else:
        return _NOT_LITERAL
    if any(operand is _NOT_LITERAL for operand in operands):
        return _NOT_LITERAL
    return _fold(symbol, function, operands)


def _check_subscript(node: ast.Subscript, inputs: _Inputs) -> None:
    _check_expression(node.value, inputs)
    items = node.slice.elts if isinstance(node.slice, ast.Tuple) else [node.slice]
    if not all(_is_index_item(item) for item in items):
        raise _Unsupported(
            f"the subscript [{_snippet(node.slice)}] is not supported "
            "(subscripts take constant integers, slices of them and ...)"
        )


def _is_index_item(node: ast.expr) -> bool:
    if isinstance(node, ast.Constant) and node.value is Ellipsis:
        return True
    if isinstance(node, ast.Slice):
        bounds = (node.lower, node.upper, node.step)
        return all(bound is None or _is_integer(bound) for bound in bounds)
    return _is_integer(node)


def _is_integer(node: ast.expr) -> bool:
    """A constant integer (not a bool), optionally negated, within 64 bits."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return (
        isinstance(node, ast.Constant)
        and type(node.value) is int
        and abs(node.value) <= MAX_INTEGER
    )


def _is_number(node: ast.expr) -> bool:
    """An int, float or bool literal, optionally negated."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        node = node.operand
    return isinstance(node, ast.Constant) and type(node.value) in (int, float, bool)


def _check_attribute(node: ast.Attribute, inputs: _Inputs) -> None:
    """An attribute that is not called: never an expression."""
    path = _dotted(node)
    if path is not None and path[0] in NAMESPACES and path[0] not in inputs.names:
        if _dtype_name(node) is not None:
            raise _Unsupported(
                f"{'.'.join(path)} is only supported as an argument (e.g. input.to(torch.float32))"
            )
        raise _Unsupported(f"{'.'.join(path)} is not supported")
    _check_expression(node.value, inputs)
    if node.attr in METHODS:
        raise _Unsupported(f".{node.attr} must be called: write .{node.attr}(...)")
    raise _Unsupported(
        f".{node.attr} is not supported (supported tensor methods: {_method_list()})"
    )


def _check_call(node: ast.Call, inputs: _Inputs) -> None:
    signature, display = _callee(node.func, inputs)
    _check_arguments(node, signature, display, inputs)


def _callee(func: ast.expr, inputs: _Inputs) -> tuple[Signature, str]:
    """The signature of the called method or function, and how messages write it."""
    if isinstance(func, ast.Name):
        raise _Unsupported(
            f"{func.id}() is not supported (supported functions: {_function_list()})"
        )
    if not isinstance(func, ast.Attribute):
        raise _Unsupported(f"calling {_snippet(func)} is not supported")
    path = _dotted(func)
    if path is not None and path[0] in NAMESPACES and path[0] not in inputs.names:
        return _function(path).signature, f"{'.'.join(path)}()"
    _check_expression(func.value, inputs)
    if func.attr not in METHODS:
        raise _Unsupported(
            f".{func.attr}() is not supported (supported tensor methods: {_method_list()})"
        )
    return METHODS[func.attr], f".{func.attr}()"


def _function(path: tuple[str, ...]) -> Function:
    if path in FUNCTIONS:
        return FUNCTIONS[path]
    tip = ""
    if path[-1] in METHODS:
        tip = f"; write it as a tensor method, e.g. input.{path[-1]}(...)"
    raise _Unsupported(
        f"{'.'.join(path)}() is not supported (supported functions: {_function_list()}{tip})"
    )


def _check_arguments(node: ast.Call, signature: Signature, display: str, inputs: _Inputs) -> None:
    """Argument counts, keyword names and each argument's form."""
    if any(isinstance(argument, ast.Starred) for argument in node.args):
        raise _Unsupported(f"* unpacking is not supported in {display}")
    for keyword in node.keywords:
        if keyword.arg is None:
            raise _Unsupported(f"** unpacking is not supported in {display}")
        if keyword.arg not in signature.keywords:
            takes = ", ".join(signature.keywords) or "none"
            raise _Unsupported(
                f"the keyword {keyword.arg}= is not supported by {display} "
                f"(supported keywords: {takes})"
            )
    count = len(node.args) + len(node.keywords)
    if len(node.args) > signature.positional or not signature.fewest <= count <= signature.most:
        raise _Unsupported(f"{display} does not take {_arguments_text(node)}")
    if len(node.args) < signature.first_positional:
        raise _Unsupported(f"{display} takes its tensor as the first positional argument")
    arguments = [*node.args, *(keyword.value for keyword in node.keywords)]
    for argument in arguments:
        if signature.dtype_argument and _dtype_name(argument) is None:
            raise _Unsupported(
                f"{display} takes a dtype (e.g. torch.float32), not {_snippet(argument)}"
            )
        _check_argument(argument, inputs)


def _arguments_text(node: ast.Call) -> str:
    count = len(node.args) + len(node.keywords)
    if node.keywords:
        return f"these {count} arguments ({_snippet(node)})"
    return f"{count} positional argument{'s' if count != 1 else ''}"


def _check_argument(node: ast.expr, inputs: _Inputs) -> None:
    """An argument: an expression, None, a dtype, or a tuple of numbers."""
    if isinstance(node, ast.Constant) and node.value is None:
        return
    if isinstance(node, ast.Tuple):
        _check_tuple(node, inputs)
        return
    path = _dotted(node) if isinstance(node, ast.Attribute) else None
    if path is not None and path[0] == "torch" and path[0] not in inputs.names:
        if _dtype_name(node) is None:
            raise _Unsupported(
                f"{'.'.join(path)} is not a supported dtype (supported: "
                f"{', '.join('torch.' + dtype for dtype in DTYPES)})"
            )
        return
    _check_expression(node, inputs)


_EXPRESSION_CHECKS: dict[type[ast.AST], Callable[[Any, _Inputs], None]] = {
    ast.Name: _check_name,
    ast.Constant: _check_constant,
    ast.Tuple: _refuse_tuple,
    ast.BinOp: _check_binary,
    ast.UnaryOp: _check_unary,
    ast.Compare: _check_comparison,
    ast.Subscript: _check_subscript,
    ast.Attribute: _check_attribute,
    ast.Call: _check_call,
}


def _refused_syntax(node: ast.expr) -> str:
    what = _REFUSED_SYNTAX.get(type(node), type(node).__name__)
    return f"{what} are not supported ({_snippet(node)})"


def _dotted(node: ast.expr) -> tuple[str, ...] | None:
    """``("torch", "nn", "functional")`` for ``torch.nn.functional``; None for other forms."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    parts.append(node.id)
    return tuple(reversed(parts))


def _dtype_name(node: ast.expr) -> str | None:
    """``"float32"`` for ``torch.float32``; None for anything but a supported dtype."""
    path = _dotted(node)
    if path is not None and len(path) == 2 and path[0] == "torch" and path[1] in DTYPES:
        return path[1]
    return None


def _symbol(node: ast.AST) -> str:
    return _OTHER_SYMBOLS.get(type(node), type(node).__name__)


def _snippet(node: ast.AST, width: int = 40) -> str:
    text = ast.unparse(node)
    return text if len(text) <= width else text[: width - 1] + "…"


def _method_list() -> str:
    return ", ".join(METHODS)


def _function_list() -> str:
    return ", ".join(dict.fromkeys(function.display for function in FUNCTIONS.values()))


def _input_names(tree: ast.AST) -> Iterator[str]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id not in NAMESPACES:
            yield node.id


# ------------------------------------------------------------------ rewriting maps


def substitute(map_: Map, replacements: Mapping[str, str]) -> Map:
    """The map with every read of an input replaced by an expression.

    ``substitute(parse_map("target = target - 1", ...), {"target": "target.long()"})`` is
    ``target = target.long() - 1``: the replacement is parsed and spliced in as a tree, so
    parentheses come out where precedence needs them.

    Raises:
        UsageError: a replacement is not an expression of the grammar, or the result nests
            too deeply.
    """
    try:
        parsed = {name: _parse_expression(text) for name, text in replacements.items()}
        tree = _NameReplacer(parsed).visit(copy.deepcopy(map_.tree))
        _check_depth(tree)
        _check_expression(tree, _Inputs(tuple(sorted(set(_input_names(tree)))), None))
    except _Unsupported as problem:
        given = ", ".join(f"{name} = {text}" for name, text in replacements.items())
        raise UsageError(f"--map '{map_.text}' with {given}: {problem}") from None
    return Map(map_.name, ast.unparse(tree), tree)


def renamed(map_: Map, names: Mapping[str, str]) -> Map:
    """The map with its target and every read renamed at once (``names`` may swap two)."""
    replacements = {old: ast.Name(id=new, ctx=ast.Load()) for old, new in names.items()}
    tree = _NameReplacer(replacements).visit(copy.deepcopy(map_.tree))
    return Map(names.get(map_.name, map_.name), ast.unparse(tree), tree)


class _NameReplacer(ast.NodeTransformer):
    """Replaces input names (never ``torch`` or ``F``) by copies of the given trees."""

    def __init__(self, replacements: Mapping[str, ast.expr]) -> None:
        self.replacements = replacements

    def visit_Name(self, node: ast.Name) -> ast.expr:
        if node.id in NAMESPACES or node.id not in self.replacements:
            return node
        return copy.deepcopy(self.replacements[node.id])


# ---------------------------------------------------------------------------- applying


def apply_maps(
    maps: Sequence[Map], arrays: Mapping[str, np.ndarray], limit_bytes: int
) -> dict[str, np.ndarray]:
    """The inputs with the mapped ones replaced; every map sees ``arrays`` as given.

    Args:
        maps: the parsed maps.
        arrays: input name -> array, as loaded. Never modified.
        limit_bytes: the memory budget; a node whose result would exceed it (and its
            operands) is refused before it is computed.

    Returns:
        A new dict of every input name -> array (see the module docstring on dtypes). A map
        that is a view returns a view of its input's array: copy it before reusing that
        array's buffer (a chunk buffer), and never write into it.

    Raises:
        UsageError: torch refused the expression, or a result would exceed the budget.
    """
    import torch

    evaluator = _Evaluator(torch, _Tensors(torch, arrays), limit_bytes)
    results = dict(arrays)
    for map_ in maps:
        try:
            results[map_.name] = _as_array(torch, evaluator.value(map_.tree))
        except _Unsupported as problem:
            raise UsageError(f"--map '{map_.text}': {problem}") from None
    return results


class _Tensors:
    """The inputs as tensors, converted the first time a map reads them."""

    def __init__(self, torch: Any, arrays: Mapping[str, np.ndarray]) -> None:
        self.torch = torch
        self.arrays = arrays
        self.converted: dict[str, Any] = {}

    def get(self, name: str) -> Any:
        if name not in self.converted:
            if name not in self.arrays:
                raise _Unsupported(f"{name} was not given")
            try:
                self.converted[name] = self.torch.from_numpy(_torch_ready(self.arrays[name]))
            except TypeError as error:
                raise _Unsupported(f"torch cannot read {name}: {_first_line(error)}") from None
        return self.converted[name]


def _torch_ready(array: np.ndarray) -> np.ndarray:
    """The array itself when torch can share it, else a writable C-contiguous native copy."""
    import numpy as np

    array = np.asarray(array)
    if not array.dtype.isnative:
        array = array.astype(array.dtype.newbyteorder("="))
    if array.flags.c_contiguous and array.flags.writeable:
        return array
    return np.array(array, order="C", copy=True)


_TORCH_ERRORS = (RuntimeError, TypeError, IndexError, ValueError, ArithmeticError)


class _Evaluator:
    """Evaluates checked trees node by node with torch's own operators and methods."""

    def __init__(self, torch: Any, tensors: _Tensors, limit_bytes: int) -> None:
        self.torch = torch
        self.tensors = tensors
        self.limit_bytes = limit_bytes

    def value(self, node: ast.expr) -> Any:
        handler = _HANDLERS.get(type(node))
        if handler is None:  # a tree that did not come through parse_map
            raise _Unsupported(_refused_syntax(node))
        return handler(self, node)

    def _name(self, node: ast.Name) -> Any:
        return self.tensors.get(node.id)

    def _constant(self, node: ast.Constant) -> Any:
        if type(node.value) not in (int, float, bool) and node.value is not None:
            raise _Unsupported(f"{_snippet(node)} is not supported")
        return node.value

    def _binary(self, node: ast.BinOp) -> Any:
        symbol, function = _lookup(BINARY_OPERATORS, node.op)
        return self._operate(symbol, function, (self.value(node.left), self.value(node.right)))

    def _comparison(self, node: ast.Compare) -> Any:
        if len(node.ops) != 1:
            raise _Unsupported(f"chained comparisons are not supported ({_snippet(node)})")
        symbol, function = _lookup(COMPARISONS, node.ops[0])
        operands = (self.value(node.left), self.value(node.comparators[0]))
        return self._operate(symbol, function, operands)

    def _unary(self, node: ast.UnaryOp) -> Any:
        symbol, function = _lookup(UNARY_OPERATORS, node.op)
        return self._operate(symbol, function, (self.value(node.operand),))

    def _operate(self, symbol: str, function: Callable[..., Any], operands: tuple[Any, ...]) -> Any:
        """A Python operator: folded in Python on numbers, torch's on tensors."""
        if not any(isinstance(operand, self.torch.Tensor) for operand in operands):
            return _fold(symbol, function, operands)
        return self._compute(function, operands, {})

    def _subscript(self, node: ast.Subscript) -> Any:
        tensor = self._tensor(self.value(node.value), "a subscript")
        index = self._index(node.slice)
        return self._compute(operator.getitem, (tensor, index), {}, guard=False)

    def _index(self, node: ast.expr) -> Any:
        if isinstance(node, ast.Tuple):
            return tuple(self._index(element) for element in node.elts)
        if isinstance(node, ast.Slice):
            bounds = (node.lower, node.upper, node.step)
            return slice(*(None if bound is None else self._integer(bound) for bound in bounds))
        if isinstance(node, ast.Constant) and node.value is Ellipsis:
            return Ellipsis
        return self._integer(node)

    def _integer(self, node: ast.expr) -> int:
        if not _is_integer(node):
            raise _Unsupported(f"the subscript {_snippet(node)} is not a constant integer")
        value = self.value(node)
        assert isinstance(value, int)
        return value

    def _call(self, node: ast.Call) -> Any:
        arguments = tuple(self._argument(argument) for argument in node.args)
        keywords = {str(keyword.arg): self._argument(keyword.value) for keyword in node.keywords}
        path = _dotted(node.func)
        if path is not None and path[0] in NAMESPACES:
            return self._call_function(_function(path), arguments, keywords)
        assert isinstance(node.func, ast.Attribute)
        name = node.func.attr
        if name not in METHODS:
            raise _Unsupported(f".{name}() is not supported")
        receiver = self._tensor(self.value(node.func.value), f".{name}()")
        guard = not METHODS[name].view
        return self._compute(_method(name), (receiver, *arguments), keywords, guard)

    def _call_function(
        self, function: Function, arguments: tuple[Any, ...], keywords: dict[str, Any]
    ) -> Any:
        callable_ = self.torch
        for attribute in function.attributes:
            callable_ = getattr(callable_, attribute)
        guard_keywords = keywords
        if function is _ONE_HOT and not _given(arguments, keywords, 1, "num_classes"):
            guard_keywords = {**keywords, "num_classes": self._class_count(arguments[0])}
        self._guard(callable_, arguments, guard_keywords)
        return self._compute(callable_, arguments, keywords, guard=False)  # guarded above

    def _class_count(self, tensor: Any) -> int:
        """What ``F.one_hot`` will read as the class count (-1 when it will refuse)."""
        if not isinstance(tensor, self.torch.Tensor) or tensor.dtype != self.torch.int64:
            return -1
        if tensor.numel() == 0:
            return -1
        return int(tensor.max()) + 1

    def _argument(self, node: ast.expr) -> Any:
        dtype = _dtype_name(node)
        if dtype is not None:
            return getattr(self.torch, dtype)
        if isinstance(node, ast.Constant) and node.value is None:
            return None
        if isinstance(node, ast.Tuple):
            return tuple(self.value(element) for element in node.elts)
        return self.value(node)

    def _tensor(self, value: Any, what: str) -> Any:
        if not isinstance(value, self.torch.Tensor):
            raise _Unsupported(f"{what} needs a tensor, not {value!r}")
        return value

    def _compute(
        self,
        function: Callable[..., Any],
        arguments: tuple[Any, ...],
        keywords: dict[str, Any],
        guard: bool = True,
    ) -> Any:
        """``function(*arguments, **keywords)``, guarded unless it is a view."""
        if guard:
            self._guard(function, arguments, keywords)
        try:
            return function(*arguments, **keywords)
        except _TORCH_ERRORS as error:
            raise _Unsupported(f"torch raised: {_first_line(error)}") from None

    def _guard(
        self, function: Callable[..., Any], arguments: tuple[Any, ...], keywords: dict[str, Any]
    ) -> None:
        """Refuse a result larger than both its operands and the budget, before computing it.

        The call is first made on ``meta`` stand-ins, which gives the result's shape and dtype
        and allocates nothing; when that fails, the real call raises torch's own message.
        Every whitelisted call but ``one_hot`` gives at most the broadcast of its tensors in
        the widest dtype, so when that fits the budget the meta call (whose first use costs
        about a second of torch's start-up) is not needed.
        """
        if self._surely_fits(function, (*arguments, *keywords.values())):
            return
        meta_arguments = tuple(self._meta(argument) for argument in arguments)
        meta_keywords = {name: self._meta(value) for name, value in keywords.items()}
        try:
            result = function(*meta_arguments, **meta_keywords)
        except Exception:
            return
        if not isinstance(result, self.torch.Tensor):
            return
        result_bytes = result.numel() * result.element_size()
        operand_bytes = max(
            (
                value.numel() * value.element_size()
                for value in (*arguments, *keywords.values())
                if isinstance(value, self.torch.Tensor)
            ),
            default=0,
        )
        if result_bytes > self.limit_bytes and result_bytes > operand_bytes:
            raise _Unsupported(
                f"the result would hold {tuple(result.shape)} values ({_size_text(result_bytes)}), "
                f"more than the memory budget ({_size_text(self.limit_bytes)})"
            )

    def _surely_fits(self, function: Callable[..., Any], values: tuple[Any, ...]) -> bool:
        if function is self.torch.nn.functional.one_hot:
            return False
        shapes = [value.shape for value in values if isinstance(value, self.torch.Tensor)]
        try:
            broadcast = self.torch.broadcast_shapes(*shapes)
        except RuntimeError:
            return False  # the meta call (or the real one) says what is wrong
        return math.prod(broadcast) * _WIDEST_ITEMSIZE <= self.limit_bytes

    def _meta(self, value: Any) -> Any:
        if isinstance(value, self.torch.Tensor):
            return self.torch.empty_like(value, device="meta")
        return value


# bytes per value of the widest dtype a whitelisted call can return (float64, int64)
_WIDEST_ITEMSIZE = 8

_HANDLERS: dict[type[ast.AST], Callable[[_Evaluator, Any], Any]] = {
    ast.Name: _Evaluator._name,
    ast.Constant: _Evaluator._constant,
    ast.BinOp: _Evaluator._binary,
    ast.Compare: _Evaluator._comparison,
    ast.UnaryOp: _Evaluator._unary,
    ast.Subscript: _Evaluator._subscript,
    ast.Call: _Evaluator._call,
}


def _lookup(table: Mapping[type[Any], tuple[str, Callable[..., Any]]], op: ast.AST) -> Any:
    if type(op) not in table:
        raise _Unsupported(f"the operator {_symbol(op)} is not supported")
    return table[type(op)]


def _method(name: str) -> Callable[..., Any]:
    def call(receiver: Any, *arguments: Any, **keywords: Any) -> Any:
        return getattr(receiver, name)(*arguments, **keywords)

    return call


def _given(arguments: tuple[Any, ...], keywords: Mapping[str, Any], index: int, name: str) -> bool:
    """Whether an argument was given a real value (None, and -1 for a count, mean absent)."""
    value = arguments[index] if len(arguments) > index else keywords.get(name)
    return value is not None and not (type(value) is int and value == -1)


def _fold(symbol: str, function: Callable[..., Any], operands: tuple[Any, ...]) -> Any:
    """An operator on Python numbers, as Python computes it, within 64-bit integers."""
    if not all(type(operand) in (int, float, bool) for operand in operands):
        raise _Unsupported(
            f"{symbol} on {operands!r} is not supported (only on numbers and tensors)"
        )
    if symbol == "**":
        _check_power(*operands)
    try:
        result = function(*operands)
    except OverflowError:
        raise _Unsupported(f"{_operation_text(symbol, operands)} overflows") from None
    except (ArithmeticError, TypeError, ValueError) as error:
        raise _Unsupported(
            f"{_operation_text(symbol, operands)} fails in Python: {error}"
        ) from None
    if isinstance(result, complex):
        raise _Unsupported(f"{_operation_text(symbol, operands)} is a complex number")
    if type(result) is int and abs(result) > MAX_INTEGER:
        raise _Unsupported(_too_large(symbol, operands))
    return result


def _check_power(base: Any, exponent: Any) -> None:
    """Refuse an integer power beyond 64 bits before Python computes it."""
    if not (isinstance(base, int) and isinstance(exponent, int)) or exponent <= 0:
        return
    if abs(base) > 1 and exponent * (abs(base).bit_length() - 1) >= 64:
        raise _Unsupported(_too_large("**", (base, exponent)))


def _too_large(symbol: str, operands: tuple[Any, ...]) -> str:
    return f"{_operation_text(symbol, operands)} is too large (integers are limited to 64 bits)"


def _operation_text(symbol: str, operands: tuple[Any, ...]) -> str:
    """``(-8) ** 0.5``: an operation on Python numbers as messages write it."""
    written = [f"({operand!r})" if operand < 0 else repr(operand) for operand in operands]
    if len(written) == 1:
        return f"{symbol}{written[0]}"
    return f" {symbol} ".join(written)


def _as_array(torch: Any, value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        if value.dtype == torch.bfloat16:
            value = value.float()
        return value.detach().cpu().numpy()
    if type(value) in (int, float, bool):
        import numpy as np

        return np.asarray(value)
    raise _Unsupported(f"gives {type(value).__name__} {value!r}, not a tensor")


def _first_line(error: BaseException) -> str:
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    return lines[0] if lines else type(error).__name__


def _size_text(size: int) -> str:
    """``8.0 TB``, ``512.0 MB``: binary units, as ``--memory-budget`` reads them."""
    for unit, scale in (("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if size >= scale:
            return f"{size / scale:.1f} {unit}"
    return f"{size:,} bytes"


# -------------------------------------------------------------------------- streaming


def mixing_problem(
    maps: Sequence[Map], rows: Mapping[str, np.ndarray], limit_bytes: int
) -> str | None:
    """Why a map cannot be applied chunk by chunk, or None when every map can.

    A map is judged statically first (a reduction without a dim, ``squeeze()`` without a
    dim, ``F.one_hot`` without ``num_classes``), then on the sample: applied to all of
    ``rows``, to the first row and to the rest, each result must keep one row per sample
    and the parts joined must equal the whole.

    Args:
        maps: the parsed maps.
        rows: the first few samples of each input (dimension 0 is the sample).
        limit_bytes: the memory budget, for :func:`apply_maps`.

    Raises:
        UsageError: a map fails on the whole sample (it will fail on the input too).
    """
    for map_ in maps:
        reason = _static_mixing(map_.tree) or _sample_mixing(map_, rows, limit_bytes)
        if reason:
            return (
                f"--map '{map_.text}' mixes samples ({reason}), so it cannot be applied to a "
                "streamed input; raise --memory-budget to load it whole"
            )
    return None


def _static_mixing(tree: ast.expr) -> str | None:
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        signature = _signature_of(node)
        if signature is None or signature.needs is None:
            continue
        index, keyword = signature.needs
        if not _written(node, index, keyword, signature.unset):
            return signature.mixing
    return None


def _signature_of(node: ast.Call) -> Signature | None:
    path = _dotted(node.func)
    if path is not None and path in FUNCTIONS:
        return FUNCTIONS[path].signature
    if isinstance(node.func, ast.Attribute):
        return METHODS.get(node.func.attr)
    return None


def _written(node: ast.Call, index: int, keyword: str, unset: tuple[str, ...]) -> bool:
    """Whether a call gives the argument a value other than one meaning "not given"."""
    given = [node.args[index]] if len(node.args) > index else []
    given += [item.value for item in node.keywords if item.arg == keyword]
    return any(ast.unparse(value) not in unset for value in given)


def _sample_mixing(map_: Map, rows: Mapping[str, np.ndarray], limit_bytes: int) -> str | None:
    import numpy as np

    count = min((len(array) for array in rows.values() if np.ndim(array) > 0), default=0)
    if count == 0:
        return None
    whole = _mapped(map_, rows, slice(0, count), limit_bytes)
    problem = _row_problem(whole, count)
    if problem or count < 2:
        return problem
    parts = []
    for part in (slice(0, 1), slice(1, count)):
        try:
            mapped = _mapped(map_, rows, part, limit_bytes)
        except UsageError:
            return "it fails on part of the samples"
        problem = _row_problem(mapped, part.stop - part.start)
        if problem:
            return problem
        parts.append(mapped)
    if any(part.shape[1:] != whole.shape[1:] for part in parts):
        return "applied to part of the samples it gives results of another shape"
    joined = np.concatenate(parts)
    if joined.shape != whole.shape or not _same_values(joined, whole):
        return "applied to part of the samples it gives different values"
    return None


def _mapped(map_: Map, rows: Mapping[str, np.ndarray], part: slice, limit_bytes: int) -> np.ndarray:
    sliced = {name: array[part] if array.ndim > 0 else array for name, array in rows.items()}
    return apply_maps([map_], sliced, limit_bytes)[map_.name]


def _row_problem(result: np.ndarray, count: int) -> str | None:
    """Why a result does not hold one row per sample, or None."""
    if result.ndim == 0:
        return f"applied to {_count_text(count, 'sample')} it gives a single value"
    if result.shape[0] != count:
        rows = _count_text(result.shape[0], "row")
        return f"applied to {_count_text(count, 'sample')} it gives {rows}"
    return None


def _count_text(count: int, noun: str) -> str:
    return f"{count} {noun}{'' if count == 1 else 's'}"


def _same_values(left: np.ndarray, right: np.ndarray) -> bool:
    import numpy as np

    if left.dtype.kind in "fc" or right.dtype.kind in "fc":
        return bool(np.allclose(left, right, rtol=1e-6, equal_nan=True))
    return bool(np.array_equal(left, right))
