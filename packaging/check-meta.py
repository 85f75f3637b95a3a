#!/usr/bin/python3
"""Validate META.json against the PGXN Meta Spec 1.0.x, and against the tree.

    python3 packaging/check-meta.py [repo-dir]

The rules below restate the spec (https://pgxn.org/meta/spec.txt): the
required keys, their types and formats (SemVer versions, terms, tags,
version ranges, license names), and the structure of provides, prereqs,
no_index and resources; keys beginning with x_ or X_ are custom and
allowed anywhere the spec allows them.  Then, for this project: every file
META.json names exists, the provided extension's version is the control
file's default_version, and the distribution version agrees with
debian/changelog and the Python client's pyproject.toml.

Prints every problem and exits 1 if there is any.
"""

import json
import os
import re
import sys
import unicodedata

SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$")
RANGE_OP = re.compile(r"^(==|!=|<=|>=|<|>)?\s*(.+)$")
LICENSES = {
    "agpl_3", "apache_1_1", "apache_2_0", "artistic_1", "artistic_2", "bsd", "freebsd",
    "gfdl_1_2", "gfdl_1_3", "gpl_1", "gpl_2", "gpl_3", "lgpl_2_1", "lgpl_3_0", "mit",
    "mozilla_1_0", "mozilla_1_1", "openssl", "perl_5", "postgresql", "qpl_1_0", "ssleay",
    "sun", "zlib", "open_source", "restricted", "unrestricted", "unknown",
}
URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:\S+$")
PHASES = {"configure", "build", "test", "runtime", "develop"}
RELATIONS = {"requires", "recommends", "suggests", "conflicts"}

problems = []


def bad(path, message):
    problems.append("%s: %s" % (path, message))


def custom(key):
    return isinstance(key, str) and len(key) > 2 and key[:2] in ("x_", "X_")


def control_chars(s):
    return any(unicodedata.category(c) == "Cc" for c in s)


def check_term(path, v):
    if not isinstance(v, str) or len(v) < 2 or "/" in v or "\\" in v \
            or any(c.isspace() for c in v) or control_chars(v):
        bad(path, "must be a term: 2+ characters, no slash, backslash, space or control "
                  "character (got %r)" % (v,))


def check_string(path, v):
    if not isinstance(v, str) or not v:
        bad(path, "must be a non-empty string")


def check_semver(path, v):
    if not isinstance(v, str) or not SEMVER.match(v):
        bad(path, "must be a SemVer version such as 1.2.0 (got %r)" % (v,))


def check_path(path, v):
    if not isinstance(v, str) or len(v) < 2 or v.startswith("/") or "\\" in v:
        bad(path, "must be a relative path in unix convention, 2+ characters (got %r)" % (v,))


def check_uri(path, v):
    if not isinstance(v, str) or not URI.match(v):
        bad(path, "must be a URI (got %r)" % (v,))


def check_keys(path, obj, allowed, required=()):
    if not isinstance(obj, dict):
        bad(path, "must be an object")
        return False
    for key in obj:
        if key not in allowed and not custom(key):
            bad(path, "unknown key %r" % key)
    for key in required:
        if key not in obj:
            bad(path, "missing required key %r" % key)
    return True


def check_range(path, v):
    if v == 0 or v == "0":
        return
    if not isinstance(v, str):
        bad(path, "must be a version range string or 0 (got %r)" % (v,))
        return
    for part in v.split(","):
        m = RANGE_OP.match(part.strip())
        if not m or not SEMVER.match(m.group(2)):
            bad(path, "bad version range %r (each part: [op] SemVer)" % v)
            return


