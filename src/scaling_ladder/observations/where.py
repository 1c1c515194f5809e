"""``--where``: a small condition language over the observations table, never Python.

The condition is parsed with :mod:`ast` and checked against this grammar; nothing else is
accepted (no calls, attributes, subscripts, ``@variables``, lambdas or comprehensions), so a
condition can read the table and do nothing else::

    condition  := condition ("and" | "&") condition | condition ("or" | "|") condition
                | ("not" | "~") condition | "(" condition ")"
                | value (compare value)+                 # chained: 1e8 < params <= 1e9
                | value in-op list | column (a true/false one) | True | False
    compare    := "==" | "!=" | "<" | "<=" | ">" | ">="
    in-op      := "in" | "not in" | "==" | "!="              # == [...] is in [...]
    list       := "[" literal ("," literal)* "]"             # or ( ... )
    value      := column | literal | "-" value | value ("+" | "-" | "*" | "/") value
                | "(" value ")"
    column     := name | `any name`                          # backticks: `val/c4`
    literal    := number (1e8, 0.5, -3) | "text" | 'text' | True | False

``&``, ``|`` and ``~`` are read as ``and``, ``or`` and ``not``, with their precedence (as
pandas' ``query`` does), so ``params > 1e8 & tokens < 1e10`` means what it says. A row whose
value is missing fails the comparison. A problem is one :class:`InputError` that quotes the
condition and gives the 1-based column of the offending text.
"""

from __future__ import annotations

import ast
import difflib
import operator

import numpy as np
import pandas as pd
from pandas.api.types import is_bool_dtype, is_numeric_dtype

from ..errors import InputError

ALLOWED = ("allowed: column names (`odd/name` in backticks), numbers, 'text', True, False, "
           "== != < <= > >=, in [...], not in [...], and or not (& | ~), + - * /, "
           "parentheses")
_COMPARE = {ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt,
            ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge}
_ARITH = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
          ast.Div: operator.truediv}
_WHAT = {ast.Call: "a call", ast.Attribute: "an attribute", ast.Subscript: "a subscript",
         ast.Lambda: "a lambda", ast.IfExp: "an if-expression", ast.Dict: "a dict",
         ast.Set: "a set", ast.ListComp: "a comprehension", ast.SetComp: "a comprehension",
         ast.DictComp: "a comprehension", ast.GeneratorExp: "a comprehension",
         ast.JoinedStr: "an f-string", ast.NamedExpr: "an assignment (:=)",
         ast.Starred: "a starred expression", ast.Slice: "a slice", ast.Await: "await",
         ast.Yield: "yield", ast.YieldFrom: "yield"}


def where_mask(frame: pd.DataFrame, condition: str) -> np.ndarray:
    """The rows of ``frame`` where ``condition`` (the grammar above) holds, as a bool array."""
    return _Condition(condition, frame).mask()


