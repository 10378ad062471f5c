#!/usr/bin/env python3
"""Fails when the modules of a crate import each other in a cycle.

For every crate of the workspace (each `src/` directory), each file is a module
(`src/audit/ledger.rs` is `audit::ledger`, `src/audit/mod.rs` or `src/audit.rs` is `audit`).
An edge A -> B is a path `crate::...` or `super::...` in A's non-test code that names B or
an item defined in B; a name a module re-exports (`pub use b::Item;`) resolves to the
module that defines it. An edge from a module to one of its own ancestors (a child using
what its parent defines or re-exports, `super::Item`) is left out: that is how a parent
shares its types with its children; a parent using its children counts. Any strongly connected
component of more than one module is reported, and the exit status is 1.

Usage: module-cycles.py [CRATE_DIR ...] (default: every directory with a Cargo.toml and
a src/ under the repository root).
"""

import os
import re
import sys

PATH = re.compile(r"\b(crate|super)((?:::[A-Za-z_][A-Za-z0-9_]*)+)")
USE_GROUP = re.compile(r"\b(?:pub(?:\([^)]*\))?\s+)?use\s+([^;]+);", re.S)


def module_files(src):
    """Maps module path tuples to their file, for one crate's src directory."""
    modules = {}
    for root, _dirs, files in os.walk(src):
        for name in files:
            if not name.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(root, name), src)
            parts = rel[:-3].split(os.sep)
            if parts[-1] in ("mod", "lib", "main"):
                parts = parts[:-1]
            if rel.startswith("bin" + os.sep):
                continue
            modules[tuple(parts)] = os.path.join(root, name)
    return modules


def code_without_tests(text):
    """The file without its `#[cfg(test)]` module and comments."""
    match = re.search(r"#\[cfg\(test\)\]\s*(?:#\[[^\]]*\]\s*)*mod\s+\w+\s*\{", text)
    if match:
        text = text[: match.start()]
    text = re.sub(r"//[^\n]*", "", text)
    return text


def expand_use(tree):
    """Expands a use tree `a::{b, c::d as e}` into ['a::b', 'a::c::d']."""
    tree = re.sub(r"\s+as\s+[A-Za-z_][A-Za-z0-9_]*", "", tree)
    tree = re.sub(r"\s+", "", tree)
    out = []

    def walk(prefix, rest):
        if rest.startswith("{") and rest.endswith("}"):
            depth, start = 0, 1
            for i, ch in enumerate(rest):
                if ch == "{":
                    depth += 1
                elif ch == "}":
                    depth -= 1
                if (ch == "," and depth == 1) or (depth == 0 and i == len(rest) - 1):
                    part = rest[start:i]
                    if part:
                        walk(prefix, part)
                    start = i + 1
            return
        head, sep, tail = rest.partition("::")
        if sep and tail.startswith("{"):
            walk(prefix + [head], tail)
        elif sep:
            walk(prefix + [head], tail)
        else:
            out.append(prefix + [head])

    walk([], tree)
    return ["::".join(p) for p in out]


def absolute(module, path, kind):
    """The absolute segments of a `crate::`/`super::` path seen from `module`."""
    segments = [s for s in path.split("::") if s]
    if kind == "crate":
        return segments
    base = list(module)
    # `super` from a file module is its parent; further `super::super` go up again.
    base = base[:-1]
    while segments and segments[0] == "super":
        base = base[:-1]
        segments = segments[1:]
    return base + segments