def check_license(path, v):
    if isinstance(v, str):
        if v not in LICENSES:
            bad(path, "unknown license name %r" % v)
    elif isinstance(v, list):
        if not v:
            bad(path, "must not be empty")
        for i, item in enumerate(v):
            if item not in LICENSES:
                bad("%s[%d]" % (path, i), "unknown license name %r" % (item,))
    elif isinstance(v, dict):
        if not v:
            bad(path, "must not be empty")
        for name, uri in v.items():
            check_uri("%s.%s" % (path, name), uri)
    else:
        bad(path, "must be a license name, a list of them, or an object of URIs")


def check_maintainer(path, v):
    if isinstance(v, str):
        check_string(path, v)
    elif isinstance(v, list) and v:
        for i, item in enumerate(v):
            check_string("%s[%d]" % (path, i), item)
    else:
        bad(path, "must be a string or a non-empty list of strings")


def check_provides(path, v):
    if not isinstance(v, dict) or not v:
        bad(path, "must be a non-empty object")
        return
    for name, ext in v.items():
        p = "%s.%s" % (path, name)
        check_term(p + " (name)", name)
        if check_keys(p, ext, {"file", "version", "abstract", "docfile", "docpath"},
                      ("file", "version")):
            check_path(p + ".file", ext.get("file"))
            check_semver(p + ".version", ext.get("version"))
            if "abstract" in ext:
                check_string(p + ".abstract", ext["abstract"])
            if "docfile" in ext:
                check_path(p + ".docfile", ext["docfile"])
            if "docpath" in ext:
                check_string(p + ".docpath", ext["docpath"])


def check_prereqs(path, v):
    if not check_keys(path, v, PHASES):
        return
    if not v:
        bad(path, "must not be empty")
    for phase, relations in v.items():
        if custom(phase):
            continue
        p = "%s.%s" % (path, phase)
        if not check_keys(p, relations, RELATIONS):
            continue
        if not relations:
            bad(p, "must not be empty")
        for rel, deps in relations.items():
            if custom(rel):
                continue
            q = "%s.%s" % (p, rel)
            if not isinstance(deps, dict):
                bad(q, "must be an object of name: version range")
                continue
            for name, rng in deps.items():
                check_term("%s.%s (name)" % (q, name), name)
                check_range("%s.%s" % (q, name), rng)


def check_no_index(path, v):
    if not check_keys(path, v, {"file", "directory"}):
        return
    if "file" not in v and "directory" not in v:
        bad(path, "needs file or directory")
    for key in ("file", "directory"):
        if key not in v:
            continue
        items = v[key] if isinstance(v[key], list) else [v[key]]
        if isinstance(v[key], list) and (not items or len(set(map(str, items))) != len(items)):
            bad("%s.%s" % (path, key), "must be a non-empty list of unique paths")
        for i, item in enumerate(items):
            check_path("%s.%s[%d]" % (path, key, i), item)


def check_tags(path, v):
    if not isinstance(v, list) or not v:
        bad(path, "must be a non-empty list")
        return
    for i, tag in enumerate(v):
        if not isinstance(tag, str) or not 2 <= len(tag) <= 255 or "/" in tag \
                or "\\" in tag or control_chars(tag):
            bad("%s[%d]" % (path, i), "bad tag %r" % (tag,))


def check_resources(path, v):
    if not check_keys(path, v, {"homepage", "bugtracker", "repository"}):
        return
    if not v:
        bad(path, "must not be empty")
    if "homepage" in v:
        check_uri(path + ".homepage", v["homepage"])
    if "bugtracker" in v and check_keys(path + ".bugtracker", v["bugtracker"], {"web", "mailto"}):
        for k in ("web",):
            if k in v["bugtracker"]:
                check_uri("%s.bugtracker.%s" % (path, k), v["bugtracker"][k])
    if "repository" in v and check_keys(path + ".repository", v["repository"],
                                        {"url", "web", "type"}):
        for k in ("url", "web"):
            if k in v["repository"]:
                check_uri("%s.repository.%s" % (path, k), v["repository"][k])