class _Condition:
    def __init__(self, text: str, frame: pd.DataFrame) -> None:
        self.text, self.frame = text, frame
        self.source, self.start, self.end, self.columns = _rewrite(self, text)

    # -------------------------------------------------------------------------- errors

    def fail(self, problem: str, at: int | None, end: int | None = None, *,
             fix: str = ALLOWED) -> InputError:
        """An error at ``at``..``end`` (offsets into the rewritten source)."""
        if at is None or at >= len(self.start):
            where = f", at column {len(self.text) + 1} (the end)"
        else:
            a = self.start[at]
            b = self.end[max(at, min(end or at + 1, len(self.end)) - 1)]
            shown = " ".join(self.text[a:b].split()) or self.text[a:a + 1]
            where = f', at column {a + 1} ("{shown[:40]}")'
        return InputError(f'--where "{_one_line(self.text)}"', problem + where, fix=fix)

    def fail_at(self, node: ast.AST, problem: str, *, fix: str = ALLOWED) -> InputError:
        line = self.source.encode("utf-8")
        a = len(line[:node.col_offset].decode("utf-8", "ignore"))
        b = len(line[:node.end_col_offset].decode("utf-8", "ignore"))
        return self.fail(problem, a, b, fix=fix)

    # ------------------------------------------------------------------------ evaluate

    def mask(self) -> np.ndarray:
        try:
            tree = ast.parse(self.source, mode="eval")
        except SyntaxError as exc:
            at = (exc.offset - 1) if exc.offset else None
            raise self.fail(f"cannot be evaluated: {exc.msg}", at) from None
        except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, too deep
            raise self.fail(f"cannot be evaluated ({type(exc).__name__})", None) from None
        try:
            value = self.eval(tree.body)
        except RecursionError:
            raise self.fail("is nested too deeply", None) from None
        n = len(self.frame)
        if isinstance(value, (bool, np.bool_)):
            return np.full(n, bool(value))
        if isinstance(value, pd.Series) and is_bool_dtype(value.dtype):
            return value.to_numpy(dtype=bool, na_value=False)
        raise self.fail_at(tree.body, "is not a true/false condition",
                           fix='write a comparison, e.g. "params > 1e8"')

    def eval(self, node: ast.AST):
        if isinstance(node, ast.BoolOp):
            parts = [self.condition(v, "and" if isinstance(node.op, ast.And) else "or")
                     for v in node.values]
            join = operator.and_ if isinstance(node.op, ast.And) else operator.or_
            out = parts[0]
            for p in parts[1:]:
                out = join(out, p)
            return out
        if isinstance(node, ast.UnaryOp):
            if isinstance(node.op, (ast.Not, ast.Invert)):
                v = self.condition(node.operand, "not")
                return (not v) if isinstance(v, (bool, np.bool_)) else ~v
            v = self.number(node.operand, "-" if isinstance(node.op, ast.USub) else "+")
            return -v if isinstance(node.op, ast.USub) else v
        if isinstance(node, ast.BinOp):
            op = _ARITH.get(type(node.op))
            if op is None:
                raise self.fail_at(node, "this operator is not allowed")
            a, b = self.number(node.left, "arithmetic"), self.number(node.right, "arithmetic")
            return self.apply(node, op, a, b)
        if isinstance(node, ast.Compare):
            return self.compare(node)
        if isinstance(node, ast.Name):
            return self.column(node)
        if isinstance(node, ast.Constant):
            return self.literal(node)
        if isinstance(node, (ast.List, ast.Tuple)):
            raise self.fail_at(node, "a list goes after in, not in, == or !=")
        what = _WHAT.get(type(node), "this expression")
        raise self.fail_at(node, f"{what} is not allowed here")

    def column(self, node: ast.Name) -> pd.Series:
        name = self.columns.get(node.id, node.id)
        if name in self.frame.columns:
            return self.frame[name]
        names = [str(c) for c in self.frame.columns]
        close = difflib.get_close_matches(name, names, n=1)
        hint = f'did you mean "{close[0]}"? ' if close else ""
        raise self.fail_at(node, f'"{name}" is not a column of the table',
                           fix=f"{hint}the columns are {', '.join(names)} (a name with other "
                           "characters goes in backticks: `val/c4`)")

    def literal(self, node: ast.Constant):
        if isinstance(node.value, (bool, int, float, str)):
            return node.value
        raise self.fail_at(node, f"the literal {node.value!r} is not allowed here")

    def condition(self, node: ast.AST, word: str):
        v = self.eval(node)
        if isinstance(v, (bool, np.bool_)) or (isinstance(v, pd.Series)
                                               and is_bool_dtype(v.dtype)):
            return v
        raise self.fail_at(node, f'"{word}" joins true/false conditions and this is not one',
                           fix='write a comparison, e.g. "(params > 1e8) and (tokens < 1e10)"')

    def number(self, node: ast.AST, word: str):
        v = self.eval(node)
        if isinstance(v, pd.Series):
            ok = is_numeric_dtype(v.dtype) and not is_bool_dtype(v.dtype)
        else:
            ok = isinstance(v, (int, float)) and not isinstance(v, bool)
        if ok:
            return v
        raise self.fail_at(node, f"{word} needs numbers and this is not one",
                           fix="use + - * / and unary minus on numeric columns and numbers")

    def compare(self, node: ast.Compare):
        left, out = self.eval(node.left), None
        for op, right_node in zip(node.ops, node.comparators):
            if isinstance(right_node, (ast.List, ast.Tuple)):
                right = [self.item(x) for x in right_node.elts]
                if not isinstance(op, (ast.In, ast.NotIn, ast.Eq, ast.NotEq)):
                    raise self.fail_at(right_node, "a list goes after in, not in, == or !=")
                member = (left.isin(right) if isinstance(left, pd.Series)
                          else left in right)
                one = member if isinstance(op, (ast.In, ast.Eq)) else (
                    ~member if isinstance(member, pd.Series) else not member)
            elif isinstance(op, (ast.In, ast.NotIn)):
                raise self.fail_at(right_node, "in and not in take a list, e.g. "
                                   "recipe in ['c4', 'web']")
            elif type(op) in _COMPARE:
                right = self.eval(right_node)
                one = self.apply(node, _COMPARE[type(op)], left, right)
            else:  # is, is not
                raise self.fail_at(node, "this comparison is not allowed",
                                   fix="compare with == != < <= > >= or in [...]")
            out = one if out is None else out & one
            left = right
        return out

    def item(self, node: ast.AST):
        if isinstance(node, ast.Constant):
            return self.literal(node)
        if (isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd))
                and isinstance(node.operand, ast.Constant)):
            v = self.number(node.operand, "-")
            return -v if isinstance(node.op, ast.USub) else v
        raise self.fail_at(node, "a list holds numbers and text only")

    def apply(self, node: ast.AST, op, a, b):
        try:
            with np.errstate(all="ignore"):
                return op(a, b)
        except (TypeError, ValueError, ArithmeticError) as exc:
            what = " ".join(str(exc).split()) or type(exc).__name__
            fix = ("check the arithmetic" if isinstance(exc, ArithmeticError)
                   else "compare numbers with numbers and text with text")
            raise self.fail_at(node, f"cannot be evaluated ({what[:120]})", fix=fix) from None


