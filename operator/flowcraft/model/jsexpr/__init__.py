"""A safe interpreter for the JavaScript expressions flowcraft blueprints carry.

Why it exists: flowcraft (the library whose blueprint format we run) evaluates edge `condition`
and `transform` strings either as dotted property paths (its default evaluator) or as arbitrary
JavaScript handed to `new Function` (its "unsafe" evaluator). Blueprints written for it use
comparisons, `&&`/`||`, arithmetic, `context["key"]`, `Math.round(...)` and bare context keys,
so to run them unchanged we must give those expressions the same values flowcraft gives them.
Running a JavaScript engine or Python's eval on user text is not an option inside the
operator, so this module implements the subset people actually write: a tokenizer, a Pratt
parser to a small AST, and a tree-walking interpreter with JavaScript's value semantics
(undefined vs null, `==` vs `===`, truthiness, `+` concatenation, number coercion, IEEE
division) over JSON-shaped Python values. Nothing reaches Python attributes or builtins: the
only callables are the whitelisted ones defined here, evaluation is bounded in steps and in
what it may build (`budget`), and the parse is bounded in length and depth.

What flowcraft does around the expression is replicated too, because blueprints rely on it:
  - the scope's keys that are valid identifiers become variables, and `context` is the scope's
    "context" entry when there is one (else the scope itself, minus keys that are not names);
  - hyphenated keys in scope (`route-by-total`) are rewritten textually to `context["..."]`
    before parsing, with flowcraft's exact regular expression and replacement string;
  - any runtime error (ReferenceError, TypeError reading a property of undefined, calling a
    non-function, a reserved word as a scope key) makes the whole evaluation `undefined`;
  - a source that is not JavaScript but is a dotted path (`items.0`, `123start`) is read the
    way flowcraft's default PropertyEvaluator reads it.

The stages, one module each, in the order a source goes through them:
  - `lexer`: source text to tokens (JavaScript's lexical grammar);
  - `nodes` and `parser`: tokens to an AST by a Pratt parser, with the parse limits;
  - `values`, `operators`, `builtins`: what a JavaScript value is here, its conversions, what
    the operators do, and the whitelisted globals, methods and property access;
  - `interpreter`: the tree walk with its step budget; `budget`: the memory budget every
    allocating builtin and operator charges;
  - `scope` and `program`: flowcraft's part (variables from the scope, the hyphenated-key
    rewrite, dotted paths, undefined on a runtime error) and `compile_js`, the entry point.
`errors` holds the two failures every stage may raise. The names below are the package's
public surface; everything else is internal to it.
"""

from flowcraft.model.jsexpr.budget import DEFAULT_MAX_UNITS
from flowcraft.model.jsexpr.errors import JSExpressionError
from flowcraft.model.jsexpr.interpreter import DEFAULT_MAX_STEPS
from flowcraft.model.jsexpr.parser import MAX_DEPTH, MAX_SOURCE_LENGTH
from flowcraft.model.jsexpr.program import Program, compile_js
from flowcraft.model.jsexpr.scope import rewrite_hyphenated
from flowcraft.model.jsexpr.values import UNDEFINED

__all__ = [
    "DEFAULT_MAX_STEPS",
    "DEFAULT_MAX_UNITS",
    "MAX_DEPTH",
    "MAX_SOURCE_LENGTH",
    "UNDEFINED",
    "JSExpressionError",
    "Program",
    "compile_js",
    "rewrite_hyphenated",
]