def check_meta(meta):
    top = {"name", "version", "abstract", "maintainer", "license", "provides", "meta-spec",
           "description", "generated_by", "tags", "no_index", "prereqs", "release_status",
           "resources"}
    if not check_keys("META", meta, top, ("name", "version", "abstract", "maintainer",
                                          "license", "provides", "meta-spec")):
        return
    spec = meta.get("meta-spec")
    if check_keys("meta-spec", spec, {"version", "url"}, ("version",)):
        if not re.match(r"^1\.0\.\d+$", str(spec.get("version", ""))):
            bad("meta-spec.version", "must be 1.0.x")
        if "url" in spec and spec["url"] not in ("https://pgxn.org/meta/spec.txt",
                                                 "http://pgxn.org/meta/spec.txt"):
            bad("meta-spec.url", "must be the spec's URL")
    check_term("name", meta.get("name"))
    check_semver("version", meta.get("version"))
    check_string("abstract", meta.get("abstract"))
    for key in ("description", "generated_by"):
        if key in meta:
            check_string(key, meta[key])
    check_maintainer("maintainer", meta.get("maintainer"))
    check_license("license", meta.get("license"))
    check_provides("provides", meta.get("provides"))
    if "prereqs" in meta:
        check_prereqs("prereqs", meta["prereqs"])
    if "no_index" in meta:
        check_no_index("no_index", meta["no_index"])
    if "tags" in meta:
        check_tags("tags", meta["tags"])
    if "release_status" in meta and meta["release_status"] not in ("stable", "testing",
                                                                    "unstable"):
        bad("release_status", "must be stable, testing or unstable")
    if "resources" in meta:
        check_resources("resources", meta["resources"])


def check_tree(meta, repo):
    for name, ext in (meta.get("provides") or {}).items():
        for key in ("file", "docfile"):
            if key in ext and not os.path.isfile(os.path.join(repo, ext[key])):
                bad("provides.%s.%s" % (name, key), "%s does not exist" % ext[key])
        control = os.path.join(repo, name + ".control")
        if os.path.isfile(control):
            m = re.search(r"^default_version\s*=\s*'([^']+)'", open(control).read(), re.M)
            if m:
                default = m.group(1)
                padded = default + ".0" * (2 - default.count("."))
                if ext.get("version") != padded:
                    bad("provides.%s.version" % name, "%s, but %s has default_version %s"
                        % (ext.get("version"), os.path.basename(control), default))
    version = meta.get("version")
    changelog = os.path.join(repo, "debian", "changelog")
    if os.path.isfile(changelog):
        m = re.match(r"^\S+ \(([^)]+)\)", open(changelog).readline())
        upstream = m.group(1).split(":")[-1].rsplit("-", 1)[0] if m else None
        if upstream != version:
            bad("version", "%s, but debian/changelog says %s" % (version, upstream))
    pyproject = os.path.join(repo, "clients", "python", "pyproject.toml")
    if os.path.isfile(pyproject):
        m = re.search(r'^version\s*=\s*"([^"]+)"', open(pyproject).read(), re.M)
        if m and m.group(1) != version:
            bad("version", "%s, but the Python client is %s" % (version, m.group(1)))


def main(argv):
    repo = argv[1] if len(argv) > 1 else os.path.dirname(os.path.dirname(os.path.abspath(
        __file__)))
    path = os.path.join(repo, "META.json")
    try:
        with open(path) as f:
            meta = json.load(f)
    except (OSError, ValueError) as e:
        print("META.json: cannot read: %s" % e)
        return 1
    check_meta(meta)
    if not problems:
        check_tree(meta, repo)
    for p in problems:
        print("META.json: " + p)
    if problems:
        return 1
    print("META.json: valid PGXN Meta Spec %s, %s %s provides %s" % (
        meta["meta-spec"]["version"], meta["name"], meta["version"],
        ", ".join("%s %s (%s)" % (n, e["version"], e["file"])
                  for n, e in meta["provides"].items())))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
