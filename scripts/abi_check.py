#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Helper of scripts/abi-check.sh: extract the ABI of a uapi header.

Parses the UPSTREAM header (stdlib only: a small C declaration parser for
structs/unions/enums, and "$CC -dM -E" for object-like macros) and writes:

  --prog FILE   one C program that dumps, one per line, the layout of every
                upstream struct/union (sizeof, alignment, offsetof, size,
                alignment and scalar type class of every member) and the
                value of every enumerator and macro. Built without
                -DABI_ASM it is a normal program that printf()s the lines;
                built with -DABI_ASM -S it emits the same lines as
                ".ascii" directives (kernel asm-offsets style), which lets
                a foreign ABI (gcc -m32) be checked without running it.
  --decl-up F / --decl-ours F
                the declared spelling of every upstream member (type
                tokens, array bounds, bit-field width) and the presence of
                every upstream name, looked up in each header. This catches
                differences the compiler cannot see, e.g. __le64 vs __u64.
  --stats F     "structs fields constants" counts for the summary line.

Only upstream's names are listed; extra names in our header are ignored.
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile

KEYWORDS_AGG = ("struct", "union")

TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<id>[A-Za-z_]\w*)
  | (?P<num>\.?\d(?:[eEpP][+-]|[\w.])*)
  | (?P<str>"(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')
  | (?P<punct>->|<<|>>|\.\.\.|[{}\[\]();,:*=<>+\-/%&|^~!?.])
""", re.X)


class ParseError(Exception):
    pass


def strip_comments_and_cpp(text):
    """Remove comments and preprocessor lines, keep line structure."""
    out = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("/*", i):
            j = text.find("*/", i + 2)
            if j < 0:
                raise ParseError("unterminated comment")
            out.append("\n" * text.count("\n", i, j) + " ")
            i = j + 2
        elif text.startswith("//", i):
            j = text.find("\n", i)
            i = n if j < 0 else j
        elif c in "\"'":
            m = re.compile(r'%s(?:\\.|[^%s\\])*%s' % (c, c, c)).match(text, i)
            if not m:
                raise ParseError("unterminated literal")
            out.append(m.group(0))
            i = m.end()
        else:
            out.append(c)
            i += 1
    text = "".join(out)
    # Drop preprocessor directives (with their continuation lines).
    lines, res, cont = text.split("\n"), [], False
    for line in lines:
        if cont or line.lstrip().startswith("#"):
            cont = line.rstrip().endswith("\\")
            res.append("")
        else:
            res.append(line)
    return "\n".join(res)


def tokenize(text):
    toks, pos = [], 0
    while pos < len(text):
        m = TOKEN_RE.match(text, pos)
        if not m:
            raise ParseError("cannot tokenize near %r" % text[pos:pos + 30])
        pos = m.end()
        if m.lastgroup != "ws":
            toks.append(m.group(0))
    return toks


def match_close(toks, i):
    """toks[i] is an opening bracket; return index of its partner."""
    pairs = {"(": ")", "[": "]", "{": "}"}
    opener, closer, depth = toks[i], pairs[toks[i]], 0
    for j in range(i, len(toks)):
        if toks[j] == opener:
            depth += 1
        elif toks[j] == closer:
            depth -= 1
            if depth == 0:
                return j
    raise ParseError("unbalanced %s" % opener)


def split_top(toks, sep):
    """Split a token list at `sep` tokens that are not nested in brackets."""
    parts, cur, depth = [], [], 0
    for t in toks:
        if t in "([{":
            depth += 1
        elif t in ")]}":
            depth -= 1
        if t == sep and depth == 0:
            parts.append(cur)
            cur = []
        else:
            cur.append(t)
    parts.append(cur)
    return parts


def strip_attributes(toks):
    res, i = [], 0
    while i < len(toks):
        if toks[i] in ("__attribute__", "__attribute") and \
                i + 1 < len(toks) and toks[i + 1] == "(":
            i = match_close(toks, i + 1) + 1
        else:
            res.append(toks[i])
            i += 1
    return res


class Field:
    """One leaf member. path: C member designator, e.g. 'a' or 'u.b'."""

    def __init__(self, path, type_toks, dims, bitwidth, ptr):
        self.path = path
        self.type = " ".join(type_toks)
        self.dims = dims          # list of bound strings ('' = flexible)
        self.bitwidth = bitwidth  # None or width expression
        self.ptr = ptr            # number of '*'

    @property
    def flexible(self):
        return bool(self.dims) and self.dims[0].strip() == ""

    def decl(self):
        s = self.type + " " + "*" * self.ptr
        s += "".join("[%s]" % d for d in self.dims)
        if self.bitwidth is not None:
            s += " :%s" % self.bitwidth
        return re.sub(r"\s+", " ", s).strip()


class Header:
    def __init__(self, path):
        self.path = path
        self.raw = open(path, encoding="utf-8", errors="replace").read()
        self.aggs = {}       # "struct foo" -> list of Field
        self.agg_order = []
        self.enums = {}      # enum tag or "(anonymous N)" -> [names]
        self.enum_order = []
        self.enumerators = []
        self._anon = 0
        self.toks = tokenize(strip_comments_and_cpp(self.raw))
        self._parse_top()

    # -- top level -------------------------------------------------------
    def _parse_top(self):
        toks, i = self.toks, 0
        while i < len(toks):
            t = toks[i]
            if t in KEYWORDS_AGG or t == "enum":
                j = i + 1
                while j < len(toks) and toks[j] in ("__attribute__",
                                                     "__attribute"):
                    j = match_close(toks, j + 1) + 1
                tag = None
                if j < len(toks) and re.match(r"[A-Za-z_]\w*$", toks[j]):
                    tag = toks[j]
                    j += 1
                if j < len(toks) and toks[j] == "{":
                    end = match_close(toks, j)
                    body = toks[j + 1:end]
                    if t == "enum":
                        self._add_enum(tag, body)
                    else:
                        name = tag
                        if name is None:
                            # typedef struct { ... } name;
                            k = end + 1
                            k2 = k
                            while k2 < len(toks) and toks[k2] != ";":
                                k2 += 1
                            decl = strip_attributes(toks[k:k2])
                            ids = [x for x in decl
                                   if re.match(r"[A-Za-z_]\w*$", x)]
                            if i > 0 and toks[i - 1] == "typedef" and ids:
                                self._add_agg(ids[-1], body)
                        else:
                            self._add_agg("%s %s" % (t, name), body)
                    i = end + 1
                    continue
                i = j
                continue
            i += 1

    def _add_agg(self, ctype, body):
        if ctype in self.aggs:
            return
        fields = []
        self.aggs[ctype] = fields
        self.agg_order.append(ctype)
        self._parse_members(body, "", fields)

    def _add_enum(self, tag, body):
        if tag is None:
            self._anon += 1
            tag = "(anonymous %d)" % self._anon
        names = []
        for item in split_top(body, ","):
            item = strip_attributes(item)
            if item:
                names.append(item[0])
        self.enums[tag] = names
        self.enum_order.append(tag)
        self.enumerators.extend(names)

    # -- members ---------------------------------------------------------
    def _parse_members(self, body, prefix, fields):
        for decl in split_top(body, ";"):
            decl = strip_attributes(decl)
            if not decl:
                continue
            if "{" in decl:
                k = decl.index("{")
                end = match_close(decl, k)
                head, inner, rest = decl[:k], decl[k + 1:end], decl[end + 1:]
                kind = head[0] if head else "struct"
                if kind == "enum":
                    tag = head[1] if len(head) > 1 else None
                    self._add_enum(tag, inner)
                    type_toks = head
                else:
                    if len(head) > 1:
                        # tagged nested definition is visible at file scope
                        self._add_agg("%s %s" % (kind, head[1]), inner)
                    type_toks = head
                declarators = [d for d in split_top(rest, ",") if d]
                if not declarators:
                    # anonymous struct/union: members belong to the parent
                    self._parse_members(inner, prefix, fields)
                    continue
                for d in declarators:
                    f = self._declarator(type_toks, d, prefix)
                    f.type = "%s {...}" % " ".join(type_toks)
                    fields.append(f)
                    if kind != "enum":
                        sub = f.path + ("[0]" * len(f.dims)) + "."
                        self._parse_members(inner, sub, fields)
                continue
            parts = split_top(decl, ",")
            first = parts[0]
            # type tokens = everything before the first declarator name
            name_idx = self._name_index(first)
            type_toks = first[:name_idx]
            while type_toks and type_toks[-1] == "*":
                type_toks = type_toks[:-1]
            fields.append(self._declarator(type_toks,
                                           first[len(type_toks):], prefix))
            for d in parts[1:]:
                fields.append(self._declarator(type_toks, d, prefix))

    @staticmethod
    def _name_index(toks):
        """Index of the declarator identifier in `type [*] name [..] [:w]`."""
        stop = len(toks)
        for k, t in enumerate(toks):
            if t in ("[", ":"):
                stop = k
                break
        # function pointer: type (*name)(args)
        if "(" in toks[:stop]:
            k = toks.index("(")
            for j in range(k, len(toks)):
                if re.match(r"[A-Za-z_]\w*$", toks[j]):
                    return j
        for k in range(stop - 1, -1, -1):
            if re.match(r"[A-Za-z_]\w*$", toks[k]):
                return k
        raise ParseError("no member name in %r" % " ".join(toks))

    def _declarator(self, type_toks, d, prefix):
        ptr = 0
        k = 0
        while k < len(d) and d[k] == "*":
            ptr += 1
            k += 1
        if k < len(d) and d[k] == "(":       # function pointer
            name = [t for t in d if re.match(r"[A-Za-z_]\w*$", t)][0]
            return Field(prefix + name, type_toks + ["(*)(...)"], [], None, 1)
        if k >= len(d):
            raise ParseError("bad declarator %r" % " ".join(d))
        name = d[k]
        k += 1
        dims = []
        while k < len(d) and d[k] == "[":
            end = match_close(d, k)
            dims.append(" ".join(d[k + 1:end]))
            k = end + 1
        bitwidth = None
        if k < len(d) and d[k] == ":":
            bitwidth = " ".join(d[k + 1:])
        return Field(prefix + name, type_toks, dims, bitwidth, ptr)

    # -- macros ----------------------------------------------------------
    def guard(self):
        m = re.search(r"^\s*#\s*ifndef\s+(\w+)\s*\n\s*#\s*define\s+\1\b",
                      self.raw, re.M)
        return m.group(1) if m else None

    def includes(self):
        return re.findall(r"^\s*#\s*include\s*([<\"][^>\"]+[>\"])",
                          self.raw, re.M)

    def defined_names(self):
        """Names #defined in the text of this header (any kind)."""
        return set(re.findall(r"^\s*#\s*define\s+(\w+)", self.raw, re.M))


def cpp_macros(cc, incdir, src):
    with tempfile.NamedTemporaryFile("w", suffix=".c", delete=False) as f:
        f.write(src)
        name = f.name
    try:
        out = subprocess.run([cc, "-dM", "-E", "-I", incdir, name],
                             check=True, capture_output=True, text=True)
    except subprocess.CalledProcessError as e:
        sys.stderr.write(e.stderr)
        sys.exit("abi_check.py: '%s -dM -E' failed on %s" % (cc, incdir))
    finally:
        os.unlink(name)
    macros = {}
    for line in out.stdout.splitlines():
        m = re.match(r"#define (\w+)(\(?)(.*)$", line)
        if m:
            macros[m.group(1)] = (m.group(2) == "(", m.group(3).strip())
    return macros


def upstream_macros(hdr, cc, incdir, incname):
    """Object-like macros the header itself adds, in source order."""
    base_src = "".join("#include %s\n" % i for i in hdr.includes())
    full = cpp_macros(cc, incdir, base_src + "#include <%s>\n" % incname)
    base = cpp_macros(cc, incdir, base_src)
    own = hdr.defined_names()
    guard = hdr.guard()
    order = re.findall(r"^\s*#\s*define\s+(\w+)", hdr.raw, re.M)
    res = []
    for name in order:
        if name == guard or name not in full or name in base:
            continue
        if name in own and not full[name][0] and name not in res:
            res.append(name)
    return res, {n: full[n][1] for n in res}


TYPECLASS = ("_Generic((x), _Bool: 1, char: 2, signed char: 3, "
             "unsigned char: 4, short: 5, unsigned short: 6, int: 7, "
             "unsigned int: 8, long: 9, unsigned long: 10, long long: 11, "
             "unsigned long long: 12, float: 13, double: 14, "
             "long double: 15, default: 0)")

PROLOGUE = r"""/* Generated by scripts/abi_check.py -- do not edit. */
#ifdef ABI_ASM
#define P(tag, val) __asm__ __volatile__("\n.ascii \"@ABI@ " tag " %%c0\\n\"" \
					 : : "i" ((unsigned long long)(val)))
#define BEGIN void abi_dump(void) {
#define END }
#else
#include <stdio.h>
#define P(tag, val) printf("%%s %%llu\n", tag, (unsigned long long)(val))
#define BEGIN int main(void) {
#define END return 0; }
#endif
/* raw (not headers_install'ed) uapi headers may use these annotations */
#ifndef __user
#define __user
#endif
#ifndef __counted_by
#define __counted_by(m)
#endif
#include <%s>
#define TC(x) %s
#define M(T, f) (((T *)0)->f)
BEGIN
"""


def c_string(s):
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def gen_program(up, macros, incname):
    lines = [PROLOGUE % (incname, TYPECLASS)]
    nfields = 0
    emit = lambda tag, expr: lines.append("\tP(%s, %s);\n" % (c_string(tag),
                                                            expr))
    for ctype in up.agg_order:
        emit("sizeof %s" % ctype, "sizeof(%s)" % ctype)
        emit("alignof %s" % ctype, "_Alignof(%s)" % ctype)
        for f in up.aggs[ctype]:
            nfields += 1
            fid = "%s.%s" % (ctype, f.path)
            if f.bitwidth is not None:
                lines.append("\t/* %s: bit-field, offsetof skipped */\n" % fid)
                emit("bitfield %s (offsetof skipped) width" % fid,
                     "(%s)" % f.bitwidth)
                continue
            emit("offsetof %s" % fid,
                 "__builtin_offsetof(%s, %s)" % (ctype, f.path))
            member = "M(%s, %s)" % (ctype, f.path)
            elem = member + "[0]" * len(f.dims)
            if not f.flexible:
                emit("sizeof %s" % fid, "sizeof(%s)" % member)
            else:
                emit("flexible-array %s elemsize" % fid, "sizeof(%s)" % elem)
            emit("alignof %s" % fid, "__alignof__(%s)" % member)
            if f.ptr:
                emit("pointer %s" % fid, "sizeof(%s)" % elem)
            else:
                emit("typeclass %s" % fid, "TC(%s)" % elem)
    for tag in up.enum_order:
        if not tag.startswith("("):
            emit("sizeof enum %s" % tag, "sizeof(enum %s)" % tag)
        for name in up.enums[tag]:
            emit("enum %s" % name, name)
    for name in macros:
        emit("macro %s" % name, name)
    lines.append("END\n")
    return "".join(lines), nfields


def decl_listing(up, up_macros, hdr, str_macros):
    """Declared spelling of every upstream name, looked up in `hdr`."""
    out = []
    for ctype in up.agg_order:
        if ctype not in hdr.aggs:
            out.append("decl %s MISSING" % ctype)
            continue
        mine = {f.path: f for f in hdr.aggs[ctype]}
        for f in up.aggs[ctype]:
            g = mine.get(f.path)
            if g is None:
                out.append("decl %s.%s MISSING" % (ctype, f.path))
            else:
                out.append("decl %s.%s %s" % (ctype, f.path, g.decl()))
    for tag in up.enum_order:
        if tag.startswith("("):
            continue
        if tag not in hdr.enums:
            out.append("decl enum %s MISSING" % tag)
    mine = set(hdr.enumerators)
    for name in up.enumerators:
        if name not in mine:
            out.append("decl enumerator %s MISSING" % name)
    defined = hdr.defined_names()
    for name in up_macros:
        if name not in defined:
            out.append("decl macro %s MISSING" % name)
    for name in sorted(str_macros):
        out.append("decl string-macro %s %s" % (name, str_macros[name]))
    return "\n".join(out) + "\n"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--upstream", required=True,
                    help="upstream header, at <incdir>/<incname>")
    ap.add_argument("--ours", required=True,
                    help="our header, at <ours-incdir>/<incname>")
    ap.add_argument("--incdir", required=True)
    ap.add_argument("--ours-incdir", required=True)
    ap.add_argument("--incname", default="linux/iommufd.h")
    ap.add_argument("--cc", default=os.environ.get("CC", "gcc"))
    ap.add_argument("--prog", required=True)
    ap.add_argument("--decl-up", required=True)
    ap.add_argument("--decl-ours", required=True)
    ap.add_argument("--stats", required=True)
    a = ap.parse_args()

    try:
        up = Header(a.upstream)
        ours = Header(a.ours)
    except ParseError as e:
        sys.exit("abi_check.py: parse error: %s" % e)
    macros, bodies = upstream_macros(up, a.cc, a.incdir, a.incname)
    # String-literal macros cannot be cast to an integer: compare their
    # preprocessed text instead (ours expanded with ours on the path).
    strs = [n for n in macros if re.match(r'(L|u8|u|U)?"', bodies[n])]
    macros = [n for n in macros if n not in strs]
    up_str = {n: bodies[n] for n in strs}
    ours_str = {}
    if strs:
        base_src = "".join("#include %s\n" % i for i in up.includes())
        full = cpp_macros(a.cc, a.ours_incdir, base_src + "#include <%s>\n" %
                          a.incname)
        ours_str = {n: (full[n][1] if n in full else "MISSING")
                    for n in strs}
    prog, nfields = gen_program(up, macros, a.incname)
    with open(a.prog, "w") as f:
        f.write(prog)
    with open(a.decl_up, "w") as f:
        f.write(decl_listing(up, macros + strs, up, up_str))
    with open(a.decl_ours, "w") as f:
        f.write(decl_listing(up, macros + strs, ours, ours_str))
    with open(a.stats, "w") as f:
        nmac = len(macros) + len(strs)
        f.write("%d %d %d %d %d\n" % (len(up.agg_order), nfields,
                                      len(up.enumerators) + nmac,
                                      len(up.enumerators), nmac))


if __name__ == "__main__":
    main()
