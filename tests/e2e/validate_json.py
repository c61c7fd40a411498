#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""validate_json.py: validate JSON files against a JSON Schema (draft 2020-12), offline.

Usage: validate_json.py [-q] SCHEMA FILE...

Each FILE is read as strict JSON (no NaN/Infinity, no duplicate keys, exactly one
document) and validated with Draft202012Validator and a FormatChecker. Every error is
printed on its own line as `FILE: JSON-PATH: message` ($ is the document root), followed by
`FILE: OK` or `FILE: FAIL` (the summary line is left out with -q when the file is OK).

Exit status: 0 when every file is valid, 1 when any file has an error (or cannot be read or
parsed), 2 on a usage error or an invalid schema.

Run it with /usr/bin/python3: Debian's python3-jsonschema 4.10 is the one that supports draft
2020-12 here (Debian 12; its package description says "Draft 3-7" but 4.10 has
Draft202012Validator). Quirk of 4.10: when a nested
error occurs, the parent's unevaluatedProperties error may also list properties that were in
fact evaluated; look at the deepest path first.
"""
import json
import re
import sys

try:
    from jsonschema import Draft202012Validator, FormatChecker
    from jsonschema.exceptions import SchemaError, best_match
except ImportError as e:  # pragma: no cover
    sys.stderr.write(f"validate_json.py: {e}; install python3-jsonschema and run with /usr/bin/python3\n")
    sys.exit(2)


class JSONLoadError(Exception):
    pass


def _no_dup_pairs(pairs):
    obj = {}
    for k, v in pairs:
        if k in obj:
            raise JSONLoadError(f"duplicate key {k!r}")
        obj[k] = v
    return obj


def _bad_constant(name):
    raise JSONLoadError(f"non-standard constant {name}")


def load_strict(path):
    """Parse PATH as exactly one strict JSON document; raise JSONLoadError."""
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as e:
        raise JSONLoadError(f"cannot read: {e.strerror}") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise JSONLoadError(f"not UTF-8: {e}") from None
    if text.startswith("\ufeff"):
        raise JSONLoadError("starts with a byte order mark")
    try:
        return json.loads(text, object_pairs_hook=_no_dup_pairs, parse_constant=_bad_constant)
    except json.JSONDecodeError as e:
        raise JSONLoadError(f"invalid JSON: {e.msg} at line {e.lineno} column {e.colno}") from None


def json_path(error):
    """JSONPath of the failing instance: $.gpus[0].vf_instances[2].vf_profile"""
    out = "$"
    for p in error.absolute_path:
        if isinstance(p, int):
            out += f"[{p}]"
        elif p.isidentifier():
            out += f".{p}"
        else:
            out += "[" + json.dumps(p) + "]"
    return out


def _short(instance):
    if isinstance(instance, dict):
        return f"<object with {len(instance)} keys>"
    if isinstance(instance, list):
        return f"<array of {len(instance)}>"
    return repr(instance)


def _message(error):
    """error.message, with a huge instance repr (an object that failed a 'not') shortened
    and a 4.10 unevaluatedProperties cascade reduced to the real offenders."""
    real = _real_unevaluated(error)
    if real:
        return f"properties not allowed here: {', '.join(map(repr, real))}"
    msg = error.message
    r = repr(error.instance)
    if len(r) > 100 and r in msg:
        msg = msg.replace(r, _short(error.instance))
    return msg


def _resolve_local(root, ref):
    node = root
    for tok in ref[1:].split("/")[1:]:
        tok = tok.replace("~1", "/").replace("~0", "~")
        node = node[int(tok)] if isinstance(node, list) else node[tok]
    return node


def _rule(root, error):
    """Description of the allOf entry whose if/then/else produced the error, if any.

    Walks the absolute schema path from the root. jsonschema 4.10 leaves '$ref' out of that
    path, so a step that the current node lacks is looked up through the node's local '$ref'.
    This lets a cross-field failure ("1 was expected") name the documented rule it broke.
    """
    node, rule = root, None
    try:
        for part in error.absolute_schema_path:
            while (isinstance(node, dict) and part not in node and isinstance(node.get("$ref"), str)
                   and node["$ref"].startswith("#")):
                node = _resolve_local(root, node["$ref"])
            if part in ("then", "else") and isinstance(node, dict) and "if" in node:
                if isinstance(node.get("description"), str):
                    rule = node["description"]
            node = node[part]
    except (KeyError, IndexError, TypeError, ValueError):
        pass
    return rule


def _real_unevaluated(error):
    """jsonschema 4.10 quirk: when a declared property fails its own subschema, the parent's
    unevaluatedProperties error lists it too. Return the listed keys that the schema object
    does not declare at all (the real offenders), or None when the error is not that kind."""
    if error.validator != "unevaluatedProperties" or not isinstance(error.instance, dict):
        return None
    declared = error.schema.get("properties", {}) if isinstance(error.schema, dict) else {}
    patterns = error.schema.get("patternProperties", {}) if isinstance(error.schema, dict) else {}
    listed = [k for k in error.instance if repr(k) in error.message]
    return [k for k in listed
            if k not in declared and not any(re.search(p, k) for p in patterns)]


def describe(root, error):
    """Message of an error; for anyOf/oneOf failures add the most relevant sub-error (a
    branch of the instance's own type first), for if/then/else failures the rule's
    description."""
    msg = _message(error)
    if error.context:
        ctx = [c for c in error.context if c.validator != "type" and _real_unevaluated(c) != []]
        sub = best_match(ctx or error.context)
        sub_path = json_path(sub)
        where = "" if sub_path == json_path(error) else f" at {sub_path}"
        msg += f" (closest branch{where}: {_message(sub)})"
    rule = _rule(root, error)
    if rule:
        msg += f" [rule: {rule}]"
    return msg


def main(argv):
    args = argv[1:]
    quiet = False
    if args and args[0] == "-q":
        quiet = True
        args = args[1:]
    if len(args) < 2 or args[0] in ("-h", "--help"):
        sys.stderr.write("usage: validate_json.py [-q] SCHEMA FILE...\n")
        return 2
    schema_path, files = args[0], args[1:]
    try:
        schema = load_strict(schema_path)
        Draft202012Validator.check_schema(schema)
    except JSONLoadError as e:
        print(f"{schema_path}: {e}")
        return 2
    except SchemaError as e:
        print(f"{schema_path}: invalid schema: {json_path(e)}: {e.message}")
        return 2
    validator = Draft202012Validator(schema, format_checker=FormatChecker())

    rc = 0
    for path in files:
        try:
            doc = load_strict(path)
        except JSONLoadError as e:
            print(f"{path}: $: {e}")
            print(f"{path}: FAIL")
            rc = 1
            continue
        errors = [e for e in validator.iter_errors(doc) if _real_unevaluated(e) != []]
        errors.sort(key=lambda e: (list(map(str, e.absolute_path)), e.message))
        for e in errors:
            print(f"{path}: {json_path(e)}: {describe(schema, e)}")
        if errors:
            print(f"{path}: FAIL")
            rc = 1
        elif not quiet:
            print(f"{path}: OK")
    return rc


if __name__ == "__main__":
    sys.exit(main(sys.argv))