def _rewrite(cond: _Condition, text: str):
    """``text`` as Python source: backtick names become placeholders, ``&``/``|`` become
    ``and``/``or``; ``start[i]``, ``end[i]``: the span of ``text`` that source char i came from.
    """
    prefix = "_col"
    while prefix in text:
        prefix += "_"
    out, start, end, columns = [], [], [], {}

    def emit(s: str, a: int, b: int) -> None:
        out.append(s)
        start.extend([a] * len(s))
        end.extend([b] * len(s))

    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c in "'\"":
            j = i + 1
            while j < n and text[j] != c:
                j += 2 if text[j] == "\\" else 1
            j = min(j + 1, n)
            for k in range(i, j):
                emit(" " if text[k] in "\r\n" else text[k], k, k + 1)
            i = j
        elif c == "`":
            j = text.find("`", i + 1)
            if j < 0 or j == i + 1:
                cond.start, cond.end = list(range(n)), list(range(1, n + 1))
                raise cond.fail("a backtick-quoted column name is not closed" if j < 0
                                else "an empty backtick-quoted name", i, i + 1,
                                fix="write `name`, e.g. `val/c4` > 3")
            placeholder = f"{prefix}{len(columns)}"
            columns[placeholder] = text[i + 1:j]
            emit(f" {placeholder} ", i, j + 1)
            i = j + 1
        elif c in "&|":
            emit(" and " if c == "&" else " or ", i, i + 1)
            i += 1
        elif c == "@":
            cond.start, cond.end = list(range(n)), list(range(1, n + 1))
            raise cond.fail("@ (a Python variable) is not allowed here", i, i + 1)
        else:
            emit(" " if c in "\r\n" else c, i, i + 1)
            i += 1
    source = "".join(out)
    lead = len(source) - len(source.lstrip())
    return source[lead:], start[lead:], end[lead:], columns


def _one_line(text: str) -> str:
    return text.replace("\r", " ").replace("\n", " ")  # columns stay where they were
