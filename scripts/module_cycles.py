#!/usr/bin/env python3
"""Finds import cycles between the modules of each crate of the workspace.

A module depends on another when its file names it (`crate::a::b`, `super::x`, `self::x`);
declaring a child (`mod x;`) is not an import, and neither is code under `#[cfg(test)] mod tests`.
A parent and a child that use each other's items count as a cycle like any other pair.
Prints every strongly connected component of more than one module; exits 1 when there is one.
Usage: scripts/module_cycles.py [workspace root]
"""
import os
import re
import subprocess
import sys
import json

root = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
meta = json.loads(subprocess.check_output(
    ["cargo", "metadata", "--no-deps", "--format-version", "1", "--offline"], cwd=root))


def strip_comments(text):
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r"/\*.*?\*/", "", text, flags=re.S)


def modules_of(src_root):
    """module path (tuple) -> file, for the lib or bin rooted at src_root."""
    mods = {}

    def walk(path, file):
        mods[path] = file
        text = strip_comments(open(file).read())
        base = os.path.dirname(file)
        name = os.path.basename(file)
        if name not in ("lib.rs", "main.rs", "mod.rs") and path:
            base = os.path.join(base, name[:-3])
        for m in re.finditer(r"^\s*(?:#\[[^\]]*\]\s*)*(?:pub(?:\([^)]*\))?\s+)?mod\s+(\w+)\s*;", text, re.M):
            child = m.group(1)
            attr = re.search(r'#\[path\s*=\s*"([^"]+)"\]\s*(?:pub(?:\([^)]*\))?\s+)?mod\s+' + child + r"\s*;", text)
            if attr:
                f = os.path.join(os.path.dirname(file), attr.group(1))
            else:
                f = os.path.join(base, child + ".rs")
                if not os.path.exists(f):
                    f = os.path.join(base, child, "mod.rs")
            if os.path.exists(f):
                walk(path + (child,), f)

    walk((), src_root)
    return mods


def deps(path, file, mods):
    text = strip_comments(open(file).read())
    # Inline test modules use their parent freely: they are not imports of the module.
    text = re.split(r"#\[cfg\(test\)\]\s*mod\s+tests\s*\{", text)[0]
    out = set()

    def resolve(parts):
        for n in range(len(parts), -1, -1):
            if tuple(parts[:n]) in mods:
                return tuple(parts[:n])
        return None

    for m in re.finditer(r"\b(crate|super|self)((?:::\w+)+|::\{)", text):
        kind, rest = m.group(1), m.group(2)
        names = [p for p in rest.split("::") if p and p != "{"]
        if kind == "crate":
            base = []
        elif kind == "super":
            base = list(path[:-1])
        else:
            base = list(path)
        # `super::super::x`
        while names and names[0] == "super":
            base = base[:-1]
            names = names[1:]
        if rest.endswith("{") or rest == "::{":
            # `use crate::{a, b::c}`: each item
            brace = text[m.end():text.find("}", m.end())]
            for item in brace.split(","):
                item = item.strip().split(" as ")[0]
                if item and item != "self":
                    t = resolve(base + names + item.split("::"))
                    if t:
                        out.add(t)
            t = resolve(base + names)
        else:
            t = resolve(base + names)
        if t is not None:
            out.add(t)
    # A child named without a prefix (`plan::count`, `use plan::Cursor`).
    children = {m[-1] for m in mods if len(m) == len(path) + 1 and m[:len(path)] == path}
    for m in re.finditer(r"(?<![\w:])(\w+)::", text):
        if m.group(1) in children:
            out.add(path + (m.group(1),))
    out.discard(path)
    return out


def sccs(graph):
    index, low, stack, on, out = {}, {}, [], set(), []
    counter = [0]

    def strong(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(comp)

    sys.setrecursionlimit(10000)
    for v in graph:
        if v not in index:
            strong(v)
    return out


found = False
checked = 0
for pkg in meta["packages"]:
    for target in pkg["targets"]:
        if not set(target["kind"]) & {"lib", "bin"}:
            continue
        mods = modules_of(target["src_path"])
        graph = {p: deps(p, f, mods) for p, f in mods.items()}
        checked += len(mods)
        for comp in sccs(graph):
            if len(comp) > 1:
                found = True
                names = sorted("::".join(c) or "(root)" for c in comp)
                print(f"{pkg['name']} ({target['name']}): cycle among {', '.join(names)}")
print(f"{checked} modules checked", "— cycles found" if found else "— no import cycles")
sys.exit(1 if found else 0)