def main(argv):
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    crates = argv or [
        d
        for d, _dirs, files in os.walk(root)
        if "Cargo.toml" in files
        and os.path.isdir(os.path.join(d, "src"))
        and "/target" not in d
        and "/." not in d[len(root):]
    ]
    failed = False
    for crate in sorted(crates):
        src = os.path.join(crate, "src")
        modules = module_files(src)
        texts = {m: code_without_tests(open(f, encoding="utf-8").read()) for m, f in modules.items()}
        # Re-exports: (module, name) -> absolute path of what it names.
        reexports = {}
        for module, text in texts.items():
            for group in USE_GROUP.finditer(text):
                if not group.group(0).lstrip().startswith("pub"):
                    continue
                for used in expand_use(group.group(1)):
                    head = used.split("::")[0]
                    if head in ("crate", "super", "self"):
                        kind = "crate" if head == "crate" else "super"
                        rest = used[len(head):]
                        target = absolute(module, rest, kind) if head != "self" else list(module) + used.split("::")[1:]
                    elif tuple(list(module) + [head]) in modules:
                        target = list(module) + used.split("::")
                    else:
                        continue
                    reexports[(module, target[-1])] = target

        def resolve(segments, seen=0):
            """The module that defines what `segments` names."""
            for n in range(len(segments), 0, -1):
                prefix = tuple(segments[:n])
                if prefix in modules:
                    if n < len(segments) and (prefix, segments[n]) in reexports and seen < 8:
                        return resolve(reexports[(prefix, segments[n])], seen + 1)
                    return prefix
            return None

        edges = {m: set() for m in modules}
        for module, text in texts.items():
            paths = []
            for group in USE_GROUP.finditer(text):
                for used in expand_use(group.group(1)):
                    head = used.split("::")[0]
                    if head in ("crate", "super"):
                        paths.append((head, used[len(head):]))
                    elif tuple(list(module) + [head]) in modules:
                        paths.append(("crate", "::" + "::".join(list(module) + used.split("::"))))
            # Paths outside `use` items (those are expanded above).
            for match in PATH.finditer(USE_GROUP.sub("", text)):
                paths.append((match.group(1), match.group(2)))
            # A parent calling into a child by its bare name (`ddl::rewrite(..)`).
            bare = USE_GROUP.sub("", text)
            for child in modules:
                if len(child) == len(module) + 1 and child[: len(module)] == module:
                    if re.search(r"(?<![:\w])" + re.escape(child[-1]) + r"::", bare):
                        paths.append(("crate", "::" + "::".join(child)))
            for kind, path in paths:
                target = resolve(absolute(module, path, kind))
                if target is None or target == module:
                    continue
                # A module may use what its ancestors define or re-export (`super::Item`):
                # that is how a parent shares its types with its children.
                if module[: len(target)] != target:
                    edges[module].add(target)

        # Tarjan's strongly connected components.
        index, low, stack, on, comps = {}, {}, [], set(), []
        counter = [0]

        def connect(v):
            index[v] = low[v] = counter[0]
            counter[0] += 1
            stack.append(v)
            on.add(v)
            for w in edges[v]:
                if w not in index:
                    connect(w)
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
                comps.append(comp)

        sys.setrecursionlimit(10000)
        for v in modules:
            if v not in index:
                connect(v)
        name = os.path.relpath(crate, root) or "."
        for comp in comps:
            if len(comp) > 1:
                failed = True
                members = sorted("::".join(m) or "crate" for m in comp)
                print(f"{name}: import cycle among {len(comp)} modules: {', '.join(members)}")
                for m in sorted(comp):
                    inside = sorted("::".join(t) for t in edges[m] if t in comp)
                    print(f"    {'::'.join(m) or 'crate'} -> {', '.join(inside)}")
    if failed:
        print("module imports must point down the layers (ARCHITECTURE.md §1): break the cycles above")
        return 1
    print("no module import cycles")
    return 0


def self_test():
    """The check finds a planted cycle (through a re-export and a bare child path) and
    passes the same crate without it."""
    import tempfile

    with tempfile.TemporaryDirectory() as crate:
        src = os.path.join(crate, "src")
        os.makedirs(os.path.join(src, "outer"))
        files = {
            "lib.rs": "mod outer;\nmod low;\n",
            "outer/mod.rs": "mod inner;\npub use inner::Thing;\npub fn f() { inner::g(); }\n",
            "outer/inner.rs": "pub struct Thing;\npub fn g() { crate::low::h(); }\n",
            "low.rs": "use crate::outer::Thing;\npub fn h() {}\n",
        }
        for name, text in files.items():
            with open(os.path.join(src, name), "w", encoding="utf-8") as out:
                out.write(text)
        if main([crate]) != 1:
            print("self-test: a planted cycle was not found")
            return 1
        with open(os.path.join(src, "low.rs"), "w", encoding="utf-8") as out:
            out.write("pub fn h() {}\n")
        if main([crate]) != 0:
            print("self-test: a crate without cycles was refused")
            return 1
    print("self-test passed")
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--self-test"]:
        sys.exit(self_test())
    sys.exit(main(sys.argv[1:]))
