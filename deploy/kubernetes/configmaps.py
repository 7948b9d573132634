#!/usr/bin/env python3
"""Writes the generated parts of deploy/kubernetes from their sources (Python's standard
library only):

- envoy-config.yaml: deploy/envoy/envoy.yaml as a ConfigMap, listening on 0.0.0.0 (the pod's
  address) instead of 127.0.0.1;
- bundle.yaml: a bundle directory (default deploy/kubernetes/bundle) as a ConfigMap. A key
  cannot hold `/`, so each file's key is its path with `/` written `.`;
- the volume `items` in deployment.yaml (between the BEGIN/END markers) that put each key
  back at its path, so that the mounted volume is the bundle directory.

    python3 deploy/kubernetes/configmaps.py [--bundle DIR] [--check]

--check writes nothing and exits 1 when a file differs from what it would write (the test
in tests/deploy.rs runs it).
"""

import argparse
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ENVOY = os.path.join(HERE, "..", "envoy", "envoy.yaml")
LISTEN = "socket_address: { address: 127.0.0.1, port_value: 10000 }"
BEGIN = "# BEGIN bundle items (written by configmaps.py)"
END = "# END bundle items"
KEY = re.compile(r"^[-._a-zA-Z0-9]{1,253}$")
LIMIT = 1024 * 1024  # a ConfigMap's data, at most


def block(text, indent):
    """`text` as the lines of a YAML literal block scalar indented by `indent`."""
    pad = " " * indent
    return "\n".join(pad + line if line else "" for line in text.rstrip("\n").split("\n"))


def configmap(name, component, header, data):
    lines = [*("# " + h if h else "#" for h in header)]
    lines += [
        "apiVersion: v1",
        "kind: ConfigMap",
        "metadata:",
        f"  name: {name}",
        "  labels:",
        "    app.kubernetes.io/name: orders-api",
        f"    app.kubernetes.io/component: {component}",
        "data:",
    ]
    for key, text in data:
        lines.append(f"  {key}: |")
        lines.append(block(text, 4))
    return "\n".join(lines) + "\n"


def envoy_configmap():
    with open(ENVOY, encoding="utf-8") as f:
        text = f.read()
    if text.count(LISTEN) != 1:
        sys.exit(f"configmaps.py: `{LISTEN}` must appear once in {ENVOY}")
    text = text.replace(LISTEN, LISTEN.replace("127.0.0.1", "0.0.0.0"))
    header = [
        "Envoy's configuration for the pod: deploy/envoy/envoy.yaml, listening on the pod's",
        "address. Written by configmaps.py; edit deploy/envoy/envoy.yaml and run it again.",
    ]
    return configmap("orders-api-envoy", "envoy-config", header, [("envoy.yaml", text)])


def bundle_files(root):
    files = []
    for directory, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(names):
            if name.startswith(".") or name.endswith(("~", ".swp")):
                continue
            path = os.path.relpath(os.path.join(directory, name), root).replace(os.sep, "/")
            files.append(path)
    keys = {}
    for path in sorted(files):
        key = path.replace("/", ".")
        if not KEY.match(key):
            sys.exit(f"configmaps.py: `{path}` makes the key `{key}`, which Kubernetes refuses")
        if key in keys:
            sys.exit(f"configmaps.py: `{path}` and `{keys[key]}` both make the key `{key}`")
        keys[key] = path
    return [(key, keys[key]) for key in sorted(keys)]


def bundle_configmap(root, files):
    data, size = [], 0
    for key, path in files:
        with open(os.path.join(root, path), encoding="utf-8") as f:
            text = f.read()
        size += len(key) + len(text.encode("utf-8"))
        data.append((key, text))
    if size > LIMIT:
        sys.exit(f"configmaps.py: the bundle is {size} bytes; a ConfigMap holds {LIMIT} at most")
    header = [
        "The bundle warden serves, as a ConfigMap: a small standalone organization (a",
        "management account and `333333333333` with the `orders` service). Each key is a file's",
        "path with `/` written `.`; the Deployment's volume `items` put it back at its path.",
        "Kubernetes mounts the files behind a hidden `..data` link that it swaps at once on an",
        "update, and warden, watching the directory, loads the new set whole.",
        "Written by configmaps.py from deploy/kubernetes/bundle; edit those files and run it again.",
    ]
    return configmap("orders-api-bundle", "warden-bundle", header, data)


def deployment_items(text, files):
    start, end = text.find(BEGIN), text.find(END)
    if start < 0 or end < start:
        sys.exit(f"configmaps.py: deployment.yaml has no `{BEGIN}` ... `{END}` block")
    line_start = text.rfind("\n", 0, start) + 1
    indent = start - line_start
    pad = " " * indent
    items = "".join(f"{pad}- key: {key}\n{pad}  path: {path}\n" for key, path in files)
    return text[:start] + BEGIN + "\n" + items + pad + text[end:]


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundle", default=os.path.join(HERE, "bundle"))
    parser.add_argument("--check", action="store_true", help="write nothing; exit 1 on a difference")
    args = parser.parse_args()

    files = bundle_files(args.bundle)
    with open(os.path.join(HERE, "deployment.yaml"), encoding="utf-8") as f:
        deployment = f.read()
    wanted = {
        "envoy-config.yaml": envoy_configmap(),
        "bundle.yaml": bundle_configmap(args.bundle, files),
        "deployment.yaml": deployment_items(deployment, files),
    }
    stale = []
    for name, text in wanted.items():
        path = os.path.join(HERE, name)
        try:
            with open(path, encoding="utf-8") as f:
                current = f.read()
        except FileNotFoundError:
            current = None
        if current == text:
            continue
        if args.check:
            stale.append(name)
        else:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
            print(f"wrote deploy/kubernetes/{name}")
    if stale:
        print(
            "out of date: " + ", ".join(f"deploy/kubernetes/{n}" for n in stale)
            + "; run `python3 deploy/kubernetes/configmaps.py`",
            file=sys.stderr,
        )
        sys.exit(1)


if __name__ == "__main__":
    main()
