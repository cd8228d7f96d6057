#!/usr/bin/env python3
"""Checks http/openapi.json without a validator package (Debian 12 has
none): it parses, is OpenAPI 3.0, every operation has a summary and
responses (429 among them: every request is rate-limited), every path
parameter is declared, every $ref resolves, and every
route in http/server.c's table is described (and nothing else is).

  scripts/check-openapi.py [REPO]
"""
import json
import re
import sys

repo = sys.argv[1] if len(sys.argv) > 1 else "."
doc = json.load(open(repo + "/http/openapi.json"))
problems = []
if not str(doc.get("openapi", "")).startswith("3."):
    problems.append("openapi is not 3.x")
for k in ("title", "version"):
    if k not in doc.get("info", {}):
        problems.append("info lacks " + k)


def resolve(ref):
    node = doc
    for part in ref.lstrip("#/").split("/"):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


def walk(node, where):
    if isinstance(node, dict):
        if "$ref" in node and resolve(node["$ref"]) is None:
            problems.append("%s: $ref %s does not resolve" % (where, node["$ref"]))
        for k, v in node.items():
            walk(v, where + "/" + k)
    elif isinstance(node, list):
        for i, v in enumerate(node):
            walk(v, "%s[%d]" % (where, i))


walk(doc, "")
described = set()
for path, item in doc.get("paths", {}).items():
    names = set(re.findall(r"{(\w+)}", path))
    for method, op in item.items():
        described.add((method.upper(), re.sub(r"{\w+}", "*", path)))
        if "summary" not in op or not op.get("responses"):
            problems.append("%s %s lacks a summary or responses" % (method, path))
        elif "429" not in op["responses"]:
            problems.append("%s %s lacks 429 (every request is rate-limited)" % (method, path))
        declared = {p["name"] for p in op.get("parameters", []) if p.get("in") == "path"}
        if declared != names:
            problems.append("%s %s declares path parameters %s, the path has %s" % (method, path, sorted(declared), sorted(names)))
src = open(repo + "/http/server.c").read()
routes = set()
for m in re.finditer(r'\{"(GET|PUT|POST|DELETE)", \{([^}]*)\}', src):
    segs = re.findall(r'"([^"]*)"', m.group(2))
    routes.add((m.group(1), "/v1/" + "/".join(segs)))
if not routes:
    problems.append("no routes found in http/server.c")
for r in sorted(routes - described):
    problems.append("route %s %s is not in openapi.json" % r)
for r in sorted(described - routes):
    problems.append("openapi.json describes %s %s, which http/server.c does not serve" % r)
for p in problems:
    print("check-openapi: " + p, file=sys.stderr)
if problems:
    sys.exit(1)
print("check-openapi: %d routes described, every $ref resolves" % len(routes))
