"""A Pratt parser from tokens to the AST, bounded in source length and nesting depth.

Why a module of its own: JavaScript's precedence and its few parse-time rules (`??` not mixed
with `&&`/`||` unparenthesised, no unary operand left of `**`, statements after `;` or a line
break never reached) live here, together with the limits that keep parsing and evaluation
(both recursive per AST level) within Python's recursion limit.
"""

from __future__ import annotations

from typing import Final, NoReturn

from flowcraft.model.jsexpr.errors import JSExpressionError
from flowcraft.model.jsexpr.lexer import KEYWORDS, Token, syntax_error, tokenize
from flowcraft.model.jsexpr.nodes import (
    ArrayLit,
    Binary,
    Call,
    Chain,
    Conditional,
    Ident,
    Literal,
    Logical,
    Member,
    Node,
    ObjectLit,
    Unary,
    children,
)
from flowcraft.model.jsexpr.values import to_string

# Parse limits. Depth keeps Python's recursion bounded (the parser and the interpreter recurse
# once or twice per AST level).
MAX_SOURCE_LENGTH: Final = 10_000
MAX_DEPTH: Final = 100


# Binding powers (JavaScript precedence). `??` shares ||'s level but may not be mixed with
# && or || without parentheses; `**` is right-associative and rejects a unary left operand.
_BINARY_POWER: Final = {
    "||": 3,
    "??": 3,
    "&&": 4,
    "==": 8,
    "!=": 8,
    "===": 8,
    "!==": 8,
    "<": 9,
    ">": 9,
    "<=": 9,
    ">=": 9,
    "+": 11,
    "-": 11,
    "*": 12,
    "/": 12,
    "%": 12,
    "**": 13,
}
_CONDITIONAL_POWER: Final = 2
_UNARY_POWER: Final = 14
_ABOVE_AND: Final = 5  # operands of `??` are tighter than `&&`


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.tokens = tokenize(source)
        self.index = 0
        self.depth = 0
        self.parenthesized: set[int] = set()
        self.identifiers: set[str] = set()

    @property
    def token(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind != "eof":
            self.index += 1
        return token

    def at(self, punct: str) -> bool:
        return self.token.kind == "punct" and self.token.value == punct

    def expect(self, punct: str) -> None:
        if not self.at(punct):
            self.unexpected()
        self.advance()

    def unexpected(self, token: Token | None = None) -> NoReturn:
        token = token or self.token
        if token.kind == "eof":
            syntax_error(self.source, token.pos, "unexpected end of expression")
        syntax_error(self.source, token.pos, f"unexpected token {token.text!r}")

    def enter(self) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            syntax_error(
                self.source, self.token.pos, f"expression nests deeper than {MAX_DEPTH} levels"
            )

    def parse(self) -> Node:
        node = self.expression(0)
        # flowcraft runs `return <source>`: what follows a `;` (or a line break where JavaScript
        # inserts one) is further statements, never reached. We accept expression statements.
        while self.token.kind != "eof":
            if self.at(";"):
                self.advance()
            elif not self.token.newline_before:
                self.unexpected()
            if self.token.kind != "eof" and not self.at(";"):
                self.expression(0)
        if _ast_depth(node) > MAX_DEPTH:
            syntax_error(self.source, 0, f"expression nests deeper than {MAX_DEPTH} levels")
        return node

    def expression(self, min_power: int) -> Node:
        self.enter()
        left = self.unary()
        while True:
            token = self.token
            if token.kind != "punct":
                break
            op = token.value
            if op == "?" and min_power <= _CONDITIONAL_POWER:
                self.advance()
                then = self.expression(0)
                self.expect(":")
                other = self.expression(0)
                left = Conditional(left, then, other)
                continue
            power = _BINARY_POWER.get(op)
            if power is None or power < min_power:
                break
            mixed = (op == "??" and isinstance(left, Logical) and left.op != "??") or (
                op in ("&&", "||") and isinstance(left, Logical) and left.op == "??"
            )
            if mixed and id(left) not in self.parenthesized:
                syntax_error(
                    self.source, token.pos, f"cannot mix '??' and '{op}' without parentheses"
                )
            if op == "**" and isinstance(left, Unary) and id(left) not in self.parenthesized:
                syntax_error(self.source, token.pos, "unary operator before '**' needs parentheses")
            self.advance()
            if op == "**":
                right = self.expression(power)  # right-associative
            elif op == "??":
                right = self.expression(_ABOVE_AND)
            else:
                right = self.expression(power + 1)
            left = Logical(op, left, right) if op in ("&&", "||", "??") else Binary(op, left, right)
        self.depth -= 1
        return left

    def unary(self) -> Node:
        token = self.token
        if (token.kind == "punct" and token.value in ("!", "-", "+")) or (
            token.kind == "name" and token.value in ("typeof", "void")
        ):
            self.advance()
            self.enter()
            operand = self.unary()
            self.depth -= 1
            return Unary(token.value, operand)
        return self.postfix(self.primary())

    def postfix(self, node: Node) -> Node:
        optional_chain = False
        while True:
            if self.at("."):
                self.advance()
                node = Member(node, Literal(self.property_name()), False)
            elif self.at("?."):
                self.advance()
                optional_chain = True
                if self.at("["):
                    node = Member(node, self.bracket(), True)
                elif self.at("("):
                    node = Call(node, self.arguments(), True)
                else:
                    node = Member(node, Literal(self.property_name()), True)
            elif self.at("["):
                node = Member(node, self.bracket(), False)
            elif self.at("("):
                node = Call(node, self.arguments(), False)
            else:
                break
        return Chain(node) if optional_chain else node

    def property_name(self) -> str:
        token = self.advance()
        if token.kind != "name":  # any IdentifierName, reserved words included (`a.class`)
            self.unexpected(token)
        return str(token.value)

    def bracket(self) -> Node:
        self.expect("[")
        node = self.expression(0)
        self.expect("]")
        return node

    def arguments(self) -> tuple[Node, ...]:
        self.expect("(")
        args: list[Node] = []
        while not self.at(")"):
            args.append(self.expression(0))
            if not self.at(")"):
                self.expect(",")
        self.advance()
        return tuple(args)

    def primary(self) -> Node:
        token = self.advance()
        if token.kind in ("num", "str"):
            return Literal(token.value)
        if token.kind == "name":
            name = token.value
            if name == "true":
                return Literal(True)
            if name == "false":
                return Literal(False)
            if name == "null":
                return Literal(None)
            if name in KEYWORDS:
                self.unexpected(token)
            self.identifiers.add(name)
            return Ident(name)
        if token.kind == "punct":
            if token.value == "(":
                self.enter()
                node = self.expression(0)
                self.depth -= 1
                self.expect(")")
                self.parenthesized.add(id(node))
                return node
            if token.value == "[":
                return self.array()
            if token.value == "{":
                return self.object()
        self.unexpected(token)

    def array(self) -> Node:
        items: list[Node] = []
        while not self.at("]"):
            items.append(self.expression(0))  # holes (`[1,,2]`) are not supported
            if not self.at("]"):
                self.expect(",")
        self.advance()
        return ArrayLit(tuple(items))

    def object(self) -> Node:
        entries: list[tuple[str | Node, Node]] = []
        while not self.at("}"):
            token = self.token
            key: str | Node
            if self.at("["):
                key = self.bracket()
            elif token.kind == "name":
                self.advance()
                key = str(token.value)
                if not self.at(":"):  # shorthand `{a}` reads the variable a
                    if key in KEYWORDS:
                        self.unexpected(token)
                    self.identifiers.add(key)
                    entries.append((key, Ident(key)))
                    if not self.at("}"):
                        self.expect(",")
                    continue
            elif token.kind == "str":
                self.advance()
                key = str(token.value)
            elif token.kind == "num":
                self.advance()
                key = to_string(token.value)
            else:
                self.unexpected()
            self.expect(":")
            entries.append((key, self.expression(0)))
            if not self.at("}"):
                self.expect(",")
        self.advance()
        return ObjectLit(tuple(entries))


def _ast_depth(root: Node) -> int:
    # Iterative: a left-leaning chain like `a+b+c+...` is deep but parsed without recursion.
    deepest = 0
    stack = [(root, 1)]
    while stack:
        node, depth = stack.pop()
        deepest = max(deepest, depth)
        if deepest > MAX_DEPTH:
            break
        stack.extend((child, depth + 1) for child in children(node))
    return deepest


def parse(source: str) -> tuple[Node, frozenset[str], bool]:
    """AST, free identifiers, and whether a line break precedes the first token."""
    if len(source) > MAX_SOURCE_LENGTH:
        raise JSExpressionError(
            f"expression too long ({len(source)} characters, at most {MAX_SOURCE_LENGTH})"
        )
    parser = _Parser(source)
    node = parser.parse()
    return node, frozenset(parser.identifiers), parser.tokens[0].newline_before
